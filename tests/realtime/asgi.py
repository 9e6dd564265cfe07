"""The application the reusable app's test servers run in subprocesses (tests/realtime/settings.py):
realtime's handler, as a project's ``asgi.py`` uses it."""

from realtime.handler import get_asgi_application

application = get_asgi_application()
