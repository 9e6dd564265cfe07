"""The support desk: a CQRS demo of ``realtime``."""

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class TicketsConfig(AppConfig):
    """Write model, projector, read model, commands and live pages of the support desk."""

    name = "tickets"
    verbose_name = "Support desk"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Project and publish every ticket write, whoever makes it, in its own transaction."""
        import realtime
        from tickets.models import Ticket
        from tickets.projector import on_ticket_deleted, on_ticket_saved

        post_save.connect(on_ticket_saved, sender=Ticket, dispatch_uid="tickets.project.save")
        post_delete.connect(on_ticket_deleted, sender=Ticket, dispatch_uid="tickets.project.delete")
        realtime.broadcast(Ticket, topics=Ticket.topics)
