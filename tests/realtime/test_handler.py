"""realtime.handler: a stream opens in one call on the render pool, and a command runs in one call
on the command pool, with every check they had."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.asgi import get_asgi_application as django_application
from django.core.signals import request_started
from django.test import Client

from realtime import handler, stats
from realtime.handler import (
    COMMAND,
    STREAM,
    ASGIHandler,
    _path_kind,
    _view_kind,
    get_asgi_application,
)
from realtime.testing import LiveServer, open_stream, post_command
from tests.helpers import wait_for
from tests.realtime.helpers import GROUPS, PRIVATE, add_group, shows
from tests.realtime.urls import SlowStream, ThreadCommand, ThreadStream

THREAD = "/hooks/thread/"
THREAD_COMMAND = "/hooks/thread-command/"
DENIED = "/hooks/denied/"


def get(server: LiveServer, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(
            "GET", path, headers={"Accept": "text/event-stream", "Datastar-Request": "true"}
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@pytest.fixture
def started_on() -> Iterator[list[str]]:
    """The threads ``request_started`` is sent on while the test runs."""
    threads: list[str] = []

    def record(**kwargs: Any) -> None:
        threads.append(threading.current_thread().name)

    request_started.connect(record, dispatch_uid="test_handler.started_on")
    ThreadStream.threads.clear()
    yield threads
    request_started.disconnect(dispatch_uid="test_handler.started_on")


def test_a_stream_opens_in_one_call_on_the_render_pool(
    server: LiveServer, started_on: list[str]
) -> None:
    add_group("alpha")
    with open_stream(server.url + THREAD) as stream:
        stream.next_event(shows("alpha"), timeout=5)
    # The view's access check ran on a render thread, after request_started on that same thread
    # (not on a thread started for the request, as under Django's own handler).
    [view_thread] = ThreadStream.threads
    assert view_thread.startswith("realtime-render")
    assert view_thread in started_on


def test_the_middleware_runs_around_the_stream(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(timeout=5)
        # SecurityMiddleware.process_response and the view's own headers, together.
        assert stream.headers["x-content-type-options"] == "nosniff"
        assert stream.headers["cache-control"] == "no-store"


def test_access_checks_still_refuse(server: LiveServer) -> None:
    base = stats()["open_streams"]
    for path in (PRIVATE, DENIED):  # LoginRequiredMixin; has_permission() returning False
        status, headers, body = get(server, path)
        assert status == 403, path
        assert not headers["content-type"].startswith("text/event-stream")
        assert b"datastar" not in body
    assert stats()["open_streams"] == base


def test_a_session_and_its_user_are_loaded_for_the_stream(server: LiveServer) -> None:
    client = Client()
    client.force_login(User.objects.create(username="ada"))
    with open_stream(
        server.url + PRIVATE, cookies={"sessionid": client.cookies["sessionid"].value}
    ) as stream:
        assert stream.status == 200
        stream.next_event(shows(), timeout=5)


def test_a_client_that_leaves_ends_its_stream(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(timeout=5)
        wait_for(lambda: stats()["open_streams"] == 1, timeout=5, what="the stream to count")
    wait_for(lambda: stats()["open_streams"] == 0, timeout=5, what="the stream to end")


def test_a_stream_get_with_a_body_still_streams(server: LiveServer) -> None:
    """A body (unusual on a GET) is spooled as Django does; the stream opens all the same."""
    add_group("delta")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(
            "GET",
            GROUPS,
            body=b"x" * 1000,
            headers={"Accept": "text/event-stream", "Datastar-Request": "true"},
        )
        response = connection.getresponse()
        assert response.status == 200
        assert b"delta" in response.read1(65536)
    finally:
        connection.close()


@pytest.fixture
def command_threads() -> list[str]:
    ThreadCommand.threads.clear()
    return ThreadCommand.threads


def test_a_command_runs_in_one_call_on_the_command_pool(
    server: LiveServer, started_on: list[str], command_threads: list[str]
) -> None:
    response = post_command(server.url + THREAD_COMMAND, {})
    assert response.status == 204, response.body
    # The view ran on a command thread, after request_started on that same thread.
    [view_thread] = command_threads
    assert view_thread.startswith("realtime-command")
    assert view_thread in started_on
    # The middleware ran around it (SecurityMiddleware.process_response).
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_command_keeps_its_checks_and_its_errors(
    server: LiveServer, command_threads: list[str]
) -> None:
    # CsrfViewMiddleware refuses it before the view runs; a GET is the view's 405 (Django's path).
    assert post_command(server.url + THREAD_COMMAND, {}, csrf=False).status == 403
    assert get(server, THREAD_COMMAND)[0] == 405
    assert command_threads == []
    # A bug in the command: Django's 500 page, and the next command is answered as before.
    assert post_command(server.url + THREAD_COMMAND, {"fail": True}).status == 500
    assert post_command(server.url + THREAD_COMMAND, {}).status == 204
    assert len(command_threads) == 2


def test_djangos_own_handler_runs_commands_on_a_thread_per_request(
    transactional_db: None, command_threads: list[str]
) -> None:
    with LiveServer(django_application()) as live:
        assert post_command(live.url + THREAD_COMMAND, {}).status == 204
    [view_thread] = command_threads
    assert not view_thread.startswith("realtime-command")


def test_other_requests_are_djangos(server: LiveServer) -> None:
    assert get(server, "/nowhere/")[0] == 404
    with open_stream(server.url + "/test/ticks/") as ticks:  # an async view: not a StreamView
        assert ticks.next_event(timeout=5).event == "tick"


def test_a_burst_of_opens_waits_at_the_gate(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most OPENING_PER_THREAD x the pool's threads dispatch at once; the others wait, and all
    open."""
    monkeypatch.setattr(handler, "OPENING_PER_THREAD", 1)
    monkeypatch.setattr(handler, "pool_size", lambda: 2)
    SlowStream.running = SlowStream.most = 0
    with LiveServer(get_asgi_application()) as live, ThreadPoolExecutor(6) as clients:
        opening = [
            clients.submit(open_stream, live.url + "/hooks/slow/", timeout=10) for _ in range(6)
        ]
        streams = [future.result() for future in opening]
        try:
            for stream in streams:
                stream.next_event(timeout=10)
        finally:
            for stream in streams:
                stream.close()
    assert SlowStream.most == 2


def test_which_paths_open_streams_or_run_commands() -> None:
    urlconf = settings.ROOT_URLCONF
    assert _path_kind(urlconf, GROUPS) == STREAM
    assert _path_kind(urlconf, "/hooks/group/3/") == STREAM
    assert _path_kind(urlconf, "/test/groups/add/") == COMMAND  # CommandView
    assert _path_kind(urlconf, "/test/groups/add-private/") == COMMAND  # @command
    assert _path_kind(urlconf, "/test/ticks/") is None
    assert _path_kind(urlconf, "/nowhere/") is None
    # Under a script prefix (a root_path), the path is matched without it.
    assert _view_kind({"path": "/app" + GROUPS, "root_path": "/app"}) == STREAM
    assert _view_kind({"path": "/app/nowhere/", "root_path": "/app"}) is None


def test_get_asgi_application_is_realtimes_handler() -> None:
    assert isinstance(get_asgi_application(), ASGIHandler)


def test_djangos_own_handler_still_streams(transactional_db: None) -> None:
    """Projects that keep Django's handler get the same streams, on a thread per request."""
    add_group("beta")
    ThreadStream.threads.clear()
    with LiveServer(django_application()) as live, open_stream(live.url + THREAD) as stream:
        stream.next_event(shows("beta"), timeout=5)
    [view_thread] = ThreadStream.threads
    assert not view_thread.startswith("realtime-render")


def asgi_scope(path: str = GROUPS, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "GET",
        "http_version": "1.1",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"accept", b"text/event-stream")],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 8000),
    }


async def test_a_client_gone_before_its_request_was_read_gets_nothing() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await get_asgi_application()(asgi_scope(), receive, send)
    assert sent == []


async def test_a_request_django_cannot_read_gets_djangos_answer() -> None:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(message)

    # A query string that is not UTF-8: Django's 400, before any middleware or view.
    await get_asgi_application()(asgi_scope(query=b"q=\xff"), receive, send)
    assert sent[0]["status"] == 400
