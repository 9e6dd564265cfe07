"""The relay backend contract: how messages leave a process and how they come back.

A backend has two halves. :meth:`Backend.publish` runs in the writer's thread, on Django's
database connection, inside the writer's transaction. :meth:`Backend.start` runs on a hub's event
loop and feeds every message of the project's channel to ``hub.dispatch_message`` (and calls ``hub.resync`` after a gap) until
:meth:`Backend.stop`. One backend instance serves one hub (one event loop).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

from django.utils.module_loading import import_string

from realtime.conf import get_config


class Receiver(Protocol):
    """What a backend feeds (a :class:`~realtime.relay.hub.Hub`): raw messages, and resyncs."""

    def dispatch_message(self, message: str) -> None:
        """Handle one message of the project's channel."""

    def resync(self) -> None:
        """Messages may have been lost (the listener reconnected): re-render everything."""


class Backend(ABC):
    """Base class of relay backends (see the module docstring for the contract)."""

    @classmethod
    @abstractmethod
    def publish(cls, message: str, *, using: str) -> None:
        """Send ``message`` on the project's channel, as part of ``using``'s current transaction."""

    @abstractmethod
    async def start(self, hub: Receiver) -> None:
        """Begin delivering messages to ``hub``; return once listening (first attempt made)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop delivering and release every resource (connections, tasks)."""


def backend_class() -> type[Backend]:
    """The configured backend class (``REALTIME['BACKEND']``)."""
    cls = import_string(get_config().BACKEND)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(
            f"REALTIME['BACKEND'] {get_config().BACKEND!r} is not a realtime Backend class."
        )
    return cls


def load_backend() -> Backend:
    """A new instance of the configured backend, for one hub."""
    return backend_class()()
