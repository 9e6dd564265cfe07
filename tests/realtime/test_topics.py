"""Topic names and the NOTIFY message that carries them."""

from __future__ import annotations

import pytest

from realtime import InvalidTopic, PayloadTooLarge
from realtime.relay.topics import MAX_MESSAGE_BYTES, decode, encode, validate_topic


@pytest.mark.parametrize("topic", ["tickets", "tickets.42", "tab.3f2a-B_9", "a.b.c.d", "x" * 200])
def test_valid_topics(topic: str) -> None:
    assert validate_topic(topic) == topic


@pytest.mark.parametrize(
    "topic",
    ["", ".", "tickets.", ".tickets", "tickets..42", "tick ets", "tickets\n", "tïckets", "x" * 201],
)
def test_invalid_topics(topic: str) -> None:
    with pytest.raises(InvalidTopic, match="dotted segments"):
        validate_topic(topic)


def test_a_topic_must_be_a_string() -> None:
    with pytest.raises(InvalidTopic):
        validate_topic(42)  # type: ignore[arg-type]


def test_patterns_only_where_asked() -> None:
    assert validate_topic("tickets.*", pattern=True) == "tickets.*"
    assert validate_topic("tickets", pattern=True) == "tickets"
    with pytest.raises(InvalidTopic, match=r"topic 'tickets\.\*'"):
        validate_topic("tickets.*")
    for bad in ("*", "tickets*", "tickets.*.42", "*.tickets"):
        with pytest.raises(InvalidTopic, match="optionally ending in"):
            validate_topic(bad, pattern=True)


def test_invalid_topic_is_a_value_error() -> None:
    assert issubclass(InvalidTopic, ValueError)
    assert issubclass(PayloadTooLarge, ValueError)


def test_encode_without_payload_is_the_topic() -> None:
    assert encode("tickets.42") == "tickets.42"


def test_encode_payload_is_compact_json_and_round_trips() -> None:
    payload = {"message": "Ünïcode ✓", "fields": ["a", "b"], "n": 1}
    message = encode("tab.abcdefgh", payload)
    assert message == 'tab.abcdefgh {"message":"Ünïcode ✓","fields":["a","b"],"n":1}'
    assert decode(message) == ("tab.abcdefgh", payload)


def test_decode_without_payload() -> None:
    assert decode("tickets") == ("tickets", None)


def test_decode_malformed_payload_raises_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting property name"):
        decode("tickets {not json")


def test_encode_rejects_invalid_topic() -> None:
    with pytest.raises(InvalidTopic):
        encode("bad topic", {"a": 1})


@pytest.mark.parametrize("payload", [{1, 2}, object(), float("nan")])
def test_encode_rejects_non_json_payload(payload: object) -> None:
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        encode("tickets", payload)


def test_payload_at_the_limit_fits_and_one_byte_more_is_refused() -> None:
    overhead = len(encode("t", ""))  # 't ""'
    fits = "x" * (MAX_MESSAGE_BYTES - overhead)
    assert len(encode("t", fits).encode()) == MAX_MESSAGE_BYTES
    with pytest.raises(PayloadTooLarge, match="7999") as info:
        encode("t", fits + "x")
    assert "let the stream re-read the state" in str(info.value)


def test_payload_limit_counts_bytes_not_characters() -> None:
    with pytest.raises(PayloadTooLarge):
        encode("t", "é" * 4000)  # 4000 characters, 8000 bytes
