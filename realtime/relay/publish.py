"""``publish``: tell every stream of the project that a topic changed, when the data commits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async

from realtime.conf import get_config
from realtime.counters import counters
from realtime.relay.base import backend_class
from realtime.relay.topics import encode

#: Callables told of every publish (``realtime.testing.capture_publishes`` uses it).
observers: list[Callable[[str, Any], None]] = []


def publish(topic: str, payload: Any = None, *, using: str | None = None) -> None:
    """Notify every subscriber of ``topic``, as part of the current database transaction.

    Call it inside the transaction that writes the data (``transaction.atomic()``; a command's
    handler already runs in one). With the PostgreSQL backend this is ``pg_notify``: delivered
    exactly when the transaction commits, never when it rolls back, and merged with identical
    publishes of the same transaction. Outside a transaction it is delivered at once.

    ``payload`` is optional, small JSON (a private notice, such as an error for one tab); streams
    re-read the state, so never send the state itself. Raises :class:`~realtime.InvalidTopic` for a
    bad name and :class:`~realtime.PayloadTooLarge` past PostgreSQL's 8000-byte limit.
    """
    message = encode(topic, payload)
    backend_class().publish(message, using=using or get_config().DATABASE)
    counters.publishes += 1
    for observer in observers:
        observer(topic, payload)


async def apublish(topic: str, payload: Any = None, *, using: str | None = None) -> None:
    """:func:`publish` for async code: runs on the thread that holds Django's connection."""
    await sync_to_async(publish)(topic, payload, using=using)
