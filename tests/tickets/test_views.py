"""Pages and streams: first paint, authorization, and live updates through HTTP + SSE."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client

from realtime.testing import EventStream, SSEEvent, open_stream, tab_id
from tests.tickets.conftest import Browser, MakeTicket, session_cookies
from tickets.commands import CLOSED_IS_FINAL
from tickets.models import Status, Ticket
from tickets.queries import TicketFilters
from tickets.views import desk_context, portal_context

# Owned by the browser whose CSRF cookie is TEST_CSRF_TOKEN (open_stream's, and the browser
# fixture's: see tests/tickets/conftest.py).
TAB_1, TAB_2 = tab_id(), tab_id()


def patches(stream: EventStream, timeout: float = 5) -> SSEEvent:
    """The next element patch on ``stream``."""
    return stream.next_event(lambda e: e.event == "datastar-patch-elements", timeout=timeout)


def desk_stream(server: str, user: User, tab: str = TAB_1, **filters: Any) -> EventStream:
    signals = {"tab": tab, "filter": filters, "note": "", "status": ""}
    return open_stream(f"{server}/desk/stream/", cookies=session_cookies(user), signals=signals)


def portal_stream(server: str, user: User, tab: str = TAB_1) -> EventStream:
    signals = {"tab": tab, "subject": "", "message": ""}
    return open_stream(f"{server}/my/stream/", cookies=session_cookies(user), signals=signals)


def events_until(stream: EventStream, text: str, timeout: float = 5) -> list[SSEEvent]:
    """Every event ``stream`` receives up to the first patch showing ``text`` (included).

    Notifications reach every stream in commit order, so a change committed after something a
    stream must not get is the signal that it would have got it by now.
    """
    events: list[SSEEvent] = []
    while not events or not (
        events[-1].event == "datastar-patch-elements" and text in events[-1].elements
    ):
        events.append(stream.next_event(timeout=timeout))
    return events


@pytest.mark.django_db
class TestPages:
    def test_desk_needs_login(self, client: Client) -> None:
        response = client.get("/desk/")
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")

    def test_desk_is_for_agents_only(
        self, client: Client, alice: User, caplog: pytest.LogCaptureFixture
    ) -> None:
        client.force_login(alice)
        with caplog.at_level("WARNING", logger="django.request"):
            response = client.get("/desk/")
        assert response.status_code == 403
        html = response.content.decode()
        assert "You can&#x27;t open this page" in html or "You can't open this page" in html
        assert "The agent desk is for support agents" in html
        assert "logged in as <strong>alice</strong>" in html
        assert 'href="/my/"' in html  # where this user can go instead
        # A refused page is logged as one line, not as an error with a traceback.
        [record] = [r for r in caplog.records if r.name == "django.request"]
        assert record.levelname == "WARNING"
        assert record.exc_info is None

    def test_other_refusals_get_the_403_page_too(self, client: Client, alice: User) -> None:
        from django.core.exceptions import PermissionDenied
        from django.test import RequestFactory
        from django.views.defaults import permission_denied

        request = RequestFactory().get("/anything/")
        request.user = alice
        response = permission_denied(request, PermissionDenied())
        assert response.status_code == 403
        assert b"open this page" in response.content

    def test_home_hides_the_desk_from_customers(self, client: Client, alice: User) -> None:
        assert (
            b'href="/desk/"' in client.get("/").content.split(b'aria-labelledby="how-to-title"')[0]
        )
        client.force_login(alice)
        hero = client.get("/").content.split(b'aria-labelledby="how-to-title"')[0]
        assert b'href="/desk/"' not in hero
        assert b'href="/my/"' in hero

    def test_desk_first_paint(self, client: Client, agent: User, make_ticket: MakeTicket) -> None:
        ticket = make_ticket(subject="Printer on fire", agent_note="Called")
        client.force_login(agent)
        response = client.get("/desk/")
        html = response.content.decode()
        assert response.status_code == 200
        assert "Printer on fire" in html
        assert 'data-init="@get(' in html
        assert "/desk/stream/" in html
        assert 'id="realtime-toasts"' in html
        assert f'id="desk-row-{ticket.pk}"' in html

    def test_desk_first_paint_follows_the_query_string(
        self, client: Client, agent: User, make_ticket: MakeTicket
    ) -> None:
        make_ticket(subject="Still open")
        closed = make_ticket(subject="All done", status=Status.CLOSED, message="Solved it")
        client.force_login(agent)
        html = client.get(f"/desk/?status=closed&ticket={closed.pk}").content.decode()
        assert "All done" in html
        assert "Still open" not in html
        assert "Solved it" in html, "the selected ticket's detail is shown"
        assert "Closed tickets cannot be reopened." in html
        signals = json.loads(
            html.split('data-signals="', 1)[1].split('"', 1)[0].replace("&quot;", '"')
        )
        assert signals["filter"] == {"status": "closed", "note": "", "page": 1, "ticket": closed.pk}

    def test_portal_needs_login(self, client: Client) -> None:
        assert client.get("/my/").status_code == 302

    def test_portal_shows_only_the_customers_tickets(
        self, client: Client, alice: User, bob: User, make_ticket: MakeTicket
    ) -> None:
        make_ticket(customer=alice, subject="Secret problem of Alice")
        make_ticket(customer=bob, subject="Own problem of Bob", agent_note="x")
        client.force_login(bob)
        html = client.get("/my/").content.decode()
        assert "Own problem of Bob" in html
        assert "Alice" not in html
        assert "Agent note" in html
        assert 'data-init="@get(' in html

    def test_empty_states(self, client: Client, agent: User) -> None:
        client.force_login(agent)
        assert "No tickets here" in client.get("/desk/").content.decode()
        assert "No tickets yet" in client.get("/my/").content.decode()

    def test_home_links_to_both_pages(self, client: Client) -> None:
        html = client.get("/").content.decode()
        assert 'href="/desk/"' in html
        assert 'href="/my/"' in html
        assert "seed_demo" in html

    def test_nav_depends_on_the_user(self, client: Client, agent: User, alice: User) -> None:
        client.force_login(alice)
        html = client.get("/my/").content.decode()
        assert 'href="/desk/"' not in html
        client.force_login(agent)
        assert 'href="/desk/"' in client.get("/my/").content.decode()


@pytest.mark.django_db
class TestPartials:
    """What the streams send is shared between users: it must hold no per-session secret."""

    def test_partials_hold_no_csrf_token(
        self, rf: Any, agent: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket(agent_note="n")
        request = rf.get("/")
        request.user = agent
        desk = render_to_string(
            "tickets/_desk.html", desk_context(TicketFilters(ticket=ticket.pk)), request=request
        )
        portal = render_to_string("tickets/_portal.html", portal_context(agent.pk), request)
        for html in (desk, portal):
            assert "csrfmiddlewaretoken" not in html
        assert "X-CSRFToken&#x27;: $_csrf" in desk, "commands read the token from a local signal"
        assert f"/tickets/{ticket.pk}/status/" in desk

    def test_the_note_form_starts_from_the_saved_note(self, make_ticket: MakeTicket) -> None:
        note = "It's <fine> @bob(re: invoice) $20"
        ticket = make_ticket(agent_note=note)
        html = render_to_string("tickets/_desk.html", desk_context(TicketFilters(ticket=ticket.pk)))
        # Data, not code: a JSON string with nothing Datastar rewrites (@name( or $name) left.
        [attribute] = re.findall(r'data-signals:note="([^"]*)"', html)
        literal = unescape(attribute)
        assert json.loads(literal) == note
        assert not re.search(r"[@$'<]", literal)

    def test_a_deleted_selection(self) -> None:
        html = render_to_string("tickets/_desk.html", desk_context(TicketFilters(ticket=999)))
        assert "Ticket #999 is gone" in html


@pytest.mark.django_db(transaction=True)
class TestStreamAuthorization:
    def test_customers_are_refused_the_desk_stream(self, server: str, alice: User) -> None:
        with desk_stream(server, alice) as stream:
            assert stream.status == 403

    def test_anonymous_users_are_refused_both_streams(self, server: str) -> None:
        for path in ("/desk/stream/", "/my/stream/"):
            with open_stream(f"{server}{path}") as stream:
                assert stream.status == 403
                assert stream.headers["content-type"] != "text/event-stream"

    def test_agents_get_the_desk_stream(self, server: str, agent: User) -> None:
        with desk_stream(server, agent) as stream:
            assert stream.status == 200
            assert 'id="desk"' in patches(stream).elements


@pytest.mark.django_db(transaction=True)
class TestLive:
    def test_a_new_ticket_reaches_an_open_desk(
        self, server: str, agent: User, alice: User, browser: Browser
    ) -> None:
        with desk_stream(server, agent) as desk:
            assert "Brand new problem" not in patches(desk).elements
            customer = browser(alice, "/my/")
            response = customer.post(
                "/tickets/new/",
                json={"subject": "Brand new problem", "message": "Help me", "tab": TAB_2},
            )
            assert response.status_code == 204
            assert "Brand new problem" in patches(desk).elements

    def test_the_customer_sees_the_agents_changes(
        self, server: str, agent: User, alice: User, make_ticket: MakeTicket, browser: Browser
    ) -> None:
        ticket = make_ticket(subject="Broken login")
        with portal_stream(server, alice) as portal:
            first = patches(portal).elements
            assert "Broken login" in first
            assert "Agent note" not in first
            desk = browser(agent, "/desk/")
            url = f"/tickets/{ticket.pk}/note/"
            assert desk.post(url, json={"note": "Looking into it"}).status_code == 204
            after_note = patches(portal).elements
            assert "Agent note" in after_note
            assert "Looking into it" not in after_note, "customers see that a note exists, not it"
            status = desk.post(f"/tickets/{ticket.pk}/status/", json={"status": "pending"})
            assert status.status_code == 204
            assert "badge-pending" in patches(portal).elements

    def test_filters_are_part_of_the_view(
        self, server: str, agent: User, make_ticket: MakeTicket
    ) -> None:
        make_ticket(subject="An open one")
        make_ticket(subject="A closed one", status=Status.CLOSED)
        with (
            desk_stream(server, agent, TAB_1, status="closed") as closed,
            desk_stream(server, agent, TAB_2, status="open") as opened,
        ):
            closed_html, open_html = patches(closed).elements, patches(opened).elements
            assert "A closed one" in closed_html
            assert "An open one" not in closed_html
            assert "An open one" in open_html
            assert "A closed one" not in open_html
            make_ticket(subject="Another open one")
            assert "Another open one" in patches(opened).elements
            assert "Another open one" not in patches(closed).elements

    def test_the_selected_ticket_comes_from_the_signals(
        self, server: str, agent: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket(subject="Selected", message="The full message text")
        with desk_stream(server, agent, ticket=ticket.pk) as stream:
            html = patches(stream).elements
            assert "The full message text" in html
            assert f'id="note-form-{ticket.pk}-' in html

    def test_a_customer_never_receives_another_customers_ticket(
        self, server: str, alice: User, bob: User, browser: Browser, make_ticket: MakeTicket
    ) -> None:
        with portal_stream(server, bob) as bobs:
            assert "No tickets yet" in patches(bobs).elements
            alices = browser(alice, "/my/")
            bobs_page = browser(bob, "/my/")
            secret = {"subject": "Secret of Alice", "message": "Only for agents", "tab": TAB_1}
            assert alices.post("/tickets/new/", json=secret).status_code == 204
            own = {"subject": "Question of Bob", "message": "Hello", "tab": TAB_2}
            assert bobs_page.post("/tickets/new/", json=own).status_code == 204
            html = patches(bobs).elements
            assert "Question of Bob" in html, "bob's stream was not woken by alice's ticket first"
            make_ticket(customer=bob, subject="Later question of Bob")
            assert all("Alice" not in e.data for e in events_until(bobs, "Later question"))
            assert "Alice" not in bobs.raw.decode()
            assert "Alice" not in bobs_page.get("/my/").text

    def test_closed_ticket_rule_through_http(
        self, server: str, agent: User, make_ticket: MakeTicket, browser: Browser
    ) -> None:
        ticket = make_ticket(subject="Finished", status=Status.CLOSED)
        before = Ticket.objects.get(pk=ticket.pk)
        with (
            desk_stream(server, agent, TAB_1) as acting,
            desk_stream(server, agent, TAB_2) as other,
        ):
            patches(acting), patches(other)
            desk = browser(agent, "/desk/")
            url = f"/tickets/{ticket.pk}/status/"
            response = desk.post(url, json={"status": "open", "tab": TAB_1})
            assert response.status_code == 409
            assert response.json()["message"] == CLOSED_IS_FINAL
            after = Ticket.objects.get(pk=ticket.pk)
            assert (after.status, after.updated_at) == (before.status, before.updated_at)
            toast = acting.next_event(lambda e: CLOSED_IS_FINAL in e.data)
            assert toast.selector == "#realtime-toasts"
            make_ticket(subject="Committed after the refusal")
            seen = events_until(other, "Committed after the refusal")
            assert all(CLOSED_IS_FINAL not in e.data for e in seen), "the other tab got the toast"

    def test_field_errors_reach_only_the_acting_tab(
        self, server: str, alice: User, browser: Browser, make_ticket: MakeTicket
    ) -> None:
        with (
            portal_stream(server, alice, TAB_1) as acting,
            portal_stream(server, alice, TAB_2) as other,
        ):
            patches(acting), patches(other)
            page = browser(alice, "/my/")
            response = page.post(
                "/tickets/new/", json={"subject": "x", "message": "", "tab": TAB_1}
            )
            assert response.status_code == 422
            event = acting.next_event(lambda e: e.event == "datastar-patch-signals")
            errors = event.signals["errors"]
            assert errors["subject"]
            assert errors["message"]
            assert not Ticket.objects.exists()
            make_ticket(subject="Committed after the errors")
            seen = events_until(other, "Committed after the errors")
            assert [e for e in seen if e.event == "datastar-patch-signals"] == [], (
                "the other tab got the errors"
            )
