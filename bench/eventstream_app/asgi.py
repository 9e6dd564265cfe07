"""ASGI app of the django-eventstream peer: plain Django (django-eventstream needs no Channels)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.eventstream_app.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
