"""Settings for the django-eventstream peer (database given by the bench as JSON in
``BENCH_DB_JSON``).

No ``EVENTSTREAM_REDIS``, no ``GRIP_URL`` (Pushpin) and no ``EVENTSTREAM_STORAGE_CLASS``:
django-eventstream's default, in-process delivery (see ``views``). The database goes through the
same connection pool as this project's bench settings (``config.database.with_pool``): under ASGI
each request runs its synchronous part on a thread of its own, so without a pool every command
would open a connection of its own.
"""

from bench.peer_settings import *  # noqa: F403
from bench.peer_settings import BASE_APPS, BENCH_DB
from config.database import with_pool

INSTALLED_APPS = [*BASE_APPS, "django_eventstream"]
ROOT_URLCONF = "bench.eventstream_app.urls"
ASGI_APPLICATION = "bench.eventstream_app.asgi.application"
DATABASES = {"default": with_pool(BENCH_DB)}
