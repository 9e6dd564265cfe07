"""The support desk's data: ``Ticket`` (write model) and ``TicketListItem`` (read model).

``Ticket`` is the source of truth, edited by commands, the admin and the shell. ``TicketListItem``
is its projection for list views, one row per ticket with the derived fields (``preview``,
``has_note``) computed once by :mod:`tickets.projector`; nothing else writes it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, ClassVar

from django.conf import settings
from django.db import models, router, transaction
from django.utils import timezone


class Status(models.TextChoices):
    """The life cycle of a ticket: open → pending → closed (closed is final)."""

    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    CLOSED = "closed", "Closed"


class Ticket(models.Model):
    """A customer's support request: the write model and source of truth."""

    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tickets"
    )
    subject = models.CharField(max_length=200)
    message = models.TextField(max_length=10_000)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    agent_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    # The customer as loaded from the database: when the admin moves a ticket to another customer,
    # both portals must hear of it.
    loaded_customer_id: int | None = None

    class Meta:
        ordering: ClassVar[list[str]] = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save in a transaction even from the shell, so the write, its projection and its
        publish (``post_save`` receivers) commit together or not at all."""
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using):
            super().save(*args, **kwargs)
        self.loaded_customer_id = self.customer_id

    @classmethod
    def from_db(
        cls,
        db: str | None,
        field_names: Collection[str],
        values: Collection[Any],
        **kwargs: Any,
    ) -> Ticket:
        """Load a ticket and remember its customer (see :meth:`topics`)."""
        # **kwargs: Django 6.1 passes fetch_mode, 5.2 nothing.
        instance = super().from_db(db, field_names, values, **kwargs)
        instance.loaded_customer_id = instance.__dict__.get("customer_id")
        return instance

    def topics(self) -> list[str]:
        """The relay topics a change to this ticket publishes.

        ``tickets`` wakes the desk, ``tickets.<id>`` anything showing this one ticket, and
        ``customers.<id>`` the portal of each customer the ticket belongs (or belonged) to.
        """
        topics = ["tickets", f"tickets.{self.pk}", f"customers.{self.customer_id}"]
        if self.loaded_customer_id not in (None, self.customer_id):
            topics.append(f"customers.{self.loaded_customer_id}")
        return topics


class TicketListItem(models.Model):
    """One row per ticket for list views, with the derived fields already computed.

    Written only by :mod:`tickets.projector`; the primary key is the ticket's id, a plain integer
    rather than a foreign key so the read model can be dropped and rebuilt independently.
    """

    id = models.BigIntegerField(primary_key=True)
    customer_id = models.BigIntegerField()
    subject = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices)
    updated_at = models.DateTimeField()
    preview = models.CharField(max_length=200)
    has_note = models.BooleanField()

    class Meta:
        ordering: ClassVar[list[str]] = ["-updated_at", "-id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["-updated_at", "-id"], name="ticket_list_recent"),
            models.Index(fields=["status", "-updated_at"], name="ticket_list_status"),
            models.Index(fields=["has_note", "-updated_at"], name="ticket_list_note"),
            models.Index(fields=["customer_id", "-updated_at"], name="ticket_list_customer"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"
