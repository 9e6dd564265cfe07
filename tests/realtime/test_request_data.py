"""The one signals parser: what it accepts, and each refusal with its message."""

from __future__ import annotations

import pytest

from realtime.request_data import BadSignals, parse_signals
from realtime.testing import LiveServer, open_stream, post_command
from tests.helpers import wait_for
from tests.realtime import views
from tests.realtime.helpers import ADD, GROUPS, add_group, shows


def parse(raw: str | bytes, max_bytes: int = 1000, max_depth: int = 3) -> dict[str, object]:
    return parse_signals(raw, what="The body", max_bytes=max_bytes, max_depth=max_depth)


@pytest.mark.parametrize("raw", ["", b""])
def test_nothing_is_no_signals(raw: str | bytes) -> None:
    assert parse(raw) == {}


def test_an_object_within_the_bounds() -> None:
    assert parse('{"a": {"b": {"c": "é"}}}'.encode()) == {"a": {"b": {"c": "é"}}}
    assert parse('{"a": [1, 2]}', max_depth=2) == {"a": [1, 2]}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("x" * 1001, "The body is 1001 bytes; at most 1000 are accepted."),
        ("é" * 501, "The body is 1002 bytes; at most 1000 are accepted."),  # bytes, not characters
        ("{", "The body is not valid JSON"),
        ('{"a": "\\ud800"}', "The body is not valid JSON"),  # a lone surrogate
        ("[1]", "The body must be a JSON object of signals."),
        ('{"a": {"b": {"c": {}}}}', r"The body is nested too deeply \(at most 3 levels\)."),
    ],
)
def test_refusals_say_why(raw: str, message: str) -> None:
    with pytest.raises(BadSignals, match=message):
        parse(raw)


def test_nesting_past_the_interpreter_is_refused_too() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(BadSignals, match="The body is nested too deeply"):
        parse(deep, max_bytes=1_000_000)


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
