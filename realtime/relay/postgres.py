"""PostgreSQL ``LISTEN/NOTIFY`` backend: the default relay.

Publishing runs ``SELECT pg_notify(channel, message)`` on Django's connection, so PostgreSQL
delivers it when the writer's transaction commits, drops it on rollback, and merges identical ones
sent in the same transaction.

Listening uses **one** psycopg ``AsyncConnection`` per hub (per server process), opened lazily by
the first subscriber, in autocommit mode, never taken from Django's connections. It reconnects with
exponential backoff when the connection drops; once listening again it calls ``hub.resync()``,
because notifications sent during the gap are lost and only a re-render can repair that. An idle
connection is probed every ``HEARTBEAT`` seconds so a silently dead one is noticed.

A listener that connects but never hears anything (its alias goes through PgBouncer in
transaction or statement pooling, where ``LISTEN`` succeeds and then nothing is delivered) is
caught at once: after each ``LISTEN`` a test notification is sent from a connection of its own,
on the publishing alias, and must come back within ``PROBE_TIMEOUT`` seconds. When it does not,
the listener logs an ERROR naming ``LISTEN_DATABASE`` and the fix, counts it
(``listener_misconfigured`` in ``stats()``) and reconnects with backoff, probing again. Every
listener ignores every test notification (they go to all processes of the channel).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import psycopg
from django.db import connections
from psycopg import sql

from realtime.conf import get_config
from realtime.counters import counters
from realtime.relay.base import Backend, Receiver

logger = logging.getLogger("realtime")

#: Test notifications start with this (never a valid topic): every listener skips them.
PROBE_PREFIX = "!probe "

_LIBPQ_KEYS = ("dbname", "user", "password", "host", "port", "sslmode", "options", "sslrootcert")


def listener_conninfo(alias: str) -> dict[str, Any]:
    """libpq parameters for the listener, copied from Django's settings for ``alias``."""
    params = connections[alias].get_connection_params()
    conninfo = {
        key: value
        for key, value in params.items()
        if key in _LIBPQ_KEYS and value not in (None, "")
    }
    conninfo["application_name"] = "realtime-listener"
    # TCP keepalives notice a vanished peer even when nothing is being sent.
    conninfo.update(keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
    return conninfo


class ListenerMisconfigured(Exception):
    """The listener's connection does not receive notifications (see the module)."""


class PostgresBackend(Backend):
    """Relay over one PostgreSQL NOTIFY channel (``REALTIME['CHANNEL']``)."""

    #: Seconds a test notification may take to come back after ``LISTEN``.
    PROBE_TIMEOUT = 5.0

    def __init__(self) -> None:
        config = get_config()
        self.channel = config.CHANNEL
        self.alias = config.LISTEN_DATABASE or config.DATABASE
        self.publish_alias = config.DATABASE
        self.heartbeat = config.HEARTBEAT or 30.0
        self.delay = config.RECONNECT_DELAY
        self.max_delay = config.RECONNECT_MAX_DELAY
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()

    @classmethod
    def publish(cls, message: str, *, using: str) -> None:
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [get_config().CHANNEL, message])

    async def start(self, hub: Receiver) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(hub), name="realtime-listener")
        await self._first_attempt.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])

    async def _run(self, hub: Receiver) -> None:
        delay = self.delay
        connected_before = False
        while True:
            try:
                conninfo = await asyncio.to_thread(listener_conninfo, self.alias)
                async with await psycopg.AsyncConnection.connect(
                    autocommit=True, **conninfo
                ) as conn:
                    self.connection = conn
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    counters.listener_connects += 1
                    if connected_before:
                        counters.listener_reconnects += 1
                        logger.info("realtime: listener reconnected; resyncing every stream")
                        hub.resync()
                    connected_before = True
                    delay = self.delay
                    self._first_attempt.set()
                    counters.listening += 1
                    try:
                        await self._listen(conn, hub)
                    finally:
                        counters.listening -= 1
            except ListenerMisconfigured as exc:
                counters.listener_misconfigured += 1
                logger.error("realtime: %s Retrying in %.1fs.", exc, delay)
            except psycopg.Error as exc:
                logger.warning(
                    "realtime: listener connection lost (%s); retrying in %.1fs", exc, delay
                )
            except Exception:
                # Never let the listener die: streams would silently stop updating.
                logger.exception("realtime: listener failed; retrying in %.1fs", delay)
            finally:
                self.connection = None
            self._first_attempt.set()  # subscribers go on; the resync after reconnect repairs them
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_delay)

    async def _listen(self, conn: psycopg.AsyncConnection[Any], hub: Receiver) -> None:
        loop = asyncio.get_running_loop()
        probe = PROBE_PREFIX + secrets.token_hex(8)
        deadline: float | None = (
            loop.time() + self.PROBE_TIMEOUT if await self._send_probe(probe) else None
        )
        while True:
            timeout = self.heartbeat
            if deadline is not None:
                timeout = max(0.01, min(timeout, deadline - loop.time()))
            async for notify in conn.notifies(timeout=timeout):
                if notify.payload.startswith(PROBE_PREFIX):
                    if notify.payload == probe:
                        deadline = None
                    continue
                hub.dispatch_message(notify.payload)
            if deadline is not None and loop.time() >= deadline:
                raise ListenerMisconfigured(
                    f"the listener (database alias {self.alias!r}, REALTIME['LISTEN_DATABASE']) "
                    f"did not receive its test notification within {self.PROBE_TIMEOUT:.0f}s of "
                    "LISTEN: its connection does not keep one server session, as behind "
                    "PgBouncer in transaction or statement pooling, and streams will not update. "
                    "Point REALTIME['LISTEN_DATABASE'] at an alias that connects directly to "
                    "PostgreSQL or through a session-pooling pool (docs/deploying.md, 'Database "
                    "connections and PgBouncer')."
                )
            await conn.execute("SELECT 1")  # idle: prove the connection is still alive

    async def _send_probe(self, message: str) -> bool:
        """NOTIFY ``message`` from a connection of its own; ``False`` when it cannot be sent."""
        try:
            conninfo = await asyncio.to_thread(listener_conninfo, self.publish_alias)
            conninfo["application_name"] = "realtime-probe"
            async with await psycopg.AsyncConnection.connect(autocommit=True, **conninfo) as conn:
                await conn.execute("SELECT pg_notify(%s, %s)", [self.channel, message])
        except psycopg.Error as exc:
            logger.warning("realtime: could not send the listener's test notification (%s)", exc)
            return False
        return True
