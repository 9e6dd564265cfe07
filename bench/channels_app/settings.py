"""Settings for the Channels peer (database given by the bench as JSON in ``BENCH_DB_JSON``)."""

from bench.peer_settings import *  # noqa: F403
from bench.peer_settings import BASE_APPS, BENCH_DB

INSTALLED_APPS = [*BASE_APPS, "channels", "channels_postgres"]
ROOT_URLCONF = "bench.channels_app.urls"
ASGI_APPLICATION = "bench.channels_app.asgi.application"
DATABASES = {"default": BENCH_DB}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_postgres.core.PostgresChannelLayer",
        "CONFIG": DATABASES["default"],
    }
}
