"""The Stario peer: the groups list, live, the way a Stario application would make it.

Stario (https://stario.dev) is not ASGI: it has its own HTTP server (``stario.serve``), handlers
``async def handler(c: Context, w: Writer)``, Datastar events through ``stario.datastar.SSE``
and an in-process publish/subscribe registry, ``stario.Relay``. This peer uses each of them as
Stario documents them, on uvloop (as uvicorn runs the other peers), with the no-op tracer (the
default writes a JSON line per request to stdout; uvicorn runs the other peers without an access
log).

- ``GET /stream``: subscribes to the subject ``groups`` (``latest=True``: a stream that falls
  behind keeps only the newest list, not a queue of stale ones), then reads the rows and sends
  the list (gap-free: a change committed during that read is published to the subscription
  already entered), then sends every list published on ``groups`` with ``SSE.patch_elements``.
- ``POST /add``: reads the Datastar signals, inserts the group, then re-reads the rows once,
  renders the list once and publishes the HTML on the Relay, which hands it to every stream of
  this process; 204. Read-and-publish holds one ``asyncio.Lock`` so lists are published in the
  order they were read (without it, two concurrent commands' reads could publish out of order
  and leave every stream on the older list).
- ``POST /reset`` deletes every group (sends nothing, as the other peers' resets);
  ``GET /stats`` gives renders and publishes (as ``notifications_received``, the key the bench
  reads) and the open streams.

The rows are the same as every peer's (``auth_group`` in the bench database, read with async
psycopg through a pool, ``ORDER BY name``), and the HTML is the same bytes as the groups template
renders (``realtime_tests/groups.html``), built with Stario's markup.

One process only. ``Relay`` is process-local ("not a broker: no cross-process delivery"): a
command served by one process reaches only that process's streams. Two processes would need a
cross-process carrier feeding each process's Relay, e.g. one ``LISTEN`` connection per process
with the command's ``pg_notify`` inside its transaction (what ``realtime`` does), or a Redis or
NATS subscription per process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import AsyncGenerator

import uvloop
from psycopg_pool import AsyncConnectionPool
from stario import App, Context, Relay, Route, ServerConfig, Span, Writer, h, serve
from stario.datastar import SSE, read_signals
from stario.markup import render
from stario.telemetry.noop import NoOpTracer

from bench.serve import apply_gc_threshold, raise_nofile

SUBJECT = "groups"
#: libpq connection string of the bench database, given by the bench.
CONNINFO_ENV = "BENCH_PG_CONNINFO"


def render_groups(names: list[str]) -> str:
    """The list as ``realtime_tests/groups.html`` renders it."""
    items = [h.Li(name) for name in names] or [h.Li({"class": "empty"}, "none")]
    return render(h.Ul({"id": "groups"}, *items))


class GroupsPeer:
    """The handlers and what they share: the pool, the Relay, the counters."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.relay: Relay[str] = Relay()
        self.lock = asyncio.Lock()
        self.renders = 0
        self.publishes = 0
        self.open_streams = 0

    async def read_and_render(self) -> str:
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT name FROM auth_group ORDER BY name")
            names = [row[0] for row in await cursor.fetchall()]
        self.renders += 1
        return render_groups(names)

    async def stream(self, c: Context, w: Writer) -> None:
        sse = SSE(w)
        self.open_streams += 1
        try:
            async with c.alive(), self.relay.subscribe(SUBJECT, latest=True) as live:
                sse.patch_elements(await self.read_and_render())
                async for _subject, html in live:
                    sse.patch_elements(html)
        finally:
            self.open_streams -= 1

    async def add(self, c: Context, w: Writer) -> None:
        signals = await read_signals(c.req)
        name = str(signals.get("name") or "group")[:150]
        async with self.pool.connection() as conn:  # one transaction, committed on exit
            await conn.execute("INSERT INTO auth_group (name) VALUES (%s)", [name])
        async with self.lock:
            html = await self.read_and_render()
            self.relay.publish(SUBJECT, html)
            self.publishes += 1
        w.empty(204)

    async def reset(self, c: Context, w: Writer) -> None:
        async with self.pool.connection() as conn:
            # What Group.objects.all().delete() deletes (the bench's groups have neither).
            await conn.execute("DELETE FROM auth_group_permissions")
            await conn.execute("DELETE FROM auth_user_groups")
            await conn.execute("DELETE FROM auth_group")
        w.empty(204)

    async def stats(self, c: Context, w: Writer) -> None:
        w.json(
            {
                "renders": self.renders,
                "notifications_received": self.publishes,
                "publishes": self.publishes,
                "open_streams": self.open_streams,
            }
        )


async def bootstrap(app: App, span: Span) -> AsyncGenerator[None]:
    pool = AsyncConnectionPool(
        os.environ[CONNINFO_ENV],
        min_size=1,
        max_size=20,  # as the realtime peer's pool (config.database.with_pool)
        kwargs={"application_name": "stario"},
        open=False,
    )
    await pool.open()
    peer = GroupsPeer(pool)
    app.add(Route("GET /stream"), peer.stream)
    app.add(Route("POST /add"), peer.add)
    app.add(Route("POST /reset"), peer.reset)
    app.add(Route("GET /stats"), peer.stats)
    span.attr("bench.peer", "stario")
    yield
    await pool.close()


async def run(port: int) -> None:
    config = ServerConfig(host="127.0.0.1", port=port, backlog=4096, graceful_shutdown_timeout=1)
    with NoOpTracer() as tracer:
        await serve(bootstrap, config=config, tracer=tracer)


def main() -> None:
    parser = argparse.ArgumentParser(description="The Stario peer of the bench.")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_nofile()
    apply_gc_threshold()
    uvloop.run(run(args.port))
