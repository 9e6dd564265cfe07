"""Write model → read model: ``Ticket`` rows projected into ``TicketListItem`` rows.

Contract: :func:`project_ticket` makes the read row of one ticket equal to what the write model
says *now*, in the caller's transaction (an upsert, or a delete when the ticket is gone). It runs
from ``post_save`` / ``post_delete`` signals (see :mod:`tickets.apps`), so every write path
(commands, the admin, the shell, ``loaddata``) projects before its transaction commits and lists
are never stale after a commit. Derived fields are computed here once, never in a list view.

Not here: publishing a ticket's topics, done by ``realtime.broadcast`` from the same signals.
A full :func:`rebuild_all` publishes ``tickets`` and :data:`REBUILT_TOPIC` once instead.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from django.db import transaction

from realtime import publish
from tickets.models import Ticket, TicketListItem

#: Longest preview, ellipsis included.
PREVIEW_LENGTH = 80
ELLIPSIS = "…"
#: Published (at commit) by :func:`rebuild_all`, with ``tickets``: any list may have changed.
REBUILT_TOPIC = "tickets-rebuilt"

_PROJECTED_FIELDS = ["customer_id", "subject", "status", "updated_at", "preview", "has_note"]
ZWJ = "\u200d"
# Characters that belong to the one before them: cutting just before one would split a glyph
# (a zero-width joiner also binds the one after it).
_JOINERS = {ZWJ, "\ufe0e", "\ufe0f"}


def make_preview(message: str, length: int = PREVIEW_LENGTH) -> str:
    """The start of ``message`` for list views: whitespace collapsed, at most ``length`` characters.

    Text that fits is returned as is (collapsed). Longer text is cut on the last word boundary
    that fits and ends with ``…``; a single word longer than the limit is cut inside the word,
    never between a character and the combining marks that belong to it.
    """
    text = " ".join(message.split())
    if len(text) <= length:
        return text
    budget = length - len(ELLIPSIS)
    head = text[:budget]
    if text[budget] != " " and " " in head:
        head = head.rsplit(" ", 1)[0]
    else:
        end = len(head)
        while end > 1 and (_continues_previous(text[end]) or text[end - 1] == ZWJ):
            end -= 1
        head = head[:end]
    return head.rstrip(" ,;:.-\u2013\u2014") + ELLIPSIS


def _continues_previous(char: str) -> bool:
    return unicodedata.combining(char) != 0 or char in _JOINERS


def _list_item(ticket: Ticket) -> TicketListItem:
    return TicketListItem(
        id=ticket.pk,
        customer_id=ticket.customer_id,
        subject=ticket.subject,
        status=ticket.status,
        updated_at=ticket.updated_at,
        preview=make_preview(ticket.message),
        has_note=bool(ticket.agent_note.strip()),
    )


def _upsert(items: list[TicketListItem]) -> None:
    # INSERT … ON CONFLICT DO UPDATE: one statement, safe against a concurrent projection.
    TicketListItem.objects.bulk_create(
        items, update_conflicts=True, unique_fields=["id"], update_fields=_PROJECTED_FIELDS
    )


def project_ticket(ticket_id: int) -> TicketListItem | None:
    """Bring the read row of ticket ``ticket_id`` up to date with the write model.

    Returns the row written, or ``None`` when the ticket no longer exists (its row is deleted).
    """
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None:
        TicketListItem.objects.filter(pk=ticket_id).delete()
        return None
    item = _list_item(ticket)
    _upsert([item])
    return item


def rebuild_all(batch_size: int = 500, progress: Callable[[int, int], Any] | None = None) -> int:
    """Rebuild the whole read model from the write model; returns the number of rows written.

    Idempotent: rows of deleted tickets are removed and every other row is rewritten, batch by
    batch (``progress(done, total)`` is called after each). Runs in one transaction, so readers
    see the old read model or the new one, never a half-built one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}.")
    with transaction.atomic():
        TicketListItem.objects.exclude(pk__in=Ticket.objects.values("pk")).delete()
        total = Ticket.objects.count()
        done = 0
        for batch in _batches(Ticket.objects.order_by("pk"), batch_size):
            _upsert([_list_item(ticket) for ticket in batch])
            done += len(batch)
            if progress is not None:
                progress(done, total)
        publish("tickets")
        publish(REBUILT_TOPIC)
    return done


def _batches(queryset: Any, size: int) -> Iterable[list[Ticket]]:
    last_pk = 0
    while batch := list(queryset.filter(pk__gt=last_pk)[:size]):
        yield batch
        last_pk = batch[-1].pk


def on_ticket_saved(sender: type[Ticket], instance: Ticket, **kwargs: Any) -> None:
    """``post_save`` receiver: project the saved ticket in the saving transaction."""
    project_ticket(instance.pk)


def on_ticket_deleted(sender: type[Ticket], instance: Ticket, **kwargs: Any) -> None:
    """``post_delete`` receiver: drop the deleted ticket's read row in the deleting transaction."""
    TicketListItem.objects.filter(pk=instance.pk).delete()
