"""StreamView over real HTTP: full state at once, re-render on publish, coalescing, shared renders,
heartbeat, refresh, cleanup, authorization, WSGI refusal, stalled clients, compression, shutdown."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import threading
import time
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test import Client

from realtime import publish, stats
from realtime.conf import get_config
from realtime.testing import LiveServer, open_stream, parse_sse
from tests.helpers import (
    free_port,
    server_env,
    start_runserver,
    stop_process,
    unmeasured,
    wait_for,
    wait_for_port,
)
from tests.realtime import views
from tests.realtime.helpers import (
    CLOCK,
    GROUPS,
    PRIVATE,
    DecodedStream,
    RawStreams,
    add_group,
    group_names,
    is_patch,
    override_realtime,
    shows,
)


def test_full_state_at_once(server: LiveServer) -> None:
    add_group("beta")
    add_group("alpha")
    started = time.monotonic()
    with open_stream(server.url + GROUPS) as stream:
        event = stream.next_event(timeout=5)
        assert time.monotonic() - started < 2
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert stream.headers["cache-control"] == "no-store"
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


def received_since(before: int, count: int) -> None:
    """Wait until this process's hubs have received ``count`` notifications since ``before``: a
    stream one of them wakes starts rendering at once (renders are started ahead of the wake)."""
    wait_for(lambda: stats()["notifications_received"] >= before + count, what="notifications")


def test_unwatched_topics_do_not_wake_the_stream(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        renders, received = views.render_count, stats()["notifications_received"]
        publish("other")
        publish("groups.1")
        received_since(received, 2)
        # A render of unchanged rows would not be sent (same bytes): count the renders instead.
        add_group("watched")
        stream.next_event(shows("watched"), timeout=5)
        assert views.render_count == renders + 1, "a topic the stream does not watch woke it"


def test_write_without_publish_shows_with_the_next_publish(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        add_group("silent", notify=False)
        with pytest.raises(TimeoutError):
            stream.next_event(is_patch, timeout=0.3)
        publish("groups")
        stream.next_event(shows("silent"), timeout=5)


def test_publish_that_changes_nothing_on_the_page_sends_nothing(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(shows(), timeout=5)
        renders = views.render_count
        publish("groups")  # re-rendered, same bytes: not sent again
        wait_for(lambda: views.render_count == renders + 1, what="the re-render")
        add_group("changed")
        # The next patch is the change: the identical render before it was never sent.
        assert group_names(stream.next_event(is_patch, timeout=5)) == ["changed"]


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
    server: LiveServer, compression: str, encoding: str
) -> None:
    with override_realtime(STREAM_COMPRESSION=compression):
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
        rendered_before = views.render_count
        started = time.monotonic()
        for _ in range(3):
            stream.next_event(is_patch, timeout=2)
        # ClockStream refreshes every 0.2 s: three renders in well under a second or two...
        assert time.monotonic() - started < 2
        # ...each a new render (a clock must not be sent the same bytes again).
        assert views.render_count >= rendered_before + 3


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
    user = User.objects.create(username="ada")
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


ENCODINGS = [
    # (STREAM_COMPRESSION, Accept-Encoding, Content-Encoding sent)
    ("gzip", "gzip", "gzip"),
    ("gzip", "gzip, deflate, br, zstd", "gzip"),
    ("gzip", "br", "identity"),
    ("middleware", "gzip", "gzip"),
    ("middleware", "br", "br"),
    ("off", "gzip, br", "identity"),
]


@pytest.mark.parametrize(("compression", "accept", "sent"), ENCODINGS)
def test_compressed_stream_arrives_event_by_event(
    server: LiveServer, compression: str, accept: str, sent: str
) -> None:
    add_group("before")
    with (
        override_realtime(STREAM_COMPRESSION=compression),
        DecodedStream(server.port, GROUPS, encoding=accept) as stream,
    ):
        # The first event decodes completely before anything else is sent...
        text = stream.read_until(lambda t: rendered(t, "before"))
        assert stream.status == 200
        assert stream.headers.get("content-encoding", "identity") == sent
        assert [group_names(e) for e in parse_sse(text) if is_patch(e)] == [["before"]]
        # ...and so does each later one, as it comes.
        add_group("after")
        stream.read_until(lambda t: rendered(t, "after", "before"))
        add_group("later")
        stream.read_until(lambda t: rendered(t, "after", "before", "later"))
        if accept in ("gzip", "br"):
            # Heartbeats too (HEARTBEAT is 1 s in the test settings).
            stream.read_until(lambda t: t.endswith(": keep-alive\n\n"), timeout=3)


def rendered(text: str, *names: str) -> bool:
    """Whether ``text`` holds a complete render showing exactly ``names``."""
    return any(shows(*names)(event) for event in parse_sse(text))


def big_groups(count: int = 1500) -> None:
    """Enough rows for ~200 KB renders: a client that stops reading soon fills every buffer."""
    Group.objects.bulk_create([Group(name=f"{n:05d} " + "x" * 140) for n in range(count)])


@pytest.mark.slow
def test_stalled_client_is_disconnected_and_others_are_not_delayed(server: LiveServer) -> None:
    big_groups()
    before = stats()
    with override_realtime(STALL_TIMEOUT=1.5):
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.settimeout(10)
        with stalled, open_stream(server.url + GROUPS) as healthy:
            healthy.next_event(is_patch, timeout=10)
            before["renders"] = stats()["renders"] - 1
            stalled.connect(("127.0.0.1", server.port))
            # The clock stream renders ~200 KB every 0.2 s; this client never reads any of it.
            stalled.sendall(
                f"GET {CLOCK} HTTP/1.1\r\nHost: 127.0.0.1\r\nDatastar-Request: true\r\n\r\n".encode()
            )
            # Its first render (and the next, 0.2 s later) fill the socket buffers: it is stuck.
            wait_for(lambda: stats()["renders"] >= before["renders"] + 3, timeout=5)
            time.sleep(0.2)
            # While that stream is stuck, the healthy one is served at once.
            started = time.monotonic()
            add_group("fresh")
            healthy.next_event(lambda e: is_patch(e) and "<li>fresh</li>" in e.elements, timeout=5)
            assert time.monotonic() - started < 1
            assert stats()["stalled_disconnects"] == before["stalled_disconnects"]
            # Then the stalled client is disconnected and its stream cleaned up.
            wait_for(
                lambda: stats()["stalled_disconnects"] == before["stalled_disconnects"] + 1,
                timeout=10,
            )
            wait_for(lambda: stats()["open_streams"] == before["open_streams"] + 1, timeout=5)
            assert stats()["subscriptions"]["groups"] == 1
            # What was buffered drains, then the connection is closed.
            assert drains_to_eof(stalled, timeout=10)
            # And the healthy stream still lives.
            add_group("still")
            healthy.next_event(lambda e: is_patch(e) and "<li>still</li>" in e.elements, timeout=5)


def drains_to_eof(sock: socket.socket, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sock.recv(1 << 20):
                return True
        except ConnectionError:
            return True
    return False


@pytest.mark.slow
def test_shutdown_with_500_open_streams_exits_promptly(transactional_db: None) -> None:
    port = free_port()
    # Unmeasured: how fast it exits is the point, and coverage would slow it several times.
    process = start_runserver(port, "--noreload", env=unmeasured(server_env()), output=False)
    try:
        wait_for_port(port, process=process)
        with RawStreams(port, GROUPS, 500) as streams:
            streams.wait(lambda raw: b"datastar-patch-elements" in raw, timeout=60)
            started = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            process.wait(timeout=10)
            elapsed = time.monotonic() - started
            assert elapsed < 5, f"the server took {elapsed:.1f}s to exit"
            # Every stream was ended by the server (the browser reconnects to the next one).
            streams.pump(0.5)
            assert all(streams.closed), f"{streams.closed.count(False)} streams left open"
    finally:
        stop_process(process)


# Hooks (views in tests/realtime/urls.py) -------------------------------------------------------


@pytest.fixture
def hooks(server: LiveServer) -> LiveServer:
    return server


def test_failed_renders_are_retried(hooks: LiveServer) -> None:
    from tests.realtime.urls import FlakyStream

    before = stats()
    FlakyStream.failures = 2
    try:
        with open_stream(hooks.url + "/hooks/flaky/") as stream:
            # Retried after 0.25 s, then 0.5 s: the stream comes through without the client noticing.
            stream.next_event(shows(), timeout=5)
        assert stats()["render_errors"] == before["render_errors"] + 2
    finally:
        FlakyStream.failures = 0


def test_topics_from_url_kwargs_selector_mode_and_signals(hooks: LiveServer) -> None:
    mine, other = Group.objects.create(name="mine"), Group.objects.create(name="other")
    with open_stream(f"{hooks.url}/hooks/group/{mine.pk}/") as stream:
        patch = stream.next_event(is_patch, timeout=5)
        assert group_names(patch) == ["mine"]
        assert patch.selector == "#groups"
        assert "mode inner" in patch.data_lines
        signals = stream.next_event(lambda e: e.event == "datastar-patch-signals", timeout=5)
        assert signals.signals == {"found": 1}
        renders, received = stats()["renders"], stats()["notifications_received"]
        publish(f"groups.{other.pk}")
        publish("groups")
        received_since(received, 2)
        Group.objects.filter(pk=mine.pk).update(name="renamed")
        publish(f"groups.{mine.pk}")
        assert group_names(stream.next_event(is_patch, timeout=5)) == ["renamed"]
        # Renders of the unchanged group would not be sent: only the count tells they happened.
        assert stats()["renders"] == renders + 1, "another group's topic woke the stream"


def test_prefix_topics(hooks: LiveServer) -> None:
    with open_stream(hooks.url + "/hooks/prefix/") as stream:
        stream.next_event(shows(), timeout=5)
        renders, received = views.render_count, stats()["notifications_received"]
        add_group("plain")  # publishes "groups": not under "groups.*"
        received_since(received, 1)
        publish("groups.42")
        stream.next_event(shows("plain"), timeout=5)
        assert views.render_count == renders + 1, '"groups" woke a stream of "groups.*"'


def test_has_permission_hook_refuses_with_403(hooks: LiveServer) -> None:
    base = stats()["open_streams"]
    status, _headers, body = get(hooks, "/hooks/denied/", {"Datastar-Request": "true"})
    assert status == 403
    assert b"datastar" not in body
    assert stats()["open_streams"] == base


def test_render_key_none_renders_for_each_stream(hooks: LiveServer) -> None:
    streams = [open_stream(hooks.url + "/hooks/unshared/") for _ in range(3)]
    try:
        for stream in streams:
            stream.next_event(shows(), timeout=5)
        views.render_count = 0
        add_group("each")
        for stream in streams:
            stream.next_event(shows("each"), timeout=5)
        assert views.render_count == 3
    finally:
        for stream in streams:
            stream.close()


def test_a_stream_needs_a_template() -> None:
    from realtime import StreamView

    with pytest.raises(ImproperlyConfigured, match="needs a template_name or a render_html"):
        StreamView().render_html({})


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_stopping_the_server_ends_open_streams_cleanly(
    transactional_db: None, encoding: str
) -> None:
    with LiveServer() as live:
        stream = DecodedStream(live.port, GROUPS, encoding=encoding)
        stream.read_until(lambda text: rendered(text, *()))
        started = time.monotonic()
    with stream:
        # The response is ended properly (last chunk), not cut: the browser simply reconnects.
        stream.read_until(lambda text: stream.ended, timeout=3)
        assert time.monotonic() - started < 3
        if encoding == "gzip":
            assert stream.gzip.eof  # a complete gzip member, trailer included


def test_a_stream_without_template_fails_before_streaming() -> None:
    from django.contrib.auth.models import AnonymousUser
    from django.test import AsyncRequestFactory

    from realtime import StreamView

    class Nameless(StreamView):
        topics = ["groups"]

    request = AsyncRequestFactory().get("/s/")
    request.user = AnonymousUser()
    with pytest.raises(ImproperlyConfigured, match="needs a template_name"):
        Nameless.as_view()(request)


@pytest.mark.django_db(transaction=True)
def test_open_streams_hold_no_request_thread() -> None:
    # Django's ASGI handler starts a thread per request context; a stream lets it go once started.
    def request_threads() -> int:
        return sum(t.name.startswith("ThreadPoolExecutor") for t in threading.enumerate())

    with LiveServer() as server:
        streams = [open_stream(f"{server.url}/test/groups/stream/", signals={}) for _ in range(30)]
        try:
            for stream in streams:
                stream.next_event()
            deadline = time.monotonic() + 5
            while request_threads() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert request_threads() == 0
        finally:
            for stream in streams:
                stream.close()


def test_a_database_error_while_opening_asks_the_client_to_come_back_later(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Not a 500: Datastar 1.0.1 retries a 5xx stream every second, forever.
    from django.contrib.auth.mixins import UserPassesTestMixin
    from django.db import OperationalError
    from django.test import AsyncRequestFactory

    from realtime import StreamView
    from realtime.streams import UNAVAILABLE_RETRY_MS

    class Unreachable(StreamView):
        template_name = "never.html"

        def has_permission(self) -> bool:
            raise OperationalError("connection refused")

    class UnreachableInAMixin(UserPassesTestMixin, StreamView):
        """The access mixins run before StreamView's own code (they read the session, the user)."""

        template_name = "never.html"

        def test_func(self) -> bool:
            raise OperationalError("connection refused")

    for view_class in (Unreachable, UnreachableInAMixin):
        request = AsyncRequestFactory().get("/s/", HTTP_DATASTAR_REQUEST="true")
        with caplog.at_level("ERROR", logger="realtime"):
            response = view_class.as_view()(request)
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/event-stream")
        assert response.content == f"retry: {UNAVAILABLE_RETRY_MS}\n\n".encode()
        assert f"{view_class.__name__} could not open (database error)" in caplog.text


@pytest.mark.django_db
def test_a_queryset_is_rendered_like_a_list_view_and_re_run_each_time() -> None:
    from django.contrib.auth.models import Group

    from realtime import StreamView

    class Groups(StreamView):
        topics = ["groups"]
        queryset = Group.objects.order_by("pk")

    view = Groups()
    assert view.get_template_name() == "auth/group_list.html"
    Group.objects.create(name="first")
    first = view.get_context_data()
    assert [g.name for g in first["object_list"]] == ["first"]
    assert first["group_list"] is first["object_list"]
    Group.objects.create(name="second")
    assert [g.name for g in view.get_context_data()["group_list"]] == ["first", "second"]
    assert Groups.queryset is not None
    assert Groups.queryset._result_cache is None
    Groups.template_name = "explicit.html"
    assert view.get_template_name() == "explicit.html"


async def test_a_streams_content_is_its_own_generator_until_a_middleware_replaces_it() -> None:
    from realtime.limits import StreamSlot
    from realtime.streams import _StreamResponse

    async def body() -> Any:
        yield b"data: one\n\n"

    async def replaced() -> Any:
        yield "data: two\n\n"  # a middleware's str: Django's conversion applies again

    own = body()
    response = _StreamResponse(StreamSlot("test"), own, content_type="text/event-stream")
    assert response.streaming_content is own  # no per-part conversion layer
    response.streaming_content = replaced()
    assert [part async for part in response.streaming_content] == [b"data: two\n\n"]
    await own.aclose()  # (not response.close(): its slot was never taken)
