"""``{% load desk %}``: relative times."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tickets.templatetags.desk import ago


def test_just_now() -> None:
    assert ago(timezone.now()) == "just now"
    assert ago(timezone.now() - timedelta(seconds=59)) == "just now"


def test_largest_unit_only() -> None:
    assert ago(timezone.now() - timedelta(minutes=5, seconds=3)) == "5\xa0minutes ago"
    assert ago(timezone.now() - timedelta(days=3, hours=4)) == "3\xa0days ago"


def test_nothing() -> None:
    assert ago(None) == ""
