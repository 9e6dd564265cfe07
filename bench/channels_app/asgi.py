"""ASGI app of the Channels peer: HTTP through Django, WebSockets to the consumer."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.channels_app.settings")

from channels.routing import ProtocolTypeRouter, URLRouter
from django.core.asgi import get_asgi_application

http = get_asgi_application()

from django.urls import path  # noqa: E402

from bench.channels_app.consumers import GroupsConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {"http": http, "websocket": URLRouter([path("ws/groups/", GroupsConsumer.as_asgi())])}
)
