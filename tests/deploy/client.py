"""Many SSE streams at once, over HTTP/1.1 with or without TLS, read on an event loop of their own.

Each stream GETs the test project's live list of group names (``/test/groups/stream/``) as
Datastar does, keeps the names of its latest render and when each render arrived, and
reconnects when the server ends it (as the browser does, with ``retry: 'always'``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import re
import ssl
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

STREAM = "/test/groups/stream/"
NAMES = re.compile(r"<li>(.*?)</li>")


@functools.cache
def insecure_tls() -> ssl.SSLContext:
    """A client context that accepts the test's self-signed certificate (HTTP/1.1 only).

    One for all: making one loads the system's CA certificates (tens of milliseconds)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


class Stream:
    """One stream: the names of its latest render, and when each render arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.names: set[str] | None = None
        self.renders: list[tuple[float, frozenset[str]]] = []
        self.connects = 0
        self.errors: list[str] = []

    def arrived(self, name: str) -> float | None:
        """When the first render showing ``name`` arrived (monotonic), or None."""
        return next((at for at, names in self.renders if name in names), None)

    async def run(self, delay: float = 0.0) -> None:
        await asyncio.sleep(delay)  # many streams open over a moment, not in one burst
        parts = urlsplit(self.url)
        tls = insecure_tls() if parts.scheme == "https" else None
        while True:
            try:
                await self._once(parts.hostname or "127.0.0.1", parts.port or 443, tls)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.1)  # then reconnect, as a browser does

    async def _once(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        reader, writer = await asyncio.open_connection(host, port, ssl=tls)
        try:
            writer.write(
                f"GET {STREAM} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "Accept: text/event-stream\r\nDatastar-Request: true\r\n"
                "Accept-Encoding: identity\r\n\r\n".encode()
            )
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                raise ValueError(f"status {status!r}")
            chunked = False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower():
                    chunked = True
            self.connects += 1
            buffer = ""
            while True:
                if chunked:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        return
                    data = await reader.readexactly(size)
                    await reader.readexactly(2)
                else:
                    data = await reader.read(65536)
                    if not data:
                        return
                buffer += data.decode()
                *events, buffer = buffer.split("\n\n")
                for event in events:
                    if "datastar-patch-elements" in event and 'id="groups"' in event:
                        names = frozenset(html.unescape(n) for n in NAMES.findall(event))
                        self.renders.append((time.monotonic(), names))
                        self.names = set(names)
        finally:
            writer.transport.abort()  # closes the socket now (no TLS goodbye to wait for)


class Streams:
    """``count`` streams per URL, run on a background event loop until :meth:`close`."""

    def __init__(self, urls: list[str], count: int) -> None:
        self.streams = [Stream(url) for url in urls for _ in range(count)]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        # Tasks are referenced here: the loop holds them only weakly.
        self._tasks: list[asyncio.Task[None]] = []
        for i, stream in enumerate(self.streams):
            self._loop.call_soon_threadsafe(self._spawn, stream, i * 0.005)

    def _spawn(self, stream: Stream, delay: float) -> None:
        self._tasks.append(self._loop.create_task(stream.run(delay)))

    def wait(self, predicate: Callable[[Stream], bool], timeout: float, what: str) -> float:
        """Wait until ``predicate`` holds for every stream; return the seconds it took."""
        started = time.monotonic()
        while not all(predicate(s) for s in self.streams):
            if time.monotonic() - started > timeout:
                behind = [s for s in self.streams if not predicate(s)]
                raise AssertionError(
                    f"{len(behind)} of {len(self.streams)} streams not {what} after {timeout}s;"
                    f" e.g. {behind[0].url}: names {sorted(behind[0].names or ())},"
                    f" {len(behind[0].renders)} renders, {behind[0].connects} connections,"
                    f" errors {behind[0].errors[-3:]}"
                )
            time.sleep(0.02)
        return time.monotonic() - started

    def close(self) -> None:
        """Cancel every stream, close its connection, and stop the loop."""

        async def cancel_all() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self) -> Streams:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
