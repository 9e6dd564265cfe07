"""One bounded parser for the signals of streams and commands (realtime.request_data)."""

from __future__ import annotations

import pytest

from realtime.request_data import BadSignals, parse_signals
from realtime.testing import LiveServer, open_stream, post_command
from tests.project import views
from tests.realtime.conftest import ADD, GROUPS, add_group, shows, wait_for


def parse(raw: str | bytes, max_bytes: int = 1000, max_depth: int = 3) -> dict[str, object]:
    return parse_signals(raw, what="The signals", max_bytes=max_bytes, max_depth=max_depth)


def test_a_bounded_object_parses() -> None:
    assert parse("") == {}
    assert parse(b'{"a": {"b": [1, 2]}}') == {"a": {"b": [1, 2]}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"a": "' + "x" * 1000 + '"}', "at most 1000 are accepted"),
        ('{"a": {"b": {"c": {"d": 1}}}}', "at most 3 levels"),
        ("[" * 100_000 + "]" * 100_000, "at most 1000"),
        ('{"a": "\\ud800"}', "not valid JSON"),
        ('{"a": ', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[1]", "must be a JSON object"),
    ],
)
def test_everything_else_is_refused_with_a_reason(raw: str | bytes, message: str) -> None:
    with pytest.raises(BadSignals, match=message):
        parse(raw)


def test_deep_nesting_is_refused_without_recursion() -> None:
    with pytest.raises(BadSignals, match="nested too deeply"):
        parse("[" * 100_000 + "]" * 100_000, max_bytes=10**6)


def test_streams_and_commands_refuse_the_same_input(server: LiveServer) -> None:
    lone_surrogate = {"name": "\ud800"}
    with open_stream(server.url + GROUPS, signals=lone_surrogate) as stream:
        assert stream.status == 400
    assert post_command(server.url + ADD, lone_surrogate).status == 400


def test_oversized_stream_signals_are_refused(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS, signals={"q": "x" * 5000}) as stream:
        assert stream.status == 400
        wait_for(lambda: stream.ended)
        assert b"at most 4096" in stream.raw


def test_junk_signals_do_not_multiply_renders(server: LiveServer) -> None:
    streams = [
        open_stream(server.url + GROUPS, signals={"junk": n, "more": [n] * 5}) for n in range(20)
    ]
    try:
        for stream in streams:
            stream.next_event(shows(), timeout=5)
        views.render_count = 0
        add_group("once")
        for stream in streams:
            stream.next_event(shows("once"), timeout=5)
        assert views.render_count == 1
    finally:
        for stream in streams:
            stream.close()
