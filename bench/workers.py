"""ASGI entry for this project served by several uvicorn workers behind one port.

``python -m bench.serve bench.workers:application --port N --workers 2`` (what
``bench.common.serve(..., workers=2)`` runs): uvicorn's supervisor binds the port and spawns the
workers, as ``uvicorn --workers 2`` does; the kernel hands each new connection to whichever worker
accepts it first. Each worker is a process of its own, with its own LISTEN connection, hub and
render pool: a command served by one worker reaches the other's streams through PostgreSQL.

The bench must read each worker's counters (renders, notifications, open streams, RSS) and sum
them, but a request to the shared port reaches one worker, whichever accepts it. So each worker,
at its ASGI lifespan startup, also listens on a private port of its own (127.0.0.1, chosen by the
kernel) that answers any request with ``realtime.stats()`` plus its pid and RSS as JSON, and
writes ``<pid> <port>`` to ``$BENCH_WORKERS_DIR/<pid>.port``, where the bench finds them. Workers
are spawned, not forked: they inherit the environment only, so the bench's garbage-collector
thresholds are applied here again.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import psutil

from bench.common import WORKERS_DIR_ENV
from bench.serve import apply_gc_threshold
from config.asgi import application as django_application

_stats_server: list[asyncio.Server] = []


def worker_stats() -> dict[str, Any]:
    """This worker's ``realtime.stats()``, pid and RSS."""
    from realtime.metrics import stats

    data = stats()
    data["pid"] = os.getpid()
    data["rss"] = psutil.Process().memory_info().rss
    return data


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.readuntil(b"\r\n\r\n")
        body = json.dumps(worker_stats(), default=str).encode()
        head = (
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


async def _start_stats_port() -> None:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    _stats_server.append(server)
    port = server.sockets[0].getsockname()[1]
    folder = Path(os.environ[WORKERS_DIR_ENV])
    tmp = folder / f"{os.getpid()}.tmp"
    tmp.write_text(f"{os.getpid()} {port}")
    tmp.rename(folder / f"{os.getpid()}.port")


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The demo's ASGI app; the lifespan (uvicorn's, per worker) opens the stats port."""
    if scope["type"] != "lifespan":
        await django_application(scope, receive, send)
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            apply_gc_threshold()
            await _start_stats_port()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for server in _stats_server:
                server.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
