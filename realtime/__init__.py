"""Live, multi-user Django pages without Channels.

Commands write and :func:`publish`; PostgreSQL ``LISTEN/NOTIFY`` relays; :class:`StreamView`
re-renders. Importing this package does nothing: the names below load on first use (Django imports
the package while its app registry is still empty), no settings are read, no connection opened.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from realtime.broadcasting import broadcast
    from realtime.commands import CommandError, CommandView, command
    from realtime.metrics import stats
    from realtime.relay.publish import apublish, publish
    from realtime.relay.topics import InvalidTopic, PayloadTooLarge
    from realtime.streams import StreamView

__version__ = "0.1.0"

_EXPORTS = {
    "CommandError": "realtime.commands",
    "CommandView": "realtime.commands",
    "InvalidTopic": "realtime.relay.topics",
    "PayloadTooLarge": "realtime.relay.topics",
    "StreamView": "realtime.streams",
    "apublish": "realtime.relay.publish",
    "broadcast": "realtime.broadcasting",
    "command": "realtime.commands",
    "publish": "realtime.relay.publish",
    "stats": "realtime.metrics",
}

__all__ = [
    "CommandError",
    "CommandView",
    "InvalidTopic",
    "PayloadTooLarge",
    "StreamView",
    "apublish",
    "broadcast",
    "command",
    "publish",
    "stats",
]


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'realtime' has no attribute {name!r}") from None
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
