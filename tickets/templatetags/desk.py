"""Presentation helpers of the support desk's templates: ``{% load desk %}``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """A short relative time: "just now", "5 minutes ago", "3 days ago" (the largest unit only).

    Streams re-render at least once a minute, so the text stays true while a page is open.
    """
    if value is None:
        return ""
    if timezone.now() - value < timedelta(minutes=1):
        return "just now"
    return f"{timesince(value, depth=1)} ago"
