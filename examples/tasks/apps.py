"""The live task list's app: every saved ``Task`` publishes the ``tasks`` topic."""

from django.apps import AppConfig


class TasksConfig(AppConfig):
    """Connects ``Task`` saves to the relay."""

    name = "examples.tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Publish ``tasks`` inside every transaction that saves or deletes a task."""
        import realtime
        from examples.tasks.models import Task

        realtime.broadcast(Task, topics=["tasks"])
