"""A browser tab's stream, as the Datastar client keeps it open: connect, read, reconnect.

This mirrors the runtime ``{% datastar_script %}`` loads (realtime/static/realtime/datastar/
datastar.js, Datastar v1.0.1 with StarHTML's two patches): the fetch loop every ``@get`` runs
(minified as ``Nn``; the names below are its option names), with the options the page's
``{% realtime_page %}`` tag writes (:func:`stream_options` reads them from the tag itself, in the
checkout whose server is measured). What the loop does, and so what :class:`Tab` does:

- state: ``p`` (the current interval, from ``retryInterval``, default 1000 ms), ``A`` (the base
  interval, ``p`` at first) and ``J`` (network errors in a row);
- an answer ``200``: ``J = 0``, ``p = A``; the body is read; an SSE ``retry:`` field sets
  ``A = p = value``; when the body ends, with ``retry: 'always'`` the request is made again after
  ``p`` ms (not after a redirect), else the loop ends;
- another status (not 204, not a redirect): with ``retry: 'always'`` (or ``'error'`` and a 4xx or
  5xx) the request is made again after ``p`` ms, ``p`` unchanged; else the loop ends;
- a network error (refused, reset while reading): the request is made again after ``p`` ms, then
  ``p = min(p * retryScaler, retryMaxWait)`` (default 2 and 30,000 ms); the ``retryMaxCount``-th
  error in a row (default 10) ends the loop. (The bundle checks no ``retry`` option there.)

There is no jitter in the client: tabs whose streams end together reconnect together, unless the
server's ``retry:`` fields spread them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import ROOT

#: What the Datastar client sends with a ``@get`` (its ``Accept`` and ``Datastar-Request``).
HEADERS = {
    "Accept": "text/event-stream, text/html, application/json",
    "Datastar-Request": "true",
    "Accept-Encoding": "identity",
}


@dataclass(frozen=True)
class RetryOptions:
    """A ``@get``'s retry options, with the bundle's defaults."""

    retry: str = "auto"
    interval: float = 1000.0
    scaler: float = 2.0
    max_wait: float = 30000.0
    max_count: int = 10

    @classmethod
    def parse(cls, action: str, defaults: RetryOptions | None = None) -> RetryOptions:
        """The options of a ``@get('url', {...})`` expression (``defaults``, else the bundle's,
        for those it omits)."""

        def value(name: str) -> str | None:
            found = re.search(rf"\b{name}\s*:\s*('[^']*'|[0-9.]+)", action)
            return found.group(1).strip("'") if found else None

        defaults = defaults or cls()
        return cls(
            retry=value("retry") or defaults.retry,
            interval=float(value("retryInterval") or defaults.interval),
            scaler=float(value("retryScaler") or defaults.scaler),
            max_wait=float(value("retryMaxWait") or defaults.max_wait),
            max_count=int(value("retryMaxCount") or defaults.max_count),
        )


def stream_options(root: Path = ROOT, python: str = sys.executable) -> RetryOptions:
    """The retry options the ``{% realtime_page %}`` tag of the checkout ``root`` writes."""
    code = "from realtime.templatetags.realtime import _stream_get; print(_stream_get('/s/', ''))"
    action = subprocess.run(
        [python, "-c", code],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return RetryOptions.parse(action)


@dataclass
class Render:
    """A ``datastar-patch-elements`` event: when, on which connection, how many ``<li>``."""

    at: float
    connection: int
    items: int


@dataclass
class Tab:
    """One tab's stream, kept open as the Datastar client does (see the module docstring)."""

    url: str
    options: RetryOptions
    #: Cookies the tab's browser sends (a session, for a signed-in tab).
    cookies: dict[str, str] | None = None
    renders: list[Render] = field(default_factory=list)
    #: Requests made, answers 200 among them, network errors; and whether it gave up.
    attempts: int = 0
    connections: int = 0
    errors: int = 0
    gave_up: bool = False
    last_error: str | None = None
    #: (perf_counter time, what happened) for each request, when ``trace`` is on.
    log: list[tuple[float, str]] | None = None
    first: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Keep the stream open until cancelled (or until the client would give up)."""
        opts = self.options
        p = base = opts.interval
        errors_in_row = 0
        while True:
            try:
                self.attempts += 1
                self._trace("request")
                headers = HEADERS
                if self.cookies:
                    cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
                    headers = {**HEADERS, "Cookie": cookie}
                async with session.get(self.url, headers=headers) as response:
                    status = response.status
                    self._trace(f"status {status}")
                    if status != 200:
                        await response.read()
                        retry = opts.retry == "always" or (
                            opts.retry == "error" and 400 <= status < 600
                        )
                        reopen = status != 204 and not 300 <= status < 400
                        if opts.retry != "never" and reopen and retry:
                            await asyncio.sleep(p / 1000)
                            continue
                        return
                    errors_in_row, p = 0, base
                    self.connections += 1
                    retry_ms = await self._read(response, self.connections)
                    if retry_ms is not None:
                        base = p = retry_ms
                    self._trace("ended")
                if opts.retry == "always":
                    await asyncio.sleep(p / 1000)
                    continue
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the bundle's catch: any failure of fetch or read
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._trace(f"error {type(exc).__name__}")
                delay = p
                p = min(p * opts.scaler, opts.max_wait)
                errors_in_row += 1
                if errors_in_row >= opts.max_count:
                    self.gave_up = True
                    return
                await asyncio.sleep(delay / 1000)

    def _trace(self, what: str) -> None:
        if self.log is not None:
            self.log.append((time.perf_counter(), what))

    async def _read(self, response: aiohttp.ClientResponse, connection: int) -> float | None:
        """Read the body until it ends; return the last ``retry:`` value it set (ms)."""
        buffer, retry = b"", None
        while True:
            chunk = await response.content.readany()
            if not chunk:
                return retry
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                for line in event.split(b"\n"):
                    if line.startswith(b"retry:"):
                        with contextlib.suppress(ValueError):
                            retry = float(line[6:].strip())
                if b"event: datastar-patch-elements" in event:
                    self.renders.append(
                        Render(time.perf_counter(), connection, event.count(b"<li>"))
                    )
                    self.first.set()
                    self.changed.set()


def session(sock_connect: float = 60.0) -> aiohttp.ClientSession:
    """A session for many tabs: no connection limit, one connection per stream."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, force_close=True),
        auto_decompress=False,
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=sock_connect),
    )
