"""``manage.py rebuild_projections``: rebuild the read model from the write model."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tickets.projector import rebuild_all


class Command(BaseCommand):
    """Recompute every ``TicketListItem`` (after changing a derived field's rule, or a restore)."""

    help = "Rebuild the tickets read model from the write model (idempotent, batched)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Tickets per batch (default 500)."
        )

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError(f"--batch-size must be at least 1, not {batch_size}.")

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"Projected {done}/{total} tickets")

        count = rebuild_all(batch_size=batch_size, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"Rebuilt the read model: {count} tickets."))
