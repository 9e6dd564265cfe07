"""One WebSocket consumer per tab: joins the ``groups`` group, renders on every message."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import Group
from django.template.loader import render_to_string


def render() -> str:
    groups = list(Group.objects.order_by("name"))
    return render_to_string("realtime_tests/groups.html", {"groups": groups})


class GroupsConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.channel_layer.group_add("groups", self.channel_name)
        await self.accept()
        await self.send(text_data=await database_sync_to_async(render)())

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard("groups", self.channel_name)

    async def groups_changed(self, event: dict[str, Any]) -> None:
        await self.send(text_data=await database_sync_to_async(render)())
