"""The page, its stream and the one command of the live task list.

Anyone may add a task, logged in or not, so the list is bounded: it keeps the newest
:data:`MAX_TASKS` (adding one more deletes the oldest), and pages and streams render no more.
A full list that refused new tasks would let one visitor lock everyone else out.
"""

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import realtime
from examples.tasks.models import Task

#: The most tasks the shared, anonymous list keeps (and renders).
MAX_TASKS = 50


def newest_tasks() -> list[Task]:
    """The newest :data:`MAX_TASKS` tasks, oldest first."""
    return list(reversed(Task.objects.order_by("-id")[:MAX_TASKS]))


class TaskForm(forms.Form):
    """A new task's input."""

    title = forms.CharField(max_length=200)


class AddTask(realtime.CommandView):
    """POST ``{"title": ...}``: add a task (the ``tasks`` topic is published by ``broadcast``)."""

    form_class = TaskForm

    def handle(self, form: forms.Form) -> None:
        """Create the task, and delete those older than the newest :data:`MAX_TASKS`."""
        Task.objects.create(title=form.cleaned_data["title"])
        oldest_kept = Task.objects.order_by("-id").values_list("id", flat=True)[MAX_TASKS - 1 :]
        cutoff = oldest_kept.first()
        if cutoff is not None:
            Task.objects.filter(id__lt=cutoff).delete()


class TaskStream(realtime.StreamView):
    """Re-renders the list whenever ``tasks`` is published."""

    topics = ("tasks",)
    template_name = "tasks/index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The tasks, for the list only (``stream`` leaves the page around it out)."""
        return {"tasks": newest_tasks(), "stream": True}


def index(request: HttpRequest) -> HttpResponse:
    """The page: a form and the list, which opens the stream."""
    return render(request, "tasks/index.html", {"tasks": newest_tasks()})


def htmx_index(request: HttpRequest) -> HttpResponse:
    """The same page for htmx: same stream (named HTML events for htmx), same command."""
    return render(request, "tasks/htmx.html", {"tasks": newest_tasks()})
