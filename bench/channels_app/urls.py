"""HTTP side of the Channels peer: the command (create a group, then group_send) and a reset."""

import json

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import Group
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
async def add_group(request: HttpRequest) -> HttpResponse:
    name = json.loads(request.body or b"{}").get("name", "group")
    await sync_to_async(Group.objects.create)(name=name)
    layer = get_channel_layer()
    assert layer is not None
    await layer.group_send("groups", {"type": "groups.changed"})
    return HttpResponse(status=204)


@csrf_exempt
async def reset(request: HttpRequest) -> HttpResponse:
    await sync_to_async(lambda: Group.objects.all().delete())()
    return HttpResponse(status=204)


urlpatterns = [path("add/", add_group), path("reset/", reset)]
