"""The whole data model of the example."""

from django.db import models


class Task(models.Model):
    """Something to do."""

    title = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.title
