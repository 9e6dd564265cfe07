"""The application the reusable app's test servers run in subprocesses (tests/realtime/settings.py)."""

from django.core.asgi import get_asgi_application

application = get_asgi_application()
