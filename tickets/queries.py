"""Read-side queries of the support desk.

Lists read the read model (``TicketListItem``): filters on pre-computed, indexed columns, newest
first, paginated. The detail reads the write model (``Ticket``), the source of truth. Filters come
from untrusted input (query strings, Datastar signals): anything malformed means "no filter".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, QuerySet

from tickets.models import Status, Ticket, TicketListItem

PAGE_SIZE = 20
#: Most recent tickets shown on a customer's portal.
PORTAL_LIMIT = 50

_LIST_FIELDS = ("id", "subject", "status", "updated_at", "preview", "has_note")


@dataclass(frozen=True)
class TicketFilters:
    """What an agent's list shows: a status (``""`` for all), a note filter, a page, a selection."""

    status: str = ""
    note: str = ""  # "", "with" or "without"
    page: int = 1
    ticket: int | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> TicketFilters:
        """Parse filters leniently from signals or a query string: bad values become defaults."""
        data = data or {}
        status = str(data.get("status") or "")
        note = str(data.get("note") or "")
        return cls(
            status=status if status in Status.values else "",
            note=note if note in ("with", "without") else "",
            page=max(_int(data.get("page")) or 1, 1),
            ticket=_int(data.get("ticket")),
        )

    def as_signals(self) -> dict[str, Any]:
        """The filters as the page's ``filter`` signals.

        No ticket is ``""``, not ``None``: Datastar deletes a signal patched with ``null``, and
        the page's first read of the missing ``$filter.ticket`` would create it, a signal patch
        that reopens the stream right after it opened.
        """
        ticket = "" if self.ticket is None else self.ticket
        return {"status": self.status, "note": self.note, "page": self.page, "ticket": ticket}


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def filtered_tickets(filters: TicketFilters) -> QuerySet[TicketListItem]:
    """The read-model rows matching ``filters``, newest first."""
    rows = TicketListItem.objects.only(*_LIST_FIELDS).order_by("-updated_at", "-id")
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.note:
        rows = rows.filter(has_note=filters.note == "with")
    return rows


def ticket_page(filters: TicketFilters, per_page: int = PAGE_SIZE) -> Page[TicketListItem]:
    """One page of :func:`filtered_tickets` (a page past the end gives the last page)."""
    return Paginator(filtered_tickets(filters), per_page).get_page(filters.page)


def status_counts() -> dict[str, int]:
    """How many tickets each status has, plus ``""`` for all of them."""
    counts = dict.fromkeys(Status.values, 0)
    for row in TicketListItem.objects.order_by().values("status").annotate(n=Count("id")):
        counts[row["status"]] = row["n"]
    counts[""] = sum(counts.values())
    return counts


def ticket_detail(ticket_id: int | None) -> Ticket | None:
    """The full ticket from the write model, or ``None`` when there is no such ticket."""
    if ticket_id is None:
        return None
    return Ticket.objects.select_related("customer").filter(pk=ticket_id).first()


def customer_tickets(customer_id: int, limit: int = PORTAL_LIMIT) -> list[TicketListItem]:
    """A customer's own tickets from the read model, newest first."""
    rows = TicketListItem.objects.filter(customer_id=customer_id).order_by("-updated_at", "-id")
    return list(rows.only(*_LIST_FIELDS)[:limit])
