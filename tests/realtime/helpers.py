"""What the reusable app's tests share beyond tests/helpers.py: the test views' page (``auth.Group``
names), raw and decoded SSE readers, raw LISTEN connections, and a backend that records calls."""

from __future__ import annotations

import asyncio
import json
import re
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import psycopg
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test import override_settings

from realtime import publish, testing
from realtime.relay.base import Backend
from realtime.relay.hub import Hub
from realtime.testing import SSEEvent

GROUPS = "/test/groups/stream/"
CLOCK = "/test/groups/clock/"
PRIVATE = "/test/groups/private/"
ADD = "/test/groups/add/"
ADD_LATER = "/test/groups/add-later/"
ADD_PRIVATE = "/test/groups/add-private/"

_LI = re.compile(r"<li>(.*?)</li>")


def group_names(event: SSEEvent) -> list[str]:
    """The names a GroupsStream render shows (``[]`` for the empty list)."""
    return _LI.findall(event.elements)


def is_patch(event: SSEEvent) -> bool:
    return event.event == "datastar-patch-elements" and 'id="groups"' in event.elements


def shows(*names: str) -> Callable[[SSEEvent], bool]:
    """Predicate: a GroupsStream render showing exactly ``names`` (sorted by the view)."""
    expected = sorted(names)
    return lambda event: is_patch(event) and group_names(event) == expected


def add_group(name: str, *, notify: bool = True) -> None:
    """Commit a new group (and publish ``groups`` in the same transaction)."""
    with transaction.atomic():
        Group.objects.create(name=name)
        if notify:
            publish("groups")


def tab_id(n: int = 0) -> str:
    """A fresh tab id owned by the test client's browser (``n`` only tells call sites apart)."""
    return testing.tab_id()


def conninfo() -> dict[str, Any]:
    """libpq parameters of Django's (test) database, for raw psycopg connections."""
    return dict(connection.get_connection_params())


@contextmanager
def raw_listener(channel: str) -> Iterator[psycopg.Connection[Any]]:
    """A plain psycopg connection LISTENing on ``channel`` (outside Django and realtime)."""
    with psycopg.connect(**conninfo(), autocommit=True) as conn:
        conn.execute(f'LISTEN "{channel}"')
        yield conn


def notifications(conn: psycopg.Connection[Any], timeout: float = 5.0) -> list[str]:
    """Payloads that arrive on ``conn``'s channel before a marker it sends now.

    PostgreSQL delivers notifications in commit order, so everything committed before this call
    (a duplicate, a stray) comes before the marker: no time window to guess, none to miss.
    """
    [[channel]] = conn.execute("SELECT pg_listening_channels()").fetchall()
    conn.execute("SELECT pg_notify(%s, %s)", [channel, _MARKER])
    payloads = []
    for notify in conn.notifies(timeout=timeout):
        if notify.payload == _MARKER:
            return payloads
        payloads.append(notify.payload)
    raise AssertionError(f"the marker notification did not come back within {timeout}s")


_MARKER = "-- end of the test's notifications --"


def listener_backends() -> list[int]:
    """The pids of realtime listener connections to the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE application_name = 'realtime-listener' AND datname = current_database()"
        )
        return [row[0] for row in cursor.fetchall()]


class RawStreams:
    """Many SSE streams on raw sockets, read by one selector (cheap enough for hundreds)."""

    def __init__(
        self,
        port: int,
        path: str,
        count: int,
        *,
        signals: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        query = "?" + urlencode({"datastar": json.dumps(signals)}) if signals is not None else ""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = (
            f"GET {path}{query} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Accept: text/event-stream\r\nDatastar-Request: true\r\n{extra}\r\n"
        ).encode()
        self.selector = selectors.DefaultSelector()
        self.sockets: list[socket.socket] = []
        self.received: list[bytearray] = []
        self.closed: list[bool] = []
        try:
            for index in range(count):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                self.sockets.append(sock)
                self.received.append(bytearray())
                self.closed.append(False)
                sock.sendall(request)
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, index)
        except BaseException:
            self.close()
            raise

    def pump(self, timeout: float) -> None:
        """Read whatever arrives for up to ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            for key, _ in self.selector.select(min(remaining, 0.05)):
                index = key.data
                try:
                    data = self.sockets[index].recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionError:
                    data = b""
                if data:
                    self.received[index].extend(data)
                else:
                    self.closed[index] = True
                    self.selector.unregister(self.sockets[index])

    def wait(self, condition: Callable[[bytes], bool], timeout: float = 10.0) -> None:
        """Read until every stream's bytes satisfy ``condition``."""
        deadline = time.monotonic() + timeout
        while not all(condition(bytes(r)) for r in self.received):
            if time.monotonic() > deadline:
                done = sum(condition(bytes(r)) for r in self.received)
                raise AssertionError(f"{done}/{len(self.received)} streams got there in {timeout}s")
            self.pump(0.05)

    def close(self) -> None:
        for sock in self.sockets:
            with suppress(KeyError, ValueError):
                self.selector.unregister(sock)
            sock.close()
        self.selector.close()

    def __enter__(self) -> RawStreams:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DecodedStream:
    """One stream on a raw socket: HTTP/1.1 chunked framing undone and the body decompressed as
    it arrives (gzip, br or identity), so a test sees exactly what a browser could decode when."""

    def __init__(
        self,
        port: int,
        path: str,
        *,
        encoding: str = "identity",
        headers: dict[str, str] | None = None,
    ) -> None:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
                f"Datastar-Request: true\r\nAccept-Encoding: {encoding}\r\n{extra}\r\n"
            ).encode()
        )
        self.status = 0
        self.headers: dict[str, str] = {}
        self.text = ""  # everything decoded so far
        self.ended = False
        self._raw = b""
        self._head_done = False
        self._decoder: Any = None
        self.gzip: Any = None  # the gzip decoder, when the body is gzip

    def _start_body(self, head: bytes) -> None:
        import zlib

        import brotli

        status_line, *lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split()[1])
        self.headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)
        }
        coding = self.headers.get("content-encoding", "identity")
        if coding == "gzip":
            self.gzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._decoder = self.gzip.decompress
        elif coding == "br":
            self._decoder = brotli.Decompressor().process
        else:
            self._decoder = lambda data: data

    def _consume(self) -> None:
        if not self._head_done:
            head, sep, rest = self._raw.partition(b"\r\n\r\n")
            if not sep:
                return
            self._start_body(head)
            self._head_done, self._raw = True, rest
        while True:
            size_line, sep, rest = self._raw.partition(b"\r\n")
            if not sep:
                return
            size = int(size_line.split(b";")[0], 16)
            if len(rest) < size + 2:
                return
            chunk, self._raw = rest[:size], rest[size + 2 :]
            if size == 0:
                self.ended = True
                return
            self.text += self._decoder(chunk).decode()

    def read_until(self, condition: Callable[[str], bool], timeout: float = 5.0) -> str:
        """Read until the decoded text satisfies ``condition``; return that text."""
        deadline = time.monotonic() + timeout
        while not condition(self.text):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.ended:
                raise AssertionError(
                    f"not there after {timeout}s; decoded so far: {self.text[-300:]!r}"
                )
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                self.ended = True
                continue
            self._raw += data
            self._consume()
        return self.text

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> DecodedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def override_realtime(**values: Any) -> Iterator[None]:
    """Change some REALTIME keys, keeping the test project's others."""
    with override_settings(REALTIME={**settings.REALTIME, **values}):
        yield


class Elements(HTMLParser):
    """Every start tag with its (unescaped) attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


class FakeBackend(Backend):
    """Records start/stop; messages are fed to the hub by the test."""

    def __init__(self) -> None:
        self.starts = 0
        self.stops = 0

    @classmethod
    def publish(cls, message: str, *, using: str) -> None:
        raise AssertionError("the hub never publishes")

    async def start(self, hub: Hub) -> None:
        self.starts += 1
        await asyncio.sleep(0)

    async def stop(self) -> None:
        self.stops += 1
