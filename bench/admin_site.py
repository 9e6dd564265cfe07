"""A second admin site for ``bench.live_admin``: the demo's ``TicketAdmin`` rendering its live
changelist once per user (as any ``LiveModelAdmin`` that overrides ``get_queryset`` does), to
compare with the shared renders of the demo's own admin. Bench-only; never part of ``realtime``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.db.models import QuerySet
from django.http import HttpRequest

from tickets.admin import TicketAdmin
from tickets.models import Ticket


class PerUserTicketAdmin(TicketAdmin):
    """The demo's ticket admin with its own ``get_queryset`` (the same rows): its changelist
    renders per user (see ``LiveModelAdmin.live_render_key``)."""

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket, Any]:
        return super().get_queryset(request)


site = AdminSite(name="benchadmin")
site.register(Ticket, PerUserTicketAdmin)
