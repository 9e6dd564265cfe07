"""Admin for the write model. Saves here project and publish like any other write, so every open
desk and portal updates live. The read model is derived data and has no admin."""

from __future__ import annotations

from django.contrib import admin

from realtime.admin import LiveModelAdmin
from tickets.models import Ticket


@admin.register(Ticket)
class TicketAdmin(LiveModelAdmin):
    """Tickets: browse, filter, search and edit (status rules are the commands' business).

    Live: the changelist updates as tickets change anywhere, the change form shows which other
    agents have the ticket open, and a save based on an old version of the ticket is refused.
    """

    list_display = ("id", "subject", "customer", "status", "has_note", "updated_at")
    list_display_links = ("id", "subject")
    list_filter = ("status", "updated_at")
    search_fields = ("subject", "message", "customer__username", "customer__email")
    list_select_related = ("customer",)
    raw_id_fields = ("customer",)
    readonly_fields = ("created_at", "updated_at")
    date_hierarchy = "created_at"
    ordering = ("-updated_at", "-id")

    @admin.display(boolean=True, description="note")
    def has_note(self, ticket: Ticket) -> bool:
        """Whether the ticket carries a non-blank agent note."""
        return bool(ticket.agent_note.strip())
