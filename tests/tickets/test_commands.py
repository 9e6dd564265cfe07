"""Commands: the business rules, and their HTTP contract (204, 403, 404, 409, 422)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from realtime import CommandError
from realtime.testing import TEST_CSRF_TOKEN, capture_publishes, tab_id
from tests.tickets.conftest import MakeTicket
from tickets.commands import (
    CLOSED_IS_FINAL,
    create_ticket,
    set_agent_note,
    update_status,
)
from tickets.models import Status, Ticket, TicketListItem

TAB = tab_id()  # owned by the browser whose CSRF cookie is TEST_CSRF_TOKEN

pytestmark = pytest.mark.django_db


def post(client: Client, url: str, signals: dict[str, Any]) -> Any:
    """POST signals as Datastar does: a JSON body, from the browser that owns ``TAB``."""
    client.cookies["csrftoken"] = TEST_CSRF_TOKEN
    return client.post(url, data=json.dumps(signals), content_type="application/json")


def status_url(ticket_id: int) -> str:
    return reverse("tickets:update-status", args=[ticket_id])


def note_url(ticket_id: int) -> str:
    return reverse("tickets:agent-note", args=[ticket_id])


class TestRules:
    def test_create_ticket_is_open_and_projected(self, alice: User) -> None:
        ticket = create_ticket(alice, "Subject", "Message")
        assert ticket.status == Status.OPEN
        assert TicketListItem.objects.get(pk=ticket.pk).customer_id == alice.pk

    def test_status_changes(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket()
        update_status(ticket.pk, Status.PENDING)
        ticket.refresh_from_db()
        assert ticket.status == Status.PENDING
        assert TicketListItem.objects.get(pk=ticket.pk).status == Status.PENDING

    def test_the_same_status_writes_nothing(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket(status=Status.PENDING)
        with capture_publishes() as published:
            update_status(ticket.pk, Status.PENDING)
        assert published == []
        assert Ticket.objects.get(pk=ticket.pk).updated_at == ticket.updated_at

    def test_closed_tickets_cannot_be_reopened(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket(status=Status.CLOSED)
        for status in (Status.OPEN, Status.PENDING):
            with pytest.raises(CommandError, match=CLOSED_IS_FINAL) as raised:
                update_status(ticket.pk, status)
            assert raised.value.status == 409
        assert Ticket.objects.get(pk=ticket.pk).status == Status.CLOSED

    def test_closing_a_closed_ticket_is_a_no_op(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket(status=Status.CLOSED)
        with capture_publishes() as published:
            assert update_status(ticket.pk, Status.CLOSED).status == Status.CLOSED
        assert published == []
        assert Ticket.objects.get(pk=ticket.pk).updated_at == ticket.updated_at

    def test_an_unknown_ticket_is_a_404_rejection(self) -> None:
        with pytest.raises(CommandError, match="#424242 does not exist") as raised:
            update_status(424242, Status.OPEN)
        assert raised.value.status == 404
        with pytest.raises(CommandError):
            set_agent_note(424242, "note")

    def test_the_ticket_is_locked_while_it_changes(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket()
        for change in (
            lambda: update_status(ticket.pk, Status.PENDING),
            lambda: set_agent_note(ticket.pk, "Checked"),
        ):
            with CaptureQueriesContext(connection) as queries:
                change()
            sql = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
            assert sql[0].startswith('SELECT "tickets_ticket"')
            assert sql[0].endswith("FOR UPDATE"), "read with a row lock before writing"

    def test_note_sets_and_clears_has_note(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket()
        set_agent_note(ticket.pk, "  Called them back.  ")
        assert Ticket.objects.get(pk=ticket.pk).agent_note == "Called them back."
        assert TicketListItem.objects.get(pk=ticket.pk).has_note is True
        set_agent_note(ticket.pk, "")
        assert Ticket.objects.get(pk=ticket.pk).agent_note == ""
        assert TicketListItem.objects.get(pk=ticket.pk).has_note is False

    def test_an_unchanged_note_writes_nothing(self, make_ticket: MakeTicket) -> None:
        ticket = make_ticket(agent_note="Same")
        with capture_publishes() as published:
            set_agent_note(ticket.pk, "Same")
        assert published == []


class TestCreateTicketEndpoint:
    url = reverse("tickets:create")

    def test_a_customer_creates_a_ticket(self, client: Client, alice: User) -> None:
        client.force_login(alice)
        with capture_publishes() as published:
            response = post(client, self.url, {"subject": "Help", "message": "Please", "tab": TAB})
        assert response.status_code == 204
        ticket = Ticket.objects.get()
        assert (ticket.customer, ticket.subject, ticket.message) == (alice, "Help", "Please")
        assert ("tickets", None) in published
        assert (f"customers.{alice.pk}", None) in published

    def test_anonymous_users_are_refused(self, client: Client) -> None:
        response = post(client, self.url, {"subject": "Help", "message": "Please"})
        assert response.status_code == 403
        assert not Ticket.objects.exists()

    @pytest.mark.parametrize(
        ("signals", "field"),
        [
            ({"subject": "ab", "message": "x"}, "subject"),
            ({"subject": "  abc  " + "x" * 200, "message": "x"}, "subject"),
            ({"subject": "Fine", "message": ""}, "message"),
            ({"subject": "Fine", "message": "x" * 10_001}, "message"),
            ({"message": "x"}, "subject"),
        ],
    )
    def test_invalid_input_is_422_with_field_errors(
        self, client: Client, alice: User, signals: dict[str, Any], field: str
    ) -> None:
        client.force_login(alice)
        with capture_publishes() as published:
            response = post(client, self.url, {**signals, "tab": TAB})
        assert response.status_code == 422
        assert response.json()["errors"][field]
        assert not Ticket.objects.exists()
        [(topic, notice)] = published
        assert topic == f"tab.{TAB}"
        assert notice["errors"][field]

    def test_bounds_are_inclusive(self, client: Client, alice: User) -> None:
        client.force_login(alice)
        assert post(client, self.url, {"subject": "abc", "message": "x"}).status_code == 204
        long = {"subject": "s" * 200, "message": "m" * 10_000}
        assert post(client, self.url, long).status_code == 204

    def test_only_post(self, client: Client, alice: User) -> None:
        client.force_login(alice)
        assert client.get(self.url).status_code == 405

    def test_csrf_is_enforced(self, alice: User) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(alice)
        response = post(client, self.url, {"subject": "Help", "message": "Please"})
        assert response.status_code == 403
        assert not Ticket.objects.exists()


class TestUpdateStatusEndpoint:
    def test_an_agent_changes_the_status(
        self, client: Client, agent: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket()
        client.force_login(agent)
        response = post(client, status_url(ticket.pk), {"status": "pending", "tab": TAB})
        assert response.status_code == 204
        assert Ticket.objects.get(pk=ticket.pk).status == Status.PENDING

    @pytest.mark.parametrize("who", ["anonymous", "customer"])
    def test_only_agents(
        self, client: Client, alice: User, make_ticket: MakeTicket, who: str
    ) -> None:
        ticket = make_ticket()
        if who == "customer":
            client.force_login(alice)
        response = post(client, status_url(ticket.pk), {"status": "closed"})
        assert response.status_code == 403
        assert Ticket.objects.get(pk=ticket.pk).status == Status.OPEN

    def test_reopening_is_a_409_and_writes_nothing(
        self, client: Client, agent: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket(status=Status.CLOSED)
        client.force_login(agent)
        with capture_publishes() as published:
            response = post(client, status_url(ticket.pk), {"status": "open", "tab": TAB})
        assert response.status_code == 409
        assert response.json()["message"] == CLOSED_IS_FINAL
        after = Ticket.objects.get(pk=ticket.pk)
        assert (after.status, after.updated_at) == (Status.CLOSED, ticket.updated_at)
        assert [topic for topic, _ in published] == [f"tab.{TAB}"]
        assert published[0][1]["message"] == CLOSED_IS_FINAL

    def test_an_unknown_ticket_is_404(self, client: Client, agent: User) -> None:
        client.force_login(agent)
        response = post(client, status_url(987654), {"status": "open"})
        assert response.status_code == 404

    def test_an_unknown_status_is_422(
        self, client: Client, agent: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket()
        client.force_login(agent)
        response = post(client, status_url(ticket.pk), {"status": "archived"})
        assert response.status_code == 422
        assert "status" in response.json()["errors"]


class TestAgentNoteEndpoint:
    def test_an_agent_sets_and_clears_the_note(
        self, client: Client, agent: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket()
        client.force_login(agent)
        assert post(client, note_url(ticket.pk), {"note": "Rebooted it"}).status_code == 204
        assert TicketListItem.objects.get(pk=ticket.pk).has_note is True
        assert post(client, note_url(ticket.pk), {"note": ""}).status_code == 204
        assert Ticket.objects.get(pk=ticket.pk).agent_note == ""
        assert TicketListItem.objects.get(pk=ticket.pk).has_note is False

    def test_customers_cannot_write_notes(
        self, client: Client, alice: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket()
        client.force_login(alice)
        assert post(client, note_url(ticket.pk), {"note": "Sneaky"}).status_code == 403
        assert Ticket.objects.get(pk=ticket.pk).agent_note == ""

    def test_an_unknown_ticket_is_404(self, client: Client, agent: User) -> None:
        client.force_login(agent)
        assert post(client, note_url(987654), {"note": "x"}).status_code == 404

    def test_a_too_long_note_is_422(
        self, client: Client, agent: User, make_ticket: MakeTicket
    ) -> None:
        ticket = make_ticket()
        client.force_login(agent)
        response = post(client, note_url(ticket.pk), {"note": "n" * 10_001})
        assert response.status_code == 422
        assert "note" in response.json()["errors"]
