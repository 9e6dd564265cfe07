"""Read-side queries: filters on the read model, ordering, pagination, detail, the portal list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.tickets.conftest import MakeTicket
from tickets.models import Status, Ticket
from tickets.projector import project_ticket
from tickets.queries import (
    PAGE_SIZE,
    TicketFilters,
    customer_tickets,
    filtered_tickets,
    status_counts,
    ticket_detail,
    ticket_page,
)

pytestmark = pytest.mark.django_db


def age(ticket: Ticket, minutes: int) -> None:
    """Make ``ticket`` last updated ``minutes`` ago (read model included)."""
    Ticket.objects.filter(pk=ticket.pk).update(
        updated_at=timezone.now() - timedelta(minutes=minutes)
    )
    project_ticket(ticket.pk)


class TestTicketFilters:
    def test_defaults(self) -> None:
        assert TicketFilters.from_data(None) == TicketFilters()
        assert TicketFilters.from_data({}) == TicketFilters("", "", 1, None)

    def test_valid_values(self) -> None:
        data = {"status": "closed", "note": "with", "page": "3", "ticket": 12}
        assert TicketFilters.from_data(data) == TicketFilters("closed", "with", 3, 12)

    @pytest.mark.parametrize(
        "data",
        [
            {"status": "deleted", "note": "maybe", "page": "x", "ticket": "y"},
            {"status": None, "note": 3, "page": -2, "ticket": 0},
            {"status": ["open"], "note": {"a": 1}, "page": True, "ticket": 2**70},
        ],
    )
    def test_garbage_means_no_filter(self, data: dict[str, object]) -> None:
        assert TicketFilters.from_data(data) == TicketFilters()

    def test_round_trip_through_signals(self) -> None:
        filters = TicketFilters("pending", "without", 2, 7)
        assert TicketFilters.from_data(filters.as_signals()) == filters


class TestList:
    def test_newest_first(self, make_ticket: MakeTicket) -> None:
        old, new, middle = make_ticket(), make_ticket(), make_ticket()
        age(old, 30)
        age(middle, 10)
        ids = [row.pk for row in filtered_tickets(TicketFilters())]
        assert ids == [new.pk, middle.pk, old.pk]

    def test_status_filter(self, make_ticket: MakeTicket) -> None:
        make_ticket(status=Status.OPEN)
        closed = make_ticket(status=Status.CLOSED)
        rows = filtered_tickets(TicketFilters(status="closed"))
        assert [row.pk for row in rows] == [closed.pk]

    def test_note_filter(self, make_ticket: MakeTicket) -> None:
        noted = make_ticket(agent_note="Seen")
        plain = make_ticket(agent_note="   ")
        assert [r.pk for r in filtered_tickets(TicketFilters(note="with"))] == [noted.pk]
        assert [r.pk for r in filtered_tickets(TicketFilters(note="without"))] == [plain.pk]

    def test_filters_combine(self, make_ticket: MakeTicket) -> None:
        target = make_ticket(status=Status.PENDING, agent_note="x")
        make_ticket(status=Status.PENDING)
        make_ticket(status=Status.OPEN, agent_note="x")
        rows = filtered_tickets(TicketFilters(status="pending", note="with"))
        assert [row.pk for row in rows] == [target.pk]

    def test_the_list_reads_only_the_read_model(self, make_ticket: MakeTicket) -> None:
        make_ticket(agent_note="x")
        with CaptureQueriesContext(connection) as queries:
            page = ticket_page(TicketFilters(note="with"))
            rows = list(page.object_list)
            assert rows[0].preview
            assert rows[0].has_note
        sql = " ".join(query["sql"] for query in queries.captured_queries)
        assert "tickets_ticketlistitem" in sql
        assert '"tickets_ticket"' not in sql
        assert "agent_note" not in sql

    def test_pagination(self, make_ticket: MakeTicket) -> None:
        tickets = [make_ticket(subject=f"Ticket {i}") for i in range(PAGE_SIZE + 5)]
        first = ticket_page(TicketFilters())
        assert len(first.object_list) == PAGE_SIZE
        assert first.paginator.num_pages == 2
        second = ticket_page(TicketFilters(page=2))
        assert [row.pk for row in second.object_list] == [t.pk for t in tickets[:5]][::-1]
        assert ticket_page(TicketFilters(page=99)).number == 2

    def test_an_empty_list(self) -> None:
        page = ticket_page(TicketFilters(status="open"))
        assert list(page.object_list) == []
        assert page.number == 1

    def test_status_counts(self, make_ticket: MakeTicket) -> None:
        make_ticket(status=Status.OPEN)
        make_ticket(status=Status.OPEN)
        make_ticket(status=Status.CLOSED)
        assert status_counts() == {"": 3, "open": 2, "pending": 0, "closed": 1}


class TestDetail:
    def test_reads_the_write_model(self, make_ticket: MakeTicket, alice: User) -> None:
        ticket = make_ticket(agent_note="Private")
        detail = ticket_detail(ticket.pk)
        assert detail is not None
        assert detail.agent_note == "Private"
        assert detail.customer == alice

    def test_missing(self) -> None:
        assert ticket_detail(None) is None
        assert ticket_detail(123456) is None


class TestCustomerTickets:
    def test_only_the_customers_own(self, make_ticket: MakeTicket, alice: User, bob: User) -> None:
        mine = make_ticket(customer=alice)
        make_ticket(customer=bob)
        assert [row.pk for row in customer_tickets(alice.pk)] == [mine.pk]

    def test_limit(self, make_ticket: MakeTicket, alice: User) -> None:
        for _ in range(4):
            make_ticket()
        assert len(customer_tickets(alice.pk, limit=3)) == 3
