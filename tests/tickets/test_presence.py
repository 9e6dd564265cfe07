"""Presence on the desk and the portal: agents see each other arrive, type and leave; customers
see only that an agent is looking at their ticket."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User

from realtime.testing import EventStream, SSEEvent
from tests.tickets.conftest import Browser, MakeTicket
from tests.tickets.test_views import TAB_1, TAB_2, desk_stream, portal_stream

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ann(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("ann", first_name="Ann", is_staff=True)


@pytest.fixture
def ben(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("ben", first_name="Ben", is_staff=True)


def patch_with(*texts: str, without: tuple[str, ...] = ()) -> Callable[[SSEEvent], bool]:
    return lambda e: (
        e.event == "datastar-patch-elements"
        and all(t in e.elements for t in texts)
        and not any(t in e.elements for t in without)
    )


@pytest.mark.slow
def test_agents_see_each_other_arrive_type_and_leave(
    server: str, browser: Browser, ann: User, ben: User, make_ticket: MakeTicket
) -> None:
    ticket = make_ticket()
    with desk_stream(server, ann, TAB_1, ticket=ticket.pk) as ann_desk:
        ann_desk.next_event(patch_with("Ann is viewing"))
        with desk_stream(server, ben, TAB_2, ticket=ticket.pk):
            ann_desk.next_event(patch_with("Ann is viewing", "Ben is viewing"))
            ben_browser = browser(ben, f"/desk/?ticket={ticket.pk}")
            response = ben_browser.post(f"/tickets/{ticket.pk}/typing/", json={"tab": TAB_2})
            assert response.status_code == 204
            ann_desk.next_event(patch_with("Ben is writing a note…"))
            # It lapses by itself (TYPING_SECONDS) when no more keystrokes are reported.
            ann_desk.next_event(patch_with("Ben is viewing"), timeout=7)
        ann_desk.next_event(patch_with("Ann is viewing", without=("Ben",)), timeout=1)


def test_list_rows_show_who_is_on_each_ticket(
    server: str, ann: User, ben: User, make_ticket: MakeTicket
) -> None:
    first, second = make_ticket(subject="First"), make_ticket(subject="Second")
    with desk_stream(server, ann) as ann_list:
        ann_list.next_event(patch_with(f'id="desk-row-{first.pk}"'))
        with desk_stream(server, ben, TAB_2, ticket=second.pk):
            event = ann_list.next_event(patch_with('class="row-agent"'))
            row = event.elements.split(f'id="desk-row-{second.pk}"')[1].split("</li>")[0]
            assert "Ben" in row
            other = event.elements.split(f'id="desk-row-{first.pk}"')[1].split("</li>")[0]
            assert "row-agent" not in other


def test_the_portal_says_an_agent_is_looking_without_naming_them(
    server: str, ann: User, alice: User, bob: User, make_ticket: MakeTicket
) -> None:
    ticket = make_ticket(customer=alice)
    make_ticket(customer=bob, subject="Bob's")
    looking = "An agent is looking at your ticket"
    with portal_stream(server, alice) as alice_portal, portal_stream(server, bob) as bob_portal:
        alice_portal.next_event(patch_with("Printer on fire", without=(looking,)))
        bob_portal.next_event(patch_with("Bob&#x27;s"))
        with desk_stream(server, ann, ticket=ticket.pk):
            event = alice_portal.next_event(patch_with(looking))
            assert "Ann" not in event.elements
            assert "ann" not in event.elements
        alice_portal.next_event(patch_with("Printer on fire", without=(looking,)), timeout=1)
        # The other customer's stream was never told (not even woken with the same bytes).
        assert not [e for e in bob_portal.drain() if looking in e.elements]


def test_typing_changes_only_the_tab_that_is_on_the_ticket(
    server: str, browser: Browser, ann: User, ben: User, make_ticket: MakeTicket
) -> None:
    ticket = make_ticket()
    with desk_stream(server, ann, TAB_1, ticket=ticket.pk) as ann_desk:
        ann_desk.next_event(patch_with("Ann is viewing"))
        ben_browser = browser(ben, "/desk/")
        # Ben's tab is not on the ticket: nothing changes for anyone.
        assert (
            ben_browser.post(f"/tickets/{ticket.pk}/typing/", json={"tab": TAB_2}).status_code
            == 204
        )
        quiet: list[SSEEvent] = _quiet(ann_desk, 0.5)
        assert not [e for e in quiet if "writing a note" in e.elements]


def test_customers_cannot_post_typing(
    server: str, browser: Browser, alice: User, make_ticket: MakeTicket
) -> None:
    ticket = make_ticket()
    client = browser(alice, "/my/")
    assert client.post(f"/tickets/{ticket.pk}/typing/", json={"tab": TAB_1}).status_code == 403


def _quiet(stream: EventStream, seconds: float) -> list[SSEEvent]:
    import time

    time.sleep(seconds)
    return stream.drain()
