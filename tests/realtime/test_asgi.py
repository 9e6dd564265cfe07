"""``RequestBodyLimit``: bodies over the limit are refused before Django reads (and spools) them.

Pure-ASGI cases drive the middleware with fake ``receive``/``send``; the end-to-end cases send
100 MB anonymous POSTs through a real uvicorn server to the demo's application, and watch
Django's body spool (the ``SpooledTemporaryFile`` its ``ASGIHandler`` reads every body into).
"""

from __future__ import annotations

import json
import select
import socket
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.asgi import get_asgi_application
from django.test import override_settings

from realtime.asgi import RequestBodyLimit
from realtime.asgi_types import Message, Scope
from realtime.testing import LiveServer

MB = 1024 * 1024


class FakeApp:
    """An ASGI app that reads the whole body (as Django does) and answers 200 with its size."""

    def __init__(self) -> None:
        self.calls = 0
        self.body = b""
        self.disconnected = False

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.calls += 1
        if scope["type"] == "http":
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                    return
                self.body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(self.body)).encode()})


def http_scope(length: int | None = None) -> Scope:
    headers = [(b"host", b"testserver")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


async def call(app: Any, scope: Scope, chunks: list[bytes]) -> tuple[list[Message], int]:
    """Run ``app`` on a body sent as ``chunks``; return what it sent and the chunks it read."""
    sent: list[Message] = []
    read = 0

    async def receive() -> Message:
        nonlocal read
        if read < len(chunks):
            read += 1
            return {
                "type": "http.request",
                "body": chunks[read - 1],
                "more_body": read < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent, read


def assert_413(sent: list[Message], limit: int) -> None:
    start, body = sent
    assert start["status"] == 413
    assert dict(start["headers"])[b"content-type"] == b"application/json"
    assert json.loads(body["body"]) == {
        "message": f"The request body is too large (the limit is {limit} bytes).",
        "errors": {},
    }


async def test_content_length_over_the_limit_is_refused_without_reading() -> None:
    inner = FakeApp()
    sent, read = await call(RequestBodyLimit(inner, 10), http_scope(11), [b"x" * 11])
    assert_413(sent, 10)
    assert (inner.calls, read) == (0, 0)


async def test_bodies_up_to_the_limit_pass() -> None:
    inner = FakeApp()
    sent, _ = await call(RequestBodyLimit(inner, 10), http_scope(10), [b"x" * 4, b"y" * 6])
    assert [m.get("status") for m in sent] == [200, None]
    assert inner.body == b"xxxxyyyyyy"


async def test_a_body_without_length_is_cut_at_the_chunk_that_crosses_the_limit() -> None:
    inner = FakeApp()
    chunks = [b"x" * 4] * 100
    sent, read = await call(RequestBodyLimit(inner, 10), http_scope(), chunks)
    assert_413(sent, 10)
    assert inner.body == b"x" * 8, "the chunk that crossed the limit was passed on"
    assert inner.disconnected
    assert read == 3, "it kept reading after the limit"


async def test_a_lying_content_length_is_still_bounded() -> None:
    inner = FakeApp()
    sent, _ = await call(RequestBodyLimit(inner, 10), http_scope(5), [b"x" * 5, b"y" * 6])
    assert_413(sent, 10)


async def test_an_app_that_answered_before_the_limit_keeps_its_answer() -> None:
    async def early(scope: Scope, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 403, "headers": []})
        await receive()
        await receive()  # over the limit: a disconnect, not a second response
        await send({"type": "http.response.body", "body": b""})

    sent, _ = await call(RequestBodyLimit(early, 5), http_scope(), [b"x" * 4, b"y" * 4])
    assert [m.get("status") for m in sent] == [403, None]


async def test_a_malformed_content_length_is_bounded_while_reading() -> None:
    inner = FakeApp()
    scope = http_scope()
    scope["headers"].append((b"content-length", b"not a number"))
    sent, _ = await call(RequestBodyLimit(inner, 10), scope, [b"x" * 6, b"y" * 6])
    assert_413(sent, 10)
    assert inner.disconnected


async def test_an_http1_request_without_a_body_is_passed_through_untouched() -> None:
    seen: list[Any] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append((receive, send))

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    scope = {**http_scope(), "method": "GET", "http_version": "1.1"}
    await RequestBodyLimit(app, 10)(scope, receive, send)
    assert seen == [(receive, send)]
    # Chunked, or without a version that says it cannot have a body: watched as before.
    chunked = {**scope, "headers": [*scope["headers"], (b"transfer-encoding", b"chunked")]}
    await RequestBodyLimit(app, 10)(chunked, receive, send)
    await RequestBodyLimit(app, 10)(http_scope(), receive, send)
    assert seen[1] != (receive, send)
    assert seen[2] != (receive, send)


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
async def test_other_scopes_pass_through(scope_type: str) -> None:
    inner = FakeApp()
    await call(RequestBodyLimit(inner, 0), {"type": scope_type, "headers": []}, [])
    assert inner.calls == 1


async def test_the_default_limit_is_djangos_data_upload_max_memory_size() -> None:
    app = RequestBodyLimit(FakeApp())
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        assert app.limit() == 100
        sent, _ = await call(app, http_scope(101), [b"x" * 101])
        assert sent[0]["status"] == 413
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=None):
        assert app.limit() is None
        sent, _ = await call(app, http_scope(10 * MB), [b"x" * MB] * 10)
        assert sent[0]["status"] == 200


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_max_body_size_is_validated(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_body_size"):
        RequestBodyLimit(FakeApp(), bad)


def test_the_demo_and_runserver_bound_bodies() -> None:
    from config.asgi import application
    from realtime.management.commands.runserver import Command

    assert isinstance(application, RequestBodyLimit)
    with override_settings(ASGI_APPLICATION=None):
        assert isinstance(Command().get_application(use_static_handler=False), RequestBodyLimit)
    with override_settings(ASGI_APPLICATION="config.asgi.application"):
        assert Command().get_application(use_static_handler=False) is application  # not twice


# Through uvicorn ---------------------------------------------------------------------------------


class Spools:
    """Every body spool Django's ASGIHandler opens: bytes written, and whether it went to disk."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.written: list[int] = []
        self.on_disk = False
        real = tempfile.SpooledTemporaryFile
        spools = self

        class Recording(real):  # type: ignore[misc,valid-type]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.index = len(spools.written)
                spools.written.append(0)

            def write(self, data: Any) -> int:
                written = super().write(data)
                spools.written[self.index] += written
                spools.on_disk |= bool(self._rolled)
                return written

        import django.core.handlers.asgi as handler

        monkeypatch.setattr(handler.tempfile, "SpooledTemporaryFile", Recording)


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> Spools:
    return Spools(monkeypatch)


@pytest.fixture
def server(transactional_db: None) -> Iterator[LiveServer]:
    with LiveServer(RequestBodyLimit(get_asgi_application())) as live:
        yield live


def post_head(server: LiveServer, headers: str) -> bytes:
    return (
        f"POST /test/groups/add/ HTTP/1.1\r\nHost: {server.host}\r\n"
        f"Content-Type: application/json\r\n{headers}\r\n"
    ).encode()


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def status_and_json(response: bytes) -> tuple[int, Any]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_100_mb_content_length_is_refused_before_the_body_is_sent(
    server: LiveServer, spools: Spools
) -> None:
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(post_head(server, f"Content-Length: {100 * MB}\r\n"))
        started = time.monotonic()
        response = read_response(sock)
    # Not one byte of the body was sent, and the answer came at once.
    assert time.monotonic() - started < 2
    status, payload = status_and_json(response)
    assert status == 413
    assert payload == {
        "message": "The request body is too large (the limit is 2621440 bytes).",
        "errors": {},
    }
    assert spools.written == [], "Django started reading the body"


def test_a_100_mb_chunked_body_is_cut_at_the_limit_in_memory(
    server: LiveServer, spools: Spools
) -> None:
    chunk = b"x" * (256 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    sent = 0
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(post_head(server, "Transfer-Encoding: chunked\r\n"))
        try:
            while sent < 100 * MB:
                sock.sendall(frame)
                sent += len(chunk)
                if select.select([sock], [], [], 0.005)[0]:
                    break  # the server answered: stop sending
        except (BrokenPipeError, ConnectionResetError):
            pass
        response = read_response(sock)
    assert sent < 20 * MB, f"the server kept reading: {sent} bytes sent"
    assert status_and_json(response)[0] == 413
    assert spools.written, "Django read nothing"
    assert max(spools.written) <= 2621440
    assert not spools.on_disk, "the body went to a temporary file on disk"


def test_bodies_under_the_limit_reach_django(server: LiveServer) -> None:
    import urllib.request

    from django.contrib.auth.models import Group

    request = urllib.request.Request(
        server.url + "/test/groups/add/",
        data=b'{"name": "gardeners"}',
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    # Anonymous and without a CSRF token: refused by Django (403), after the limit let it in.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    refused.value.close()
    assert refused.value.code == 403
    assert not Group.objects.exists()
