"""Type aliases shared by the app's modules (ASGI callables)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
#: Loose on purpose: Django's handlers annotate ``scope`` as ``dict``, uvicorn as a mapping.
ASGIApp = Callable[..., Awaitable[None]]
