"""Bench-only views: counters as JSON, a reset, the naive stream, a fat-morph stream, and the
live admin's rows, staff users and saves."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Hashable
from importlib import import_module
from typing import Any

import psutil
from django import forms
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import Group, Permission, User
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from psycopg import AsyncConnection, sql

from realtime.commands import CommandView
from realtime.conf import get_config
from realtime.counters import counters
from realtime.metrics import stats as realtime_stats
from realtime.presence import Tracker
from realtime.relay.postgres import listener_conninfo
from realtime.relay.registry import all_hubs
from realtime.rendering import run_sync
from tests.realtime.views import GroupsStream, RoomStream
from tickets.models import Status, Ticket

#: The users ``admin_setup`` creates (and deletes on the next run) start with this.
ADMIN_USER_PREFIX = "bench-admin-"


def stats(request: HttpRequest) -> JsonResponse:
    """``realtime.stats()``, this process's RSS, and this database's connections by application."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() GROUP BY 1"
        )
        pg = {name or "(django)": n for name, n in cursor.fetchall()}
    data = realtime_stats()
    # Presence transactions written by this process (bench.presence reads the deltas).
    data["presence_writes"] = sum(hub.attached(Tracker).writes for hub in all_hubs())
    data["rss"] = psutil.Process(os.getpid()).memory_info().rss
    data["pg_connections"] = pg
    return JsonResponse(data)


def noop(request: HttpRequest) -> HttpResponse:
    """The commands bench's ceiling: a POST through the full middleware stack, nothing else."""
    return HttpResponse(status=204)


class NoopCommand(CommandView):
    """A command that validates its input and writes nothing: what a command costs before its
    own work (the commands bench's other ceiling, through realtime.handler)."""

    class form_class(forms.Form):  # the attribute CommandView reads
        name = forms.CharField(max_length=100, required=False)

    def handle(self, form: forms.Form) -> None:
        pass


@csrf_exempt
def reset(request: HttpRequest) -> HttpResponse:
    """Delete every group (the workload's rows), so each run starts from the same state."""
    Group.objects.all().delete()
    return HttpResponse(status=204)


class NaiveGroupsStream(GroupsStream):
    """The naive variant: the same stream, but every subscriber renders alone (no shared render)."""

    def get_render_key(self) -> Hashable | None:
        return None


class NaiveListenStream(GroupsStream):
    """The naive design, without this project's relay: each stream opens its own connection,
    LISTENs, and renders for itself on every notification (no sharing, no coalescing)."""

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> StreamingHttpResponse:  # type: ignore[override]
        return StreamingHttpResponse(
            self._naive_events(),
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "Content-Encoding": "identity"},
        )

    async def _naive_events(self) -> AsyncIterator[bytes]:
        conninfo = {**listener_conninfo("default"), "application_name": "naive-listener"}
        async with await AsyncConnection.connect(autocommit=True, **conninfo) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(get_config().CHANNEL)))
            yield await self._render_alone()
            async for _ in conn.notifies():
                yield await self._render_alone()

    async def _render_alone(self) -> bytes:
        counters.renders += 1  # counted like realtime's renders, for the table
        return await run_sync(self.render_stream)


class FatGroupsStream(GroupsStream):
    """A fat morph: a whole table (many rows, attributes) re-sent on every change, like a desk."""

    template_name = "bench/fat.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["rows"] = [(g, i) for i, g in enumerate(context["groups"])]
        return context


class PresentTab(RoomStream):
    """A tab that is present in a room and shows nothing of it (the churn of bench.presence:
    what presence costs to write, apart from what showing it costs)."""

    topics = ()
    template_name = "bench/present_tab.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"view": self}


@csrf_exempt
def admin_setup(request: HttpRequest) -> JsonResponse:
    """Start ``bench.live_admin`` afresh: ``rows`` open tickets (every other ticket deleted) and
    ``viewers`` staff users with the ticket permissions (as the demo's agents have), each signed
    in: the answer lists their session keys and the tickets' ids, oldest first."""
    body = json.loads(request.body or b"{}")
    rows, viewers = int(body.get("rows", 100)), int(body.get("viewers", 100))
    Ticket.objects.all().delete()
    User.objects.filter(username__startswith=ADMIN_USER_PREFIX).delete()
    rights = Permission.objects.filter(
        content_type__app_label="tickets", codename__endswith="_ticket"
    )
    customer = User.objects.create_user(ADMIN_USER_PREFIX + "customer")
    with transaction.atomic():
        tickets = [
            Ticket.objects.create(
                customer=customer,
                subject=f"Ticket {i:03d}",
                message="Benchmark ticket.",
                status=Status.OPEN,
            ).pk
            for i in range(rows)
        ]
    store = import_module(settings.SESSION_ENGINE).SessionStore
    sessions = []
    for i in range(viewers):
        user = User.objects.create_user(f"{ADMIN_USER_PREFIX}{i:04d}", is_staff=True)
        user.user_permissions.add(*rights)
        session = store()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        sessions.append(session.session_key)
    return JsonResponse(
        {"tickets": tickets, "sessions": sessions, "cookie": settings.SESSION_COOKIE_NAME}
    )


@csrf_exempt
def admin_save(request: HttpRequest) -> HttpResponse:
    """Save one ticket with a new subject (``{"pk": ..., "subject": ...}``), as a command or the
    shell would: the save publishes its admin topic like any other."""
    body = json.loads(request.body)
    ticket = Ticket.objects.get(pk=body["pk"])
    ticket.subject = body["subject"]
    ticket.save()
    return HttpResponse(status=204)
