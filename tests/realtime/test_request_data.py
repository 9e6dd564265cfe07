"""The one signals parser: what it accepts, and each refusal with its message."""

from __future__ import annotations

import pytest

from realtime.request_data import BadSignals, parse_signals


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
