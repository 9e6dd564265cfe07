"""Pages and streams of the support desk.

Each page is painted once with the same context its stream renders, then opens its stream with
``{% realtime_page %}``; the stream re-renders the partial (``_desk.html`` or ``_portal.html``)
whenever a topic it watches is published. Commands live in :mod:`tickets.commands`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.generic import TemplateView

from realtime import StreamView
from realtime.presence import present_by_topic
from tickets.commands import StaffRequiredMixin, ticket_topic
from tickets.models import Status, Ticket
from tickets.projector import REBUILT_TOPIC
from tickets.queries import (
    TicketFilters,
    customer_tickets,
    status_counts,
    ticket_detail,
    ticket_page,
)

#: Streams re-render at least this often, so relative times ("3 minutes ago") stay true.
REFRESH_SECONDS = 60.0


def desk_context(filters: TicketFilters) -> dict[str, Any]:
    """What ``_desk.html`` shows for ``filters``: a page of the list, counts, the selected ticket,
    and the agents on each of them (every agent, the reader too: the page hides its own)."""
    counts = status_counts()
    page = ticket_page(filters)
    shown = [item.pk for item in page.object_list]
    presence = present_by_topic(
        ticket_topic(pk) for pk in [*shown, *([filters.ticket] if filters.ticket else [])]
    )
    for item in page.object_list:
        item.agents = presence[ticket_topic(item.pk)]
    return {
        "filters": filters,
        "page": page,
        "status_tabs": [("", "All", counts[""])]
        + [(value, label, counts[value]) for value, label in Status.choices],
        "statuses": Status.choices,
        "selected": ticket_detail(filters.ticket),
        "selected_agents": presence[ticket_topic(filters.ticket)] if filters.ticket else [],
    }


def customer_ticket_topic(customer: int, ticket: int) -> str:
    """The presence topic the portal reads: agents on one of this customer's tickets (it has a
    topic of its own so that a customer's stream wakes only for their own tickets)."""
    return f"customers.{customer}.tickets.{ticket}"


def portal_context(customer: int) -> dict[str, Any]:
    """What ``_portal.html`` shows: the customer's own tickets, and whether an agent is looking
    at each (never who, nor anything of other customers)."""
    tickets = customer_tickets(customer)
    presence = present_by_topic(customer_ticket_topic(customer, t.pk) for t in tickets)
    for item in tickets:
        item.agent_looking = bool(presence[customer_ticket_topic(customer, item.pk)])
    return {"tickets": tickets}


def customer_id(request: HttpRequest) -> int:
    """The id of the logged-in user (the portal's views let no one else in)."""
    if request.user.pk is None:
        raise PermissionDenied
    return int(request.user.pk)


class StaffPageMixin(UserPassesTestMixin):
    """Pages for agents: anonymous visitors go to the login page, customers get a 403 page that
    says why (rendered here, not raised: a refused page is no error worth a traceback)."""

    def test_func(self) -> bool:
        """Whether the request's user is an active staff member."""
        user = self.request.user  # type: ignore[attr-defined]
        return bool(user.is_active and user.is_staff)

    def handle_no_permission(self) -> HttpResponse:  # type: ignore[override]
        """The login page for visitors; for a logged-in customer, a 403 page that explains."""
        request: HttpRequest = self.request  # type: ignore[attr-defined]
        if not request.user.is_authenticated:
            return super().handle_no_permission()  # type: ignore[no-any-return]
        reason = "The agent desk is for support agents. Your own tickets are in My tickets."
        return render(request, "403.html", {"reason": reason}, status=403)


class DeskPage(StaffPageMixin, TemplateView):
    """``/desk/``: the agents' ticket list, filters and detail panel, live."""

    template_name = "tickets/desk.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """First paint from the query string (``?status=open&note=with&page=2&ticket=7``)."""
        filters = TicketFilters.from_data(self.request.GET)
        signals = {
            "filter": filters.as_signals(),
            "status": "",
            "note": "",
            "errors": {"status": "", "note": ""},
            # Local (never sent): the page hides its own agent in the shared presence lists.
            "_me": str(self.request.user.pk),
        }
        return {
            **super().get_context_data(**kwargs),
            **desk_context(filters),
            "page_signals": signals,
        }


class DeskStream(StaffRequiredMixin, StreamView):
    """The desk's stream: the list for this tab's ``filter`` signals, re-rendered on ``tickets``
    and when agents come, go or type on any ticket. The tab is present on the ticket it shows."""

    topics = ("tickets", "presence.tickets.*")
    signal_names = ("filter",)
    template_name = "tickets/_desk.html"
    refresh_interval = REFRESH_SECONDS

    @property
    def filters(self) -> TicketFilters:
        """The filters this tab sent as its ``filter`` signals."""
        raw = self.signals.get("filter")
        return TicketFilters.from_data(raw if isinstance(raw, Mapping) else None)

    def get_presence_topics(self) -> list[str]:
        """The selected ticket's topic (agents see each other), and its customer's (the
        portal's "an agent is looking"); nothing while no ticket is selected."""
        ticket = self.filters.ticket
        customer = (
            Ticket.objects.filter(pk=ticket).values_list("customer_id", flat=True).first()
            if ticket
            else None
        )
        if ticket is None or customer is None:
            return []
        return [ticket_topic(ticket), customer_ticket_topic(customer, ticket)]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The desk partial's context for this tab's filters."""
        return {**super().get_context_data(**kwargs), **desk_context(self.filters)}

    def get_render_key(self) -> Hashable:
        """Every agent with the same filters shares one render (the partial holds nothing
        personal: no CSRF token, no user name)."""
        return (type(self).__qualname__, self.filters, translation.get_language())


class PortalPage(LoginRequiredMixin, TemplateView):
    """``/my/``: a customer's form to open a ticket, and their own tickets, live."""

    template_name = "tickets/portal.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """First paint: the user's own tickets."""
        signals = {
            "subject": "",
            "message": "",
            "errors": {"subject": "", "message": ""},
            "_rejected": False,
        }
        return {
            **super().get_context_data(**kwargs),
            **portal_context(customer_id(self.request)),
            "page_signals": signals,
        }


class PortalStream(LoginRequiredMixin, StreamView):
    """The portal's stream: only the requesting user's tickets, on their own topic."""

    template_name = "tickets/_portal.html"
    refresh_interval = REFRESH_SECONDS
    raise_exception = True

    def get_topics(self) -> list[str]:
        """This customer's topic (other customers' tickets never wake this stream), rebuilds, and
        agents coming to or leaving this customer's tickets."""
        customer = customer_id(self.request)
        return [f"customers.{customer}", REBUILT_TOPIC, f"presence.customers.{customer}.*"]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The portal partial's context for the requesting user."""
        return {**super().get_context_data(**kwargs), **portal_context(customer_id(self.request))}

    def get_render_key(self) -> Hashable:
        """One render per customer (and language), whatever drafts the tab's signals hold."""
        return (type(self).__qualname__, customer_id(self.request), translation.get_language())
