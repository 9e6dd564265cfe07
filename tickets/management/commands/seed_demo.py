"""``manage.py seed_demo``: demo users and about fifty tickets, so the desk has something to show."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission, User
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from tickets.models import Status, Ticket
from tickets.projector import project_ticket

#: (username, password, is agent). Demo credentials, printed on every run: never use in production.
USERS = (
    ("agent", "agent-demo", True),
    ("carol", "carol-demo", True),
    ("alice", "alice-demo", False),
    ("bob", "bob-demo", False),
)

SUBJECTS = (
    "Cannot log in after resetting my password",
    "Invoice shows the wrong VAT number",
    "Export to CSV times out",
    "Two-factor codes arrive late",
    "Please close my old account",
    "The mobile app crashes on start",
    "Charged twice for the same order",
    "How do I add a second user?",
    "Search ignores accented letters",
    "Dark mode makes tables unreadable",
    "Email notifications stopped",
    "Upload fails for files over 20 MB",
    "Wrong time zone in reports",
    "API returns 500 on /orders",
    "Cannot change my billing address",
    "Password reset link expired immediately",
    "Dashboard loads very slowly",
    "Printing an invoice cuts the last line",
    "Where can I download my data?",
    "Discount code not accepted",
    "Calendar sync duplicates events",
    "Language switches back to English",
    "Chart colours are hard to tell apart",
    "Delivery address autocomplete is wrong",
    "Can I get a refund for last month?",
)

DETAILS = (
    "It started this morning and happens every time.",
    "I tried another browser and cleared the cache, same result.",
    "Screenshots attached. Please let me know if you need anything else.",
    "This blocks our month-end closing, so it is fairly urgent for us.",
    "A colleague on the same team does not have the problem.",
    "It worked fine last week; nothing changed on our side as far as I know.",
)

NOTES = (
    "Reproduced on staging; escalated to the platform team.",
    "Customer confirmed the workaround helps for now.",
    "Waiting for the customer to send the request id.",
    "Known issue, fix scheduled for the next release.",
)


class Command(BaseCommand):
    """Create the two agents and the two customers (resetting their passwords) and the demo
    tickets."""

    help = "Create demo users (agent, carol, alice, bob) and about 50 tickets. Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing at all when the database already has tickets (used by `make run`).",
        )

    def handle(self, *args: Any, if_empty: bool, **options: Any) -> None:
        if if_empty and Ticket.objects.exists():
            self.stdout.write("Tickets exist already; seed_demo --if-empty does nothing.")
            return
        with transaction.atomic():
            users = {name: self._user(name, password, agent) for name, password, agent in USERS}
            created = self._tickets([users["alice"], users["bob"]])
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {created} new tickets."))
        self.stdout.write("Log in at /login/ with (demo passwords, change them outside a demo):")
        for name, password, agent in USERS:
            role = "agent (staff): /desk/ and /admin/" if agent else "customer: /my/"
            self.stdout.write(f"  {name:<6} password {password:<11} {role}")

    def _user(self, username: str, password: str, agent: bool) -> User:
        user, _ = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        user.set_password(password)
        user.is_staff = agent
        user.save()
        if agent:
            user.user_permissions.add(
                *Permission.objects.filter(
                    content_type__app_label="tickets", codename__endswith="ticket"
                )
            )
        return user

    def _tickets(self, customers: list[User]) -> int:
        rng = random.Random(4)  # the same demo every time
        now = timezone.now()
        statuses = [Status.OPEN] * 5 + [Status.PENDING] * 3 + [Status.CLOSED] * 2
        created = 0
        for index, subject in enumerate(SUBJECTS * 2):
            customer = customers[index % len(customers)]
            if Ticket.objects.filter(customer=customer, subject=subject).exists():
                continue
            status = rng.choice(statuses)
            ticket = Ticket.objects.create(
                customer=customer,
                subject=subject,
                message=" ".join(rng.sample(DETAILS, k=rng.randint(1, 3))),
                status=status,
                agent_note=rng.choice(NOTES) if rng.random() < 0.4 else "",
            )
            opened = now - timedelta(minutes=rng.randint(5, 14 * 24 * 60))
            age = int((now - opened).total_seconds() // 60)
            touched = opened + timedelta(minutes=rng.randint(0, min(age, 3 * 24 * 60)))
            # A believable history: update() skips auto_now, then the read row follows.
            Ticket.objects.filter(pk=ticket.pk).update(created_at=opened, updated_at=touched)
            project_ticket(ticket.pk)
            created += 1
        return created
