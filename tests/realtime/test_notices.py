"""CommandNotice: the one format of a rejected command's private notice, both ways."""

from __future__ import annotations

import json
from typing import Any

import pytest

from realtime.notices import KIND, CommandNotice
from realtime.relay.topics import encode

NOTICE = CommandNotice("AddGroup", 422, "Fix it.", {"name": ["Too short."]}, ["name", "note"])


def test_the_payload_round_trips_through_json() -> None:
    payload = json.loads(json.dumps(NOTICE.to_payload()))
    assert payload["kind"] == KIND
    assert CommandNotice.from_payload(payload) == NOTICE


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "command-error",
        {"command": "AddGroup", "status": 409, "message": "x", "errors": {}, "fields": []},
        {**NOTICE.to_payload(), "kind": "something-else"},
        {**NOTICE.to_payload(), "status": "409"},
        {**NOTICE.to_payload(), "message": None},
        {**NOTICE.to_payload(), "errors": {"name": "not a list"}},
        {**NOTICE.to_payload(), "errors": {"name": [1]}},
        {**NOTICE.to_payload(), "fields": "name"},
        {**NOTICE.to_payload(), "fields": [None]},
    ],
)
def test_anything_else_is_not_a_notice(payload: Any) -> None:
    assert CommandNotice.from_payload(payload) is None


def test_bounded_cuts_every_part() -> None:
    huge = CommandNotice(
        "C" * 1000, 409, "M" * 1000, {"f": ["E" * 1000] * 10}, ["f" * 1000] * 100
    ).bounded()
    assert (len(huge.command), len(huge.message)) == (200, 500)
    assert huge.errors == {"f": ["E" * 300] * 5}
    assert huge.fields == ["f" * 100] * 50


@pytest.mark.parametrize("char", ["E", "é", "😀"])  # 1, 2 and 4 bytes in UTF-8
def test_bounded_always_fits_a_notification(char: str) -> None:
    huge = CommandNotice(
        "C" * 1000,
        409,
        char * 1000,
        {f"f{i}" * 30: [char * 1000] * 10 for i in range(100)},
        [f"f{i}" * 30 for i in range(100)],
    ).bounded()
    encode("tab." + "t" * 64, huge.to_payload())  # raises PayloadTooLarge when it does not fit
    assert huge.message == char * 500  # the message stays whole up to its cap
    if char == "E":
        assert huge.errors  # the first fields' errors stay when they can


def test_a_small_notice_is_left_whole() -> None:
    assert NOTICE.bounded() == NOTICE


def test_an_invalid_form_toasts_only_its_own_errors() -> None:
    assert NOTICE.toast == ""
    form_level = CommandNotice("C", 422, "Fix it.", {"__all__": ["Both.", "Twice."]}, [])
    assert form_level.toast == "Both. Twice."
    assert CommandNotice("C", 409, "Closed is final.").toast == "Closed is final."


def test_every_field_gets_a_message_empty_ones_clear_their_sink() -> None:
    assert NOTICE.field_messages() == {"name": "Too short.", "note": ""}
