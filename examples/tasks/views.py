"""The page, its stream and the one command of the live task list."""

from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import realtime
from examples.tasks.models import Task


class TaskForm(forms.Form):
    """A new task's input."""

    title = forms.CharField(max_length=200)


class AddTask(realtime.CommandView):
    """POST ``{"title": ...}``: add a task (the ``tasks`` topic is published by ``broadcast``)."""

    form_class = TaskForm

    def handle(self, form: forms.Form) -> None:
        """Create the task."""
        Task.objects.create(title=form.cleaned_data["title"])


class TaskStream(realtime.StreamView):
    """Re-renders the list whenever ``tasks`` is published."""

    topics = ("tasks",)
    template_name = "tasks/index.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The tasks, for the list only (``stream`` leaves the page around it out)."""
        return {"tasks": Task.objects.order_by("id"), "stream": True}


def index(request: HttpRequest) -> HttpResponse:
    """The page: a form and the list, which opens the stream."""
    return render(request, "tasks/index.html", {"tasks": Task.objects.order_by("id")})


def htmx_index(request: HttpRequest) -> HttpResponse:
    """The same page for htmx: same stream (named HTML events for htmx), same command."""
    return render(request, "tasks/htmx.html", {"tasks": Task.objects.order_by("id")})
