"""One client cannot take the server: caps on open streams (realtime.limits)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import RequestFactory

from realtime.limits import TooManyStreams, client_of, open_slots, take_slot
from realtime.testing import LiveServer, open_stream
from tests.helpers import wait_for
from tests.realtime.helpers import GROUPS, override_realtime, shows


def anonymous(address: str = "10.0.0.1", **headers: str) -> object:
    request = RequestFactory().get("/", REMOTE_ADDR=address, headers=headers)
    request.user = AnonymousUser()
    return request


def no_streams_of_earlier_tests() -> None:
    """Wait until the shared live server has given back the slots of streams closed earlier.

    A client's close reaches the server's loop a moment later, so a test run just after another
    one's streams could count them.
    """
    wait_for(lambda: not open_slots(), timeout=10)


def test_who_counts_as_one_client() -> None:
    request = anonymous()
    assert client_of(request) == "address:10.0.0.1"  # type: ignore[arg-type]
    with override_realtime(CLIENT_ADDRESS_HEADER="X-Forwarded-For"):
        behind = anonymous("127.0.0.1", **{"X-Forwarded-For": "1.1.1.1, 203.0.113.9"})
        assert client_of(behind) == "address:203.0.113.9"  # type: ignore[arg-type]
        assert client_of(anonymous("127.0.0.1")) == "address:127.0.0.1"  # type: ignore[arg-type]
    user = User(pk=7, username="u")
    request.user = user  # type: ignore[attr-defined]
    assert client_of(request) == "user:7"  # type: ignore[arg-type]


def test_slots_are_capped_per_client_and_given_back_once() -> None:
    with override_realtime(MAX_STREAMS_PER_CLIENT=2, MAX_STREAMS=0):
        first, second = take_slot(anonymous()), take_slot(anonymous())  # type: ignore[arg-type]
        with pytest.raises(TooManyStreams, match="Too many live pages"):
            take_slot(anonymous())  # type: ignore[arg-type]
        other = take_slot(anonymous("10.0.0.2"))  # type: ignore[arg-type]
        first.release()
        first.release()  # idempotent: the count is not given back twice
        third = take_slot(anonymous())  # type: ignore[arg-type]
        with pytest.raises(TooManyStreams):
            take_slot(anonymous())  # type: ignore[arg-type]
        for slot in (second, other, third):
            slot.release()
    assert "address:10.0.0.1" not in open_slots()


def test_the_process_cap() -> None:
    no_streams_of_earlier_tests()
    with override_realtime(MAX_STREAMS_PER_CLIENT=0, MAX_STREAMS=1):
        slot = take_slot(anonymous())  # type: ignore[arg-type]
        with pytest.raises(TooManyStreams, match="as many live streams"):
            take_slot(anonymous("10.0.0.9"))  # type: ignore[arg-type]
        slot.release()


def test_a_client_past_its_cap_gets_429_and_its_open_streams_go_on(server: LiveServer) -> None:
    no_streams_of_earlier_tests()
    with override_realtime(MAX_STREAMS_PER_CLIENT=2):
        with open_stream(server.url + GROUPS) as a, open_stream(server.url + GROUPS) as b:
            a.next_event(shows(), timeout=5)
            b.next_event(shows(), timeout=5)
            refused = open_stream(server.url + GROUPS)
            try:
                assert refused.status == 429
                assert refused.headers["retry-after"] == "30"
            finally:
                refused.close()
            assert not a.ended
            assert not b.ended
        # Closed streams give their slots back.
        wait_for(lambda: "address:127.0.0.1" not in open_slots(), timeout=5)
        with open_stream(server.url + GROUPS) as c:
            c.next_event(shows(), timeout=5)
