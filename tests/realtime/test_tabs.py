"""Tab ids belong to the browser that was issued them (realtime.tabs)."""

from __future__ import annotations

import time

from django.test import RequestFactory

from realtime.tabs import issue_tab_id, new_tab_id, verify_tab
from realtime.testing import TEST_CSRF_TOKEN, LiveServer, open_stream, post_command, tab_id
from tests.realtime.helpers import ADD, GROUPS, shows

OTHER_BROWSER = "anotherbrowserscsrfsecret0000000"


def request_of(csrf_secret: str | None) -> object:
    request = RequestFactory().get("/")
    if csrf_secret is not None:
        request.META["CSRF_COOKIE"] = csrf_secret  # what CsrfViewMiddleware reads from the cookie
    return request


def test_a_tab_id_verifies_only_for_its_own_browser() -> None:
    tab = issue_tab_id(TEST_CSRF_TOKEN)
    assert verify_tab(request_of(TEST_CSRF_TOKEN), tab) == tab  # type: ignore[arg-type]
    assert verify_tab(request_of(OTHER_BROWSER), tab) is None  # type: ignore[arg-type]
    assert verify_tab(request_of(None), tab) is None  # type: ignore[arg-type]


def test_forged_and_malformed_tab_ids_are_refused() -> None:
    tab = issue_tab_id(TEST_CSRF_TOKEN)
    request = request_of(TEST_CSRF_TOKEN)
    forged = tab[:16] + ("A" if tab[16] != "A" else "B") + tab[17:]
    for value in (forged, tab[:-1], tab + "x", "x" * len(tab), "", None, 42, {"tab": tab}):
        assert verify_tab(request, value) is None  # type: ignore[arg-type]


def test_each_page_gets_a_fresh_id_for_its_browser() -> None:
    request = request_of(TEST_CSRF_TOKEN)
    first, second = new_tab_id(request), new_tab_id(request)  # type: ignore[arg-type]
    assert first != second
    assert verify_tab(request, first) == first  # type: ignore[arg-type]
    assert new_tab_id(None) != new_tab_id(None)


def test_a_stolen_tab_id_receives_nothing_private(server: LiveServer) -> None:
    victim = tab_id()
    with (
        open_stream(server.url + GROUPS, signals={"tab": victim}) as own,
        open_stream(
            server.url + GROUPS, signals={"tab": victim}, cookies={"csrftoken": OTHER_BROWSER}
        ) as thief,
    ):
        own.next_event(shows(), timeout=5)
        thief.next_event(shows(), timeout=5)
        assert post_command(server.url + ADD, {"name": "forbidden", "tab": victim}).status == 409
        own.next_event(lambda e: e.selector == "#realtime-toasts", timeout=5)
        time.sleep(0.3)  # the thief's stream would have had it as soon as the owner's
        assert not any("forbidden" in event.elements for event in thief.drain())


def test_a_command_cannot_send_its_errors_to_another_browsers_tab(server: LiveServer) -> None:
    victim = tab_id()
    with open_stream(server.url + GROUPS, signals={"tab": victim}) as own:
        own.next_event(shows(), timeout=5)
        answer = post_command(
            server.url + ADD,
            {"name": "forbidden", "tab": victim},
            cookies={"csrftoken": OTHER_BROWSER},
        )
        assert answer.status == 409  # the sender still gets its answer
        post_command(server.url + ADD, {"name": "ok-marker"})  # a later, visible change
        own.next_event(shows("ok-marker"), timeout=5)
        assert not any(e.selector == "#realtime-toasts" for e in own.drain())
