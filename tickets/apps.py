"""The support desk: a CQRS demo of ``realtime``."""

from django.apps import AppConfig


class TicketsConfig(AppConfig):
    """Write model, projector, read model, commands and live pages of the support desk."""

    name = "tickets"
    verbose_name = "Support desk"
    default_auto_field = "django.db.models.BigAutoField"
