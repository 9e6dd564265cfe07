"""Bench-only views: counters as JSON, a reset, the naive stream, and a fat-morph stream."""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

import psutil
from django.contrib.auth.models import Group
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from realtime.metrics import stats as realtime_stats
from tests.project.views import GroupsStream


def stats(request: HttpRequest) -> JsonResponse:
    """``realtime.stats()``, this process's RSS, and this database's connections by application."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() GROUP BY 1"
        )
        pg = {name or "(django)": n for name, n in cursor.fetchall()}
    data = realtime_stats()
    data["rss"] = psutil.Process(os.getpid()).memory_info().rss
    data["pg_connections"] = pg
    return JsonResponse(data)


@csrf_exempt
def reset(request: HttpRequest) -> HttpResponse:
    """Delete every group (the workload's rows), so each run starts from the same state."""
    Group.objects.all().delete()
    return HttpResponse(status=204)


class NaiveGroupsStream(GroupsStream):
    """The naive variant: the same stream, but every subscriber renders alone (no shared render)."""

    def get_render_key(self) -> Hashable | None:
        return None


class FatGroupsStream(GroupsStream):
    """A fat morph: a whole table (many rows, attributes) re-sent on every change, like a desk."""

    template_name = "bench/fat.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["rows"] = [(g, i) for i, g in enumerate(context["groups"])]
        return context
