"""PostgreSQL ``LISTEN/NOTIFY`` backend: the default relay.

Publishing runs ``SELECT pg_notify(channel, message)`` on Django's connection, so PostgreSQL
delivers it when the writer's transaction commits, drops it on rollback, and merges identical ones
sent in the same transaction.

Listening uses **one** psycopg ``AsyncConnection`` per hub (per server process), opened lazily by
the first subscriber, in autocommit mode, never taken from Django's connections. It reconnects with
exponential backoff when the connection drops; once listening again it calls ``hub.resync()``,
because notifications sent during the gap are lost and only a re-render can repair that. An idle
connection is probed every ``HEARTBEAT`` seconds so a silently dead one is noticed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from django.db import connections
from psycopg import sql

from realtime.conf import get_config
from realtime.counters import counters
from realtime.relay.base import Backend, Receiver

logger = logging.getLogger("realtime")

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


class PostgresBackend(Backend):
    """Relay over one PostgreSQL NOTIFY channel (``REALTIME['CHANNEL']``)."""

    def __init__(self) -> None:
        config = get_config()
        self.channel = config.CHANNEL
        self.alias = config.LISTEN_DATABASE or config.DATABASE
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
        while True:
            async for notify in conn.notifies(timeout=self.heartbeat):
                hub.dispatch_message(notify.payload)
            await conn.execute("SELECT 1")  # idle: prove the connection is still alive
