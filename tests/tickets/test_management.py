"""``seed_demo`` and ``rebuild_projections``."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.tickets.conftest import MakeTicket
from tickets.models import Status, Ticket, TicketListItem

pytestmark = [
    pytest.mark.django_db,
    # Hashing the demo passwords the real way would dominate these tests' time.
    pytest.mark.usefixtures("fast_hasher"),
]


@pytest.fixture
def fast_hasher() -> Iterator[None]:
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


class TestSeedDemo:
    def test_creates_users_and_tickets(self) -> None:
        output = run("seed_demo")
        agent = authenticate(username="agent", password="agent-demo")
        alice = authenticate(username="alice", password="alice-demo")
        assert agent is not None
        assert agent.is_staff
        assert agent.has_perm("tickets.change_ticket")
        assert alice is not None
        assert not alice.is_staff
        assert authenticate(username="bob", password="bob-demo") is not None
        for password in ("agent-demo", "alice-demo", "bob-demo"):
            assert password in output
        assert 45 <= Ticket.objects.count() <= 55
        assert set(Ticket.objects.values_list("status", flat=True)) == set(Status.values)
        assert Ticket.objects.exclude(agent_note="").exists()
        assert Ticket.objects.filter(agent_note="").exists()
        assert TicketListItem.objects.count() == Ticket.objects.count()
        assert {t.customer.username for t in Ticket.objects.select_related("customer")} == {
            "alice",
            "bob",
        }

    def test_history_is_believable(self) -> None:
        run("seed_demo")
        for ticket in Ticket.objects.all():
            assert ticket.created_at <= ticket.updated_at
            row = TicketListItem.objects.get(pk=ticket.pk)
            assert row.updated_at == ticket.updated_at
        assert Ticket.objects.values("updated_at").distinct().count() > 40

    def test_is_idempotent(self) -> None:
        run("seed_demo")
        count = Ticket.objects.count()
        assert "0 new tickets" in run("seed_demo")
        assert Ticket.objects.count() == count

    def test_if_empty_does_nothing_when_tickets_exist(self, make_ticket: MakeTicket) -> None:
        make_ticket()
        assert "does nothing" in run("seed_demo", "--if-empty")
        assert Ticket.objects.count() == 1
        assert authenticate(username="agent", password="agent-demo") is None

    def test_if_empty_seeds_an_empty_database(self) -> None:
        run("seed_demo", "--if-empty")
        assert Ticket.objects.count() > 40


class TestRebuildProjections:
    def test_prints_progress_and_is_idempotent(self, make_ticket: MakeTicket) -> None:
        for _ in range(3):
            make_ticket()
        TicketListItem.objects.all().delete()
        output = run("rebuild_projections", "--batch-size", "2")
        assert "Projected 2/3 tickets" in output
        assert "Projected 3/3 tickets" in output
        assert "3 tickets" in output.splitlines()[-1]
        before = list(TicketListItem.objects.order_by("id").values())
        run("rebuild_projections")
        assert list(TicketListItem.objects.order_by("id").values()) == before
        assert len(before) == 3

    def test_rejects_a_bad_batch_size(self) -> None:
        with pytest.raises(CommandError, match="at least 1"):
            call_command("rebuild_projections", "--batch-size", "0")
