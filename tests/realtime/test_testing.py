"""The testing helpers: SSE parsing edge cases, capture_publishes, streams over a live server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import transaction

from realtime import publish
from realtime.testing import LiveServer, SSEEvent, capture_publishes, open_stream, parse_sse


def test_one_event() -> None:
    assert parse_sse(b"event: tick\ndata: 1\n\n") == [SSEEvent("tick", ("1",))]


def test_default_event_type_is_message() -> None:
    [event] = parse_sse("data: hi\n\n")
    assert (event.event, event.data, event.id) == ("message", "hi", None)


def test_multiple_data_lines_join_with_newlines() -> None:
    [event] = parse_sse("data: a\ndata: b\ndata:\ndata: c\n\n")
    assert event.data_lines == ("a", "b", "", "c")
    assert event.data == "a\nb\n\nc"


def test_only_one_leading_space_is_stripped() -> None:
    [event] = parse_sse("data:no-space\ndata:  two\n\n")
    assert event.data_lines == ("no-space", " two")


def test_value_may_contain_colons() -> None:
    [event] = parse_sse("data: a: b: c\n\n")
    assert event.data == "a: b: c"


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_every_line_ending(newline: str) -> None:
    text = f"event: a{newline}data: 1{newline}{newline}data: 2{newline}{newline}"
    assert parse_sse(text) == [SSEEvent("a", ("1",)), SSEEvent("message", ("2",))]


def test_comments_and_heartbeats_are_not_events() -> None:
    assert parse_sse(b": keep-alive\n\n: another\n\n") == []
    [event] = parse_sse(b": note\ndata: x\n: inside\n\n")
    assert event.data == "x"


def test_trailing_partial_event_is_ignored() -> None:
    assert parse_sse(b"data: 1\n\ndata: 2\n") == [SSEEvent("message", ("1",))]
    assert parse_sse(b"data: 1") == []
    assert parse_sse(b"") == []


def test_id_and_unknown_fields() -> None:
    [event] = parse_sse("id: 7\nretry: 1000\nfoo: bar\nevent: x\ndata: y\n\n")
    assert event == SSEEvent("x", ("y",), "7")


def test_event_without_data_is_kept_only_when_named() -> None:
    assert parse_sse("event: ping\n\nid: 3\n\n") == [SSEEvent("ping", ())]


def test_a_line_without_colon_is_a_field_name() -> None:
    [event] = parse_sse("data\n\n")
    assert event.data_lines == ("",)


def test_unicode_bytes() -> None:
    [event] = parse_sse("data: ünï ✓\n\n".encode())
    assert event.data == "ünï ✓"


def test_datastar_fields() -> None:
    text = (
        "event: datastar-patch-elements\n"
        "data: selector #toasts\n"
        "data: mode append\n"
        'data: elements <ul id="a">\n'
        "data: elements <li>x</li></ul>\n\n"
        "event: datastar-patch-signals\n"
        'data: signals {"errors":{"name":"Too short"}}\n\n'
    )
    patch, signals = parse_sse(text)
    assert patch.elements == '<ul id="a">\n<li>x</li></ul>'
    assert patch.selector == "#toasts"
    assert patch.signals == {}
    assert signals.signals == {"errors": {"name": "Too short"}}
    assert signals.selector is None
    assert signals.elements == ""


@pytest.mark.django_db
def test_capture_publishes_records_this_thread_only() -> None:
    with capture_publishes() as captured:
        publish("groups")
        publish("tab.abcdefgh", {"message": "x"})
        other = threading.Thread(target=_publish_elsewhere)
        other.start()
        other.join(timeout=10)
    publish("after")
    assert captured == [("groups", None), ("tab.abcdefgh", {"message": "x"})]


def _publish_elsewhere() -> None:
    from django.db import connection

    try:
        publish("elsewhere")
    finally:
        connection.close()


@pytest.mark.django_db
def test_capture_publishes_sees_rolled_back_calls() -> None:
    # It records calls as they are made; whether they are delivered is the database's business.
    with capture_publishes() as captured:
        try:
            with transaction.atomic():
                publish("groups")
                raise RuntimeError
        except RuntimeError:
            pass
    assert captured == [("groups", None)]


@pytest.fixture(scope="module")
def ticks_server() -> Iterator[LiveServer]:
    with LiveServer() as server:
        yield server


def test_open_stream_reads_events_as_they_come(ticks_server: LiveServer) -> None:
    with open_stream(ticks_server.url + "/test/ticks/") as stream:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = stream.next_event(timeout=5)
        assert (first.event, first.data) == ("tick", "0")
        third = stream.next_event(lambda e: e.data == "3", timeout=5)
        assert third.event == "tick"
        assert not stream.ended
    assert stream.ended


def test_next_event_times_out(ticks_server: LiveServer) -> None:
    with (
        open_stream(ticks_server.url + "/test/ticks/") as stream,
        pytest.raises(TimeoutError, match=r"within 0\.3s"),
    ):
        stream.next_event(lambda e: e.event == "never", timeout=0.3)


def test_next_event_after_the_stream_ended(ticks_server: LiveServer) -> None:
    stream = open_stream(ticks_server.url + "/test/ticks/")
    stream.next_event(timeout=5)
    stream.close()
    stream.drain()
    with pytest.raises(EOFError):
        stream.next_event(timeout=2)


def test_open_stream_sends_signals_as_datastar_does(ticks_server: LiveServer) -> None:
    # The ticks view ignores them; this pins that the query string is well formed.
    with open_stream(
        ticks_server.url + "/test/ticks/?x=1", signals={"tab": "abcdefgh", "q": "a b&c"}
    ) as stream:
        assert stream.status == 200
        stream.next_event(timeout=5)
