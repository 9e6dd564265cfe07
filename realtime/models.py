"""The tables of presence (:mod:`realtime.presence`): who is on which topic, from which process.

They are the app's only models, written by each server process's presence task (in batches) and
by :func:`realtime.presence.set_state`; read them through :func:`realtime.presence.present`,
which ignores the entries of processes that stopped beating. Nothing else of the app needs them.
"""

from __future__ import annotations

from django.db import models


class PresenceProcess(models.Model):
    """One server process (one hub) that holds presence entries, and when it last proved alive."""

    #: ``host-pid-random``: unique per process start, so a restarted process is a new one.
    id = models.CharField(primary_key=True, max_length=100)
    #: The database's clock (never a host's), written once every ``PRESENCE_HEARTBEAT`` seconds.
    last_seen = models.DateTimeField()

    class Meta:
        db_table = "realtime_presence_process"

    def __str__(self) -> str:
        return self.id


class PresenceEntry(models.Model):
    """One stream present on one topic: who, under which name, in which state."""

    id = models.BigAutoField(primary_key=True)
    #: The stream's random key (one stream may be present on several topics).
    key = models.CharField(max_length=32, db_index=True)
    #: The :class:`PresenceProcess` that serves the stream (no foreign key: the batch writes and
    #: the reaping stay single statements, and an entry is never read without its process).
    process = models.CharField(max_length=100, db_index=True)
    topic = models.CharField(max_length=200, db_index=True)
    #: A digest of the stream's tab id (empty without one): commands address their tab by it.
    tab = models.CharField(max_length=64, blank=True, db_index=True)
    user_id = models.CharField(max_length=64)
    name = models.CharField(max_length=150)
    #: The current state, until ``state_expires_at``; then ``base_state`` again.
    state = models.CharField(max_length=32)
    base_state = models.CharField(max_length=32)
    state_expires_at = models.DateTimeField(null=True, blank=True)
    joined_at = models.DateTimeField()

    class Meta:
        db_table = "realtime_presence_entry"
        indexes = [
            models.Index(
                fields=["process", "state_expires_at"],
                condition=models.Q(state_expires_at__isnull=False),
                name="realtime_presence_expiring",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.topic} ({self.state})"
