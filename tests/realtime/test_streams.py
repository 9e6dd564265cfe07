"""StreamView over real HTTP: full state at once, re-render on publish, coalescing, shared renders,
heartbeat, refresh, cleanup, authorization, WSGI refusal, stalled clients, compression, shutdown."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client, override_settings

from realtime import publish, stats
from realtime.conf import get_config
from realtime.testing import LiveServer, open_stream
from tests.project import views
from tests.realtime.conftest import (
    CLOCK,
    GROUPS,
    PRIVATE,
    DecodedStream,
    RawStreams,
    add_group,
    group_names,
    is_patch,
    shows,
    wait_for,
)


@contextmanager
def override_realtime(**values: Any) -> Iterator[None]:
    """Change some REALTIME keys, keeping the test project's others."""
    with override_settings(REALTIME={**settings.REALTIME, **values}):
        yield


def test_full_state_at_once(server: LiveServer) -> None:
    add_group("beta")
    add_group("alpha")
    started = time.monotonic()
    with open_stream(server.url + GROUPS) as stream:
        event = stream.next_event(timeout=5)
        assert time.monotonic() - started < 2
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-cache"
        assert stream.headers["x-accel-buffering"] == "no"
        assert event.event == "datastar-patch-elements"
        assert group_names(event) == ["alpha", "beta"]
        assert event.elements.startswith('<ul id="groups">')


def test_empty_state_renders_too(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        assert 'class="empty"' in stream.next_event(timeout=5).elements


def test_publish_re_renders_from_the_database(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        add_group("first")
        stream.next_event(shows("first"), timeout=5)
        add_group("second")
        stream.next_event(shows("first", "second"), timeout=5)


def test_unwatched_topics_do_not_wake_the_stream(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        publish("other")
        publish("groups.1")
        with pytest.raises(TimeoutError):
            stream.next_event(is_patch, timeout=0.5)


def test_write_without_publish_shows_with_the_next_publish(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        add_group("silent", notify=False)
        with pytest.raises(TimeoutError):
            stream.next_event(is_patch, timeout=0.3)
        publish("groups")
        stream.next_event(shows("silent"), timeout=5)


def test_rapid_publishes_coalesce_and_end_on_the_final_state(server: LiveServer) -> None:
    streams = [open_stream(server.url + GROUPS, signals={"n": n}) for n in range(3)]
    try:
        for stream in streams:
            stream.next_event(shows(), timeout=5)
        names = [f"g{n:03d}" for n in range(100)]
        commit_100_rapid_publishes()
        for stream in streams:
            stream.next_event(shows(*names), timeout=10)
            time.sleep(0.2)
            # A wake that came in during the last render may render once more: the same state.
            later = [e for e in stream.drain() if is_patch(e)]
            assert len(later) <= 1
            assert all(group_names(e) == names for e in later)
        for stream in streams:
            renders = [e for e in parse_raw(stream) if is_patch(e)]
            # Measured: about 20 renders for 100 publishes in half a second (each render ~20 ms).
            assert 2 <= len(renders) < 50, len(renders)
            assert group_names(renders[-1]) == names
    finally:
        for stream in streams:
            stream.close()


def commit_100_rapid_publishes() -> None:
    """100 transactions, each adding a group and publishing ``groups``, within milliseconds.

    Committed by the server itself (a DO block may COMMIT between statements) so that they come
    faster than any render, whatever the load on the machine: the point is what the stream does
    with a burst, and a Python loop of commits is sometimes slower than a render.
    """
    channel = get_config().CHANNEL
    with connection.cursor() as cursor:
        cursor.execute(
            "DO $$ BEGIN FOR i IN 0..99 LOOP "
            "INSERT INTO auth_group (name) VALUES ('g' || lpad(i::text, 3, '0')); "
            f"PERFORM pg_notify('{channel}', 'groups'); COMMIT; "
            "END LOOP; END $$"
        )


def parse_raw(stream: Any) -> list[Any]:
    from realtime.testing import parse_sse

    return parse_sse(bytes(stream.raw))


def test_identical_subscribers_share_one_render(server: LiveServer) -> None:
    before = stats()
    with RawStreams(server.port, GROUPS, 100, signals={"same": True}) as streams:
        streams.wait(lambda raw: b'class="empty"' in raw, timeout=15)
        views.render_count = 0
        add_group("shared")
        streams.wait(lambda raw: b"<li>shared</li>" in raw, timeout=15)
        assert views.render_count == 1
        after = stats()
        assert after["renders_shared"] - before["renders_shared"] >= 99


def test_different_signals_render_separately(server: LiveServer) -> None:
    with (
        open_stream(server.url + GROUPS, signals={"q": "a"}) as a,
        open_stream(server.url + GROUPS, signals={"q": "b"}) as b,
    ):
        a.next_event(shows(), timeout=5)
        b.next_event(shows(), timeout=5)
        views.render_count = 0
        add_group("x")
        a.next_event(shows("x"), timeout=5)
        b.next_event(shows("x"), timeout=5)
        assert views.render_count == 2


def test_disconnect_removes_the_subscription(server: LiveServer) -> None:
    base = stats()["open_streams"]
    streams = [open_stream(server.url + GROUPS, signals={"n": n % 2}) for n in range(5)]
    try:
        for stream in streams:
            stream.next_event(timeout=5)
        assert stats()["open_streams"] == base + 5
        assert stats()["subscriptions"].get("groups") == 5
    finally:
        for stream in streams:
            stream.close()
    wait_for(lambda: stats()["open_streams"] == base, timeout=5)
    wait_for(lambda: "groups" not in stats()["subscriptions"], timeout=5)


@pytest.mark.parametrize(
    ("compression", "encoding"), [("gzip", "gzip"), ("middleware", "gzip"), ("middleware", "br")]
)
def test_disconnect_cleanup_with_compression(
    transactional_db: None, compression: str, encoding: str
) -> None:
    with override_realtime(STREAM_COMPRESSION=compression), LiveServer() as server:
        base = stats()["open_streams"]
        streams = [DecodedStream(server.port, GROUPS, encoding=encoding) for _ in range(3)]
        try:
            for stream in streams:
                stream.read_until(lambda text: "datastar-patch-elements" in text)
                assert stream.headers["content-encoding"] == encoding
            assert stats()["open_streams"] == base + 3
        finally:
            for stream in streams:
                stream.close()
        wait_for(lambda: stats()["open_streams"] == base, timeout=5)
        wait_for(lambda: "groups" not in stats()["subscriptions"], timeout=5)


def test_client_leaving_at_once_leaves_nothing_behind(transactional_db: None) -> None:
    # Headers go out before the first render: a client may be gone while the stream subscribes.
    with LiveServer() as server:
        base = stats()["open_streams"]
        with RawStreams(server.port, GROUPS, 5):
            pass
        wait_for(lambda: stats()["open_streams"] == base, timeout=5)
        wait_for(lambda: "groups" not in stats()["subscriptions"], timeout=5)


def test_heartbeat_comment(server: LiveServer) -> None:
    # tests.project.settings sets HEARTBEAT to 1 s.
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(timeout=5)
        started = time.monotonic()
        wait_for(lambda: b"\n: keep-alive\n\n" in stream.raw, timeout=3)
        assert 0.5 < time.monotonic() - started < 2.5
        assert [e for e in stream.drain() if is_patch(e)] == []


def test_refresh_interval_re_renders_without_publishes(server: LiveServer) -> None:
    with open_stream(server.url + CLOCK) as stream:
        stream.next_event(timeout=5)
        started = time.monotonic()
        for _ in range(3):
            stream.next_event(is_patch, timeout=2)
        # ClockStream refreshes every 0.2 s: three renders in well under a second or two.
        assert time.monotonic() - started < 2


def test_refresh_stream_still_renders_on_publish(server: LiveServer) -> None:
    with open_stream(server.url + CLOCK) as stream:
        stream.next_event(timeout=5)
        add_group("tick")
        stream.next_event(shows("tick"), timeout=5)


def get(
    server: LiveServer, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_anonymous_gets_403_and_nothing_streamed(server: LiveServer) -> None:
    base = stats()["open_streams"]
    status, headers, body = get(server, PRIVATE, {"Datastar-Request": "true"})
    assert status == 403
    assert not headers["content-type"].startswith("text/event-stream")
    assert b"datastar" not in body
    assert stats()["open_streams"] == base


def test_logged_in_user_streams(server: LiveServer) -> None:
    user = User.objects.create_user("ada", password="x")
    client = Client()
    client.force_login(user)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    with open_stream(server.url + PRIVATE, cookies=cookies) as stream:
        assert stream.status == 200
        stream.next_event(shows(), timeout=5)


def test_malformed_signals_are_a_400(server: LiveServer) -> None:
    status, _headers, body = get(server, GROUPS + "?datastar=%7Bnope", {"Datastar-Request": "true"})
    assert status == 400
    assert b"not valid JSON" in body
    status, _headers, body = get(server, GROUPS + "?datastar=%5B1%5D", {"Datastar-Request": "true"})
    assert status == 400
    assert b"JSON object" in body


@pytest.mark.parametrize("method", ["OPTIONS", "HEAD"])
def test_only_get(server: LiveServer, method: str) -> None:
    # (Unsafe methods meet the CSRF middleware first: 403.)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        connection.request(method, GROUPS)
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 405
    assert response.getheader("Allow") == "GET"


@pytest.mark.django_db
def test_wsgi_refuses_at_once_and_says_asgi() -> None:
    outcome: dict[str, Any] = {}

    def request(raise_exception: bool) -> None:
        try:
            response = Client(raise_request_exception=raise_exception).get(GROUPS)
            outcome["status"] = response.status_code
        except Exception as exc:
            outcome["error"] = exc

    for raise_exception in (True, False):
        outcome.clear()
        thread = threading.Thread(target=request, args=(raise_exception,), daemon=True)
        started = time.monotonic()
        thread.start()
        thread.join(timeout=5)
        assert not thread.is_alive(), "a stream under WSGI hung"
        assert time.monotonic() - started < 5
        if raise_exception:
            error = outcome["error"]
            assert isinstance(error, ImproperlyConfigured)
            assert "ASGI" in str(error)
            assert "uvicorn" in str(error)
        else:
            assert outcome["status"] == 500
