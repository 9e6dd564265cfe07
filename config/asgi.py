"""ASGI entry point: ``uvicorn config.asgi:application`` (and ``manage.py runserver``).

realtime's handler is Django's, opening streams in one hop to a shared thread pool (see
:mod:`realtime.handler`). Request bodies over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` are refused with 413
before Django reads them (see :mod:`realtime.asgi`).
"""

import os

from realtime.asgi import RequestBodyLimit
from realtime.handler import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = RequestBodyLimit(get_asgi_application())
