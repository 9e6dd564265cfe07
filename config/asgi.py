"""ASGI entry point: ``uvicorn config.asgi:application`` (and ``manage.py runserver``).

Request bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` are refused with 413 before Django reads them
(see :mod:`realtime.asgi`).
"""

import os

from django.core.asgi import get_asgi_application

from realtime.asgi import RequestBodyLimit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = RequestBodyLimit(get_asgi_application())
