"""The live admin's test model (no migrations: the test database creates its table)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models


class Note(models.Model):
    """A note: text, a choice, a flag, a foreign key and a many-to-many."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        DONE = "done", "Done"

    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    pinned = models.BooleanField(default=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    groups = models.ManyToManyField(Group, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return self.title


class Comment(models.Model):
    """A comment on a note: edited inline on the note's change form."""

    note = models.ForeignKey(Note, on_delete=models.CASCADE, related_name="comments")
    text = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.text
