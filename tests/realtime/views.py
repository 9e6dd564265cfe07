"""Test-only views: a bare SSE stream, and a tiny live page on ``auth.Group`` rows."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.models import Group
from django.http import HttpRequest, StreamingHttpResponse

from realtime import CommandError, CommandView, StreamView, command, publish
from realtime.presence import Member, present, set_state

#: Renders performed by GroupsStream, per thread-safe count (the shared-render test reads it).
render_count = 0
_count_lock = threading.Lock()


async def ticks(request: HttpRequest) -> StreamingHttpResponse:
    """A bare async SSE stream: one event at once, then one every 100 ms, forever."""

    async def events() -> AsyncIterator[str]:
        n = 0
        while True:
            yield f"event: tick\ndata: {n}\n\n"
            n += 1
            await asyncio.sleep(0.1)

    return StreamingHttpResponse(events(), content_type="text/event-stream")


class GroupsStream(StreamView):
    """Every group's name, live."""

    topics = ["groups"]
    template_name = "realtime_tests/groups.html"
    signal_names = ("q",)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        global render_count
        with _count_lock:
            render_count += 1
        return super().get_context_data(groups=list(Group.objects.order_by("name")), **kwargs)


class PrivateGroupsStream(LoginRequiredMixin, GroupsStream):
    """The same, for logged-in users only."""

    raise_exception = True


class ClockStream(GroupsStream):
    """The same, re-rendered every 0.2 s."""

    refresh_interval = 0.2


class GroupForm(forms.Form):
    name = forms.CharField(min_length=3, max_length=50)


class AddGroup(CommandView):
    """Create a group; the name "forbidden" breaks a business rule."""

    form_class = GroupForm

    def handle(self, form: forms.Form) -> None:
        name = form.cleaned_data["name"]
        Group.objects.create(name=name)  # written first, so a rejection proves the rollback
        if name == "forbidden":
            raise CommandError("That name is forbidden.")
        publish("groups")


class AddGroupLater(AddGroup):
    detached = True


@command(GroupForm, login_required=True)
def add_private_group(request: HttpRequest, form: forms.Form) -> None:
    """Function-style command for logged-in users."""
    Group.objects.create(name=form.cleaned_data["name"])
    publish("groups")


class RoomStream(StreamView):
    """Who is in a room, live; each stream is present in it as its ``who`` query parameter says
    (one render for every viewer of a room: the partial holds only the room's presence)."""

    topics = ["presence.rooms.{room}"]
    presence_topics = ["rooms.{room}"]
    template_name = "realtime_tests/room.html"

    def get_presence(self) -> Member | None:
        who = self.request.GET.get("who")
        return Member(who, who.title()) if who else None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(present=present(f"rooms.{self.kwargs['room']}"), **kwargs)

    def get_render_key(self) -> tuple[str, str]:
        return (type(self).__qualname__, self.kwargs["room"])


class StateForm(forms.Form):
    state = forms.CharField(required=False, max_length=32)
    expires_in = forms.FloatField(required=False)


class RoomState(CommandView):
    """Set the acting tab's presence state in a room (blank: back to its resting state)."""

    form_class = StateForm

    def handle(self, form: forms.Form) -> None:
        set_state(
            self.tab,
            form.cleaned_data["state"] or None,
            expires_in=form.cleaned_data["expires_in"],
            topic=f"rooms.{self.kwargs['room']}",
        )
