"""The operations page: staff only, linked from the admin index, and its arithmetic."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from config.operations import Snapshot, _nice, chart, quantile, rate

INF = float("inf")


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(User.objects.create_user("ops", is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db
def test_staff_see_the_page_and_the_admin_links_to_it(staff: Client) -> None:
    response = staff.get("/ops/")
    assert response.status_code == 200
    assert b'id="operations"' in response.content
    assert b"<svg" in response.content
    assert b'href="/ops/"' in staff.get("/admin/").content


@pytest.mark.django_db
def test_others_do_not(client: Client) -> None:
    assert client.get("/ops/").status_code == 302  # to the login page
    client.force_login(User.objects.create_user("customer"))
    assert client.get("/ops/").status_code == 403
    assert client.get("/ops/stream/").status_code == 403


def test_quantile_interpolates_like_prometheus() -> None:
    assert quantile(0.5, {0.001: 0, 0.01: 10, INF: 10}) == pytest.approx(0.0055)
    assert quantile(0.99, {0.001: 0, 0.01: 0, INF: 4}) == 0.01  # in +Inf: the last bound
    assert quantile(0.5, {0.01: 0, INF: 0}) is None
    assert quantile(0.5, {}) is None


def test_rates_and_chart() -> None:
    a = Snapshot(at=100.0, totals={"commands": 1})
    b = Snapshot(at=102.0, totals={"commands": 7})
    c = Snapshot(at=103.0, totals={"commands": 0})  # a reset: no negative rate
    assert rate(a, b, "commands") == 3.0
    assert rate(b, c, "commands") == 0.0
    drawn = chart([a, b, c], now=103.0)
    assert drawn["top"] == 5.0
    commands = next(line for line in drawn["lines"] if line["key"] == "commands")
    assert commands["points"] == [(598.0, 56.0), (600.0, 140.0)]
    assert [_nice(v) for v in (0, 1, 1.5, 3, 7, 12)] == [1, 1, 2, 5, 10, 20]
