"""The admin edits the write model; its saves project and publish like any other write."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client

from realtime.testing import capture_publishes
from tests.tickets.conftest import MakeTicket
from tickets.models import Status, Ticket, TicketListItem

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user_client(client: Client, django_user_model: type[User]) -> Client:
    client.force_login(django_user_model.objects.create_superuser("boss", "boss@example.com"))
    return client


def test_the_read_model_is_not_in_the_admin() -> None:
    assert admin.site.is_registered(Ticket)
    assert not admin.site.is_registered(TicketListItem)


def test_changelist_filters_and_search(
    admin_user_client: Client, make_ticket: MakeTicket, bob: User
) -> None:
    make_ticket(subject="Printer on fire", agent_note="Called")
    make_ticket(subject="Lost password", customer=bob, status=Status.CLOSED)
    url = "/admin/tickets/ticket/"
    html = admin_user_client.get(url).content.decode()
    assert "Printer on fire" in html
    assert "Lost password" in html
    assert "Printer on fire" not in admin_user_client.get(url + "?status=closed").content.decode()
    searched = admin_user_client.get(url + "?q=bob").content.decode()
    assert "Lost password" in searched
    assert "Printer on fire" not in searched


def test_an_admin_save_projects_and_publishes(
    admin_user_client: Client, make_ticket: MakeTicket, alice: User
) -> None:
    ticket = make_ticket(subject="Before")
    url = f"/admin/tickets/ticket/{ticket.pk}/change/"
    page = admin_user_client.get(url).content.decode()
    version = re.search(r'name="realtime_version" value="([^"]+)"', page)
    assert version, "the live admin's change form carries the version it edits"
    form = {
        "realtime_version": html.unescape(version.group(1)),
        "customer": alice.pk,
        "subject": "Edited in the admin",
        "message": "New message",
        "status": "pending",
        "agent_note": "Escalated",
    }
    with capture_publishes() as published:
        response = admin_user_client.post(url, form)
    assert response.status_code == 302, response.content.decode()
    topics = [topic for topic, _ in published]
    # The projector's topics, and the live admin's (TicketAdmin is a LiveModelAdmin).
    assert sorted(topics) == sorted(
        [
            "tickets",
            f"tickets.{ticket.pk}",
            f"customers.{alice.pk}",
            f"admin.tickets.ticket.{ticket.pk}",
        ]
    )
    row = TicketListItem.objects.get(pk=ticket.pk)
    assert (row.subject, row.status, row.preview, row.has_note) == (
        "Edited in the admin",
        "pending",
        "New message",
        True,
    )


def test_an_admin_delete_removes_the_row_and_publishes(
    admin_user_client: Client, make_ticket: MakeTicket
) -> None:
    ticket = make_ticket()
    with capture_publishes() as published:
        response = admin_user_client.post(
            f"/admin/tickets/ticket/{ticket.pk}/delete/", {"post": "yes"}
        )
    assert response.status_code == 302
    assert not TicketListItem.objects.exists()
    assert ("tickets", None) in published
