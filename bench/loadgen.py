"""The load generator: many SSE (or WebSocket) clients in one asyncio process, plus commands.

It runs in the process that starts the servers, never in a server's process, and raises its own
open-file limit first. Each client records when each complete event arrived and how many ``<li>``
the event holds (the groups list's length: a render that includes the last command is recognised
by it, whatever system sent it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.serve import raise_nofile

CSRF = "realtimetestingcsrftoken00000000"  # as realtime.testing.post_command sends it


@dataclass
class Client:
    """One open stream and what arrived on it: (perf_counter time, number of <li>, bytes)."""

    arrivals: list[tuple[float, int, int]] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    wire_bytes: int = 0

    def record(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        self.arrivals.append((time.perf_counter(), data.count(b"<li>"), len(data)))
        self.ready.set()


async def _read_sse(
    session: aiohttp.ClientSession,
    url: str,
    client: Client,
    encoding: str,
    extra_headers: Mapping[str, str] | None = None,
) -> None:
    headers = {
        "Accept": "text/event-stream",
        "Datastar-Request": "true",
        "Accept-Encoding": encoding,
        **(extra_headers or {}),
    }
    async with session.get(url, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        buffer = b""
        while True:
            chunk = await response.content.readany()
            if not chunk:
                raise RuntimeError("stream ended")
            client.wire_bytes += len(chunk)
            if encoding != "identity":  # compressed: count chunks, do not parse
                client.record(b"")
                continue
            buffer += chunk
            *complete, buffer = buffer.split(b"\n\n")
            for block in complete:
                if block.startswith(b"event:") or b"\nevent:" in block:
                    client.record(block)


async def _read_ws(session: aiohttp.ClientSession, url: str, client: Client) -> None:
    async with session.ws_connect(url, autoping=True, max_msg_size=0) as ws:
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                client.wire_bytes += len(message.data)
                client.record(message.data)
            elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                break
        raise RuntimeError("websocket closed")


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    client: Client,
    gate: asyncio.Semaphore,
    ws: bool,
    encoding: str,
    headers: Mapping[str, str] | None,
) -> None:
    try:
        async with gate:
            reader = asyncio.ensure_future(
                _read_ws(session, url, client)
                if ws
                else _read_sse(session, url, client, encoding, headers)
            )
            ready = asyncio.ensure_future(client.ready.wait())
            await asyncio.wait([reader, ready], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
        await reader
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # recorded and reported: a failed stream counts as missed
        client.error = f"{type(exc).__name__}: {exc}"
        client.ready.set()


class Streams:
    """N clients on one stream URL, opened ``concurrency`` at a time.

    ``client`` is the class recording each stream's events (a :class:`Client` subclass may read
    more of them); ``headers``, one mapping per client, are sent by that client only (a session
    cookie each: the streams are then N users, and no cookie jar is shared between them).
    """

    def __init__(
        self,
        url: str,
        n: int,
        *,
        encoding: str = "identity",
        concurrency: int = 100,
        client: type[Client] = Client,
        headers: Sequence[Mapping[str, str]] | None = None,
    ):
        raise_nofile()
        self.url, self.n, self.encoding, self.concurrency = url, n, encoding, concurrency
        self.ws = url.startswith("ws")
        self.clients = [client() for _ in range(n)]
        if headers is not None and len(headers) != n:
            raise ValueError(f"{len(headers)} header sets for {n} streams")
        self.headers = headers
        self.tasks: list[asyncio.Task[None]] = []
        self.session: aiohttp.ClientSession | None = None

    async def open(self, seconds: float) -> float:
        """Open every stream and wait for its first event; return the seconds it took."""
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
            cookie_jar=aiohttp.DummyCookieJar() if self.headers is not None else None,
        )
        gate = asyncio.Semaphore(self.concurrency)
        start = time.perf_counter()
        self.tasks = [
            asyncio.create_task(
                _client(
                    self.session,
                    self.url,
                    c,
                    gate,
                    self.ws,
                    self.encoding,
                    self.headers[i] if self.headers is not None else None,
                )
            )
            for i, c in enumerate(self.clients)
        ]
        waits = [asyncio.create_task(c.ready.wait()) for c in self.clients]
        _, pending = await asyncio.wait(waits, timeout=seconds)
        for task in pending:
            task.cancel()
        return time.perf_counter() - start

    @property
    def failed(self) -> int:
        return sum(1 for c in self.clients if c.error or not c.arrivals)

    def marks(self) -> list[int]:
        return [len(c.arrivals) for c in self.clients]

    async def wait_for(self, predicate: Any, seconds: float) -> bool:
        """Poll until ``predicate(client)`` holds for every live client, or ``seconds``."""
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            if all(predicate(i, c) for i, c in enumerate(self.clients) if not c.error):
                return True
            await asyncio.sleep(0.01)
        return False

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.session is not None:
            await self.session.close()


def commands_session(concurrency: int = 64) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=concurrency)
    return aiohttp.ClientSession(
        connector=connector,
        cookies={"csrftoken": CSRF},
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def post(
    session: aiohttp.ClientSession,
    url: str,
    data: dict[str, Any] | None = None,
    *,
    seconds: float | None = None,
) -> int:
    """POST a command as Datastar does (JSON signals, CSRF cookie and header).

    ``seconds``, when given, replaces the session's timeout for this request."""
    headers = {"Datastar-Request": "true", "X-CSRFToken": CSRF, "Content-Type": "application/json"}
    kwargs: dict[str, Any] = {}
    if seconds is not None:
        kwargs["timeout"] = aiohttp.ClientTimeout(total=seconds)
    body = json.dumps(data or {})
    async with session.post(url, data=body, headers=headers, **kwargs) as response:
        await response.read()
        return response.status


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json()
