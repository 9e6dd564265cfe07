"""Helpers for testing live pages: parse SSE, serve the app for real, read streams, capture publishes.

- :func:`parse_sse` turns bytes into :class:`SSEEvent` values.
- :class:`LiveServer` serves Django's ASGI application with uvicorn on a free loopback port, in a
  background thread (use with ``transactional_db``: the server only sees committed data, and NOTIFY
  is delivered at commit).
- :func:`open_stream` opens a stream and reads its events (blocking, with timeouts).
- :func:`capture_publishes` records what ``publish`` sends in the current thread.
- :func:`tab_id` gives a tab id that the test client's browser (its CSRF cookie) owns.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from realtime.asgi_types import ASGIApp


@dataclass(frozen=True)
class SSEEvent:
    """One Server-Sent Event: its type, ``data:`` lines and id."""

    event: str = "message"
    data_lines: tuple[str, ...] = ()
    id: str | None = None

    @property
    def data(self) -> str:
        """The data lines joined with newlines, as a browser's ``EventSource`` gives them."""
        return "\n".join(self.data_lines)

    def _field(self, name: str) -> str:
        prefix = name + " "
        return "\n".join(line[len(prefix) :] for line in self.data_lines if line.startswith(prefix))

    @property
    def elements(self) -> str:
        """The HTML of a ``datastar-patch-elements`` event."""
        return self._field("elements")

    @property
    def selector(self) -> str | None:
        """The selector of a ``datastar-patch-elements`` event, if any."""
        return self._field("selector") or None

    @property
    def signals(self) -> dict[str, Any]:
        """The signals of a ``datastar-patch-signals`` event."""
        raw = self._field("signals")
        return dict(json.loads(raw)) if raw else {}


def parse_sse(data: bytes | str) -> list[SSEEvent]:
    """Parse complete SSE events (comments and a trailing partial event are ignored)."""
    text = data.decode() if isinstance(data, bytes) else data
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    events = []
    for block in text.split("\n\n")[:-1]:
        event, lines, event_id = "message", [], None
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                lines.append(value)
            elif name == "id":
                event_id = value
        if lines or event != "message":
            events.append(SSEEvent(event, tuple(lines), event_id))
    return events


class LiveServer:
    """Serve an ASGI app (default: :func:`realtime.handler.get_asgi_application`, Django's
    handler opening streams in one hop) with uvicorn on ``127.0.0.1`` in a thread.

    ``with LiveServer() as server: ... server.url ...``. Stopping ends open streams.
    """

    def __init__(self, app: ASGIApp | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port or _free_port(host)
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._allowed_hosts: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> LiveServer:
        import uvicorn
        from django.conf import settings

        from realtime.handler import get_asgi_application

        app = self.app or get_asgi_application()
        # Like Django's LiveServerTestCase: the test client's host must be allowed even when the
        # project's ALLOWED_HOSTS (under DEBUG = False, as in tests) does not list it.
        self._allowed_hosts = settings.ALLOWED_HOSTS
        if self.host not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
            settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, self.host]
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        serve = self._server.serve

        async def serve_remembering_the_loop(*args: Any, **kwargs: Any) -> None:
            self._loop = asyncio.get_running_loop()
            await serve(*args, **kwargs)

        self._server.serve = serve_remembering_the_loop
        self._thread = threading.Thread(
            target=self._server.run, name="realtime-live-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        from django.conf import settings

        from realtime.relay.registry import all_hubs

        # End this server's streams only: other live servers of the process keep theirs.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            for hub in all_hubs():
                if hub.loop is loop:
                    loop.call_soon_threadsafe(hub.close)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        settings.ALLOWED_HOSTS = self._allowed_hosts


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EventStream:
    """An open SSE response read on a background thread; events arrive in :attr:`events`."""

    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection
    status: int
    headers: dict[str, str]
    events: queue.Queue[SSEEvent] = field(default_factory=queue.Queue)
    raw: bytearray = field(default_factory=bytearray)
    _closed: threading.Event = field(default_factory=threading.Event)

    def _read(self) -> None:
        buffer = b""
        try:
            while not self._closed.is_set():
                chunk = self.response.read1(65536)
                if not chunk:
                    break
                self.raw.extend(chunk)
                buffer += chunk
                *complete, buffer = buffer.split(b"\n\n")
                for block in complete:
                    for event in parse_sse(block + b"\n\n"):
                        self.events.put(event)
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            # The connection was closed under the reader (close(), or the server went away).
            pass
        finally:
            self._closed.set()

    @property
    def ended(self) -> bool:
        """Whether the server ended the response (or it was closed)."""
        return self._closed.is_set()

    def next_event(
        self, predicate: Callable[[SSEEvent], bool] | None = None, timeout: float = 5.0
    ) -> SSEEvent:
        """The next event (matching ``predicate``), waiting at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event within {timeout}s")
            try:
                event = self.events.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                if self.ended and self.events.empty():
                    raise EOFError("the stream ended") from None
                continue
            if predicate is None or predicate(event):
                return event

    def drain(self) -> list[SSEEvent]:
        """Every event received and not yet taken."""
        taken = []
        while True:
            try:
                taken.append(self.events.get_nowait())
            except queue.Empty:
                return taken

    def close(self) -> None:
        """Close the connection (the server sees the client go away)."""
        self._closed.set()
        try:
            if self.connection.sock is not None:
                self.connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_stream(
    url: str,
    *,
    signals: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    timeout: float = 5.0,
    htmx: bool = False,
) -> EventStream:
    """GET ``url`` as Datastar does (signals in ``?datastar=``) and read its events in a thread.

    It sends the CSRF cookie :func:`post_command` sends (unless ``cookies`` names another), so
    a :func:`tab_id` in ``signals`` is this browser's. ``htmx=True`` GETs it as htmx's SSE
    extension (a browser ``EventSource``) does: no Datastar header, and ``signals`` (e.g.
    ``{"tab": ...}``) as plain query parameters.
    """
    from urllib.parse import urlencode

    parts = urlsplit(url)
    path = parts.path or "/"
    query = parts.query
    if signals is not None:
        extra = urlencode(signals) if htmx else urlencode({"datastar": json.dumps(signals)})
        query = "&".join(filter(None, [query, extra]))
    if query:
        path += "?" + query
    client = {"Cache-Control": "no-cache"} if htmx else {"Datastar-Request": "true"}
    request_headers = {"Accept": "text/event-stream", **client, **(headers or {})}
    jar = {"csrftoken": TEST_CSRF_TOKEN, **(cookies or {})}
    request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout
    )
    connection.request("GET", path, headers=request_headers)
    response = connection.getresponse()
    if connection.sock is not None:
        connection.sock.settimeout(None)
    stream = EventStream(
        response, connection, response.status, {k.lower(): v for k, v in response.getheaders()}
    )
    threading.Thread(target=stream._read, name="realtime-test-stream", daemon=True).start()
    return stream


@dataclass(frozen=True)
class CommandResponse:
    """What a command answered."""

    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


#: A well-formed CSRF secret used by :func:`post_command` (cookie and header must match).
TEST_CSRF_TOKEN = "realtimetestingcsrftoken00000000"


def post_command(
    url: str,
    data: dict[str, Any] | None = None,
    *,
    form: bool = False,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    csrf: bool = True,
    timeout: float = 10.0,
    htmx: bool = False,
) -> CommandResponse:
    """POST a command as Datastar does (JSON signals; ``form=True`` for form data), with a valid
    CSRF cookie and header unless ``csrf=False``.

    ``htmx=True`` posts as an htmx form does: form data with ``HX-Request: true``.
    """
    from urllib.parse import urlencode

    parts = urlsplit(url)
    jar = dict(cookies or {})
    form = form or htmx
    client = {"HX-Request": "true"} if htmx else {"Datastar-Request": "true"}
    request_headers = {**client, **(headers or {})}
    if csrf:
        jar.setdefault("csrftoken", TEST_CSRF_TOKEN)
        request_headers.setdefault("X-CSRFToken", jar["csrftoken"])
    if jar:
        request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in jar.items())
    if form:
        body = urlencode(data or {}, doseq=True).encode()
        request_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    else:
        body = json.dumps(data or {}).encode()
        request_headers.setdefault("Content-Type", "application/json")
    connection = http.client.HTTPConnection(
        parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout
    )
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=request_headers)
        response = connection.getresponse()
        return CommandResponse(
            response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
        )
    finally:
        connection.close()


def tab_id(csrf_token: str = TEST_CSRF_TOKEN) -> str:
    """A fresh tab id owned by the browser whose CSRF cookie is ``csrf_token`` (by default, the
    one :func:`open_stream` and :func:`post_command` send): pass it as the ``tab`` signal."""
    from realtime.tabs import issue_tab_id

    return issue_tab_id(csrf_token)


@contextmanager
def capture_publishes() -> Iterator[list[tuple[str, Any]]]:
    """Record ``(topic, payload)`` for every ``publish`` in this block, as it is called.

    Publishes still go through (streams still see them at commit). Only calls made on this thread
    are recorded.
    """
    from realtime.relay.publish import observers

    captured: list[tuple[str, Any]] = []
    owner = threading.get_ident()

    def record(topic: str, payload: Any) -> None:
        if threading.get_ident() == owner:
            captured.append((topic, payload))

    observers.append(record)
    try:
        yield captured
    finally:
        observers.remove(record)


__all__ = [
    "CommandResponse",
    "EventStream",
    "LiveServer",
    "SSEEvent",
    "capture_publishes",
    "open_stream",
    "parse_sse",
    "post_command",
    "tab_id",
]
