"""The URLs of the reusable app's tests: the test views (views.py), streams that exercise
StreamView's hooks, and the admin (whose saves broadcast)."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.mixins import PermissionRequiredMixin, UserPassesTestMixin
from django.contrib.auth.models import Group
from django.urls import path

from realtime import CommandView, StreamView
from realtime.prometheus import metrics_view
from tests.realtime import views
from tests.realtime.views import GroupsStream


class FlakyStream(GroupsStream):
    """Its first ``failures`` renders raise, as when the database is briefly unreachable."""

    failures = 0

    def render_stream(self) -> bytes:
        if FlakyStream.failures > 0:
            FlakyStream.failures -= 1
            raise RuntimeError("the database went away")
        return super().render_stream()


class OneGroupStream(StreamView):
    """One group, by URL kwarg: topic from the URL, a selector and mode, and patched signals."""

    topics = ["groups.{pk}"]
    template_name = "realtime_tests/groups.html"
    selector = "#groups"
    mode = "inner"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        groups = list(Group.objects.filter(pk=self.kwargs["pk"]))
        return super().get_context_data(groups=groups, **kwargs)

    def get_signals(self, context: dict[str, Any]) -> dict[str, Any] | None:
        return {"found": len(context["groups"])}


class ThreadStream(GroupsStream):
    """Records the thread its access check runs on (realtime.handler's tests)."""

    threads: list[str] = []

    def has_permission(self) -> bool:
        ThreadStream.threads.append(threading.current_thread().name)
        return True


class ThreadCommand(CommandView):
    """Records the thread it runs on, and fails when asked to (realtime.handler's tests)."""

    threads: list[str] = []

    class form_class(forms.Form):  # the attribute CommandView reads
        fail = forms.BooleanField(required=False)

    def handle(self, form: forms.Form) -> None:
        ThreadCommand.threads.append(threading.current_thread().name)
        if form.cleaned_data["fail"]:
            raise RuntimeError("a bug in a command")


class SlowStream(GroupsStream):
    """Its access check takes 0.2 s, and counts how many run at once (realtime.handler's gate)."""

    running = 0
    most = 0
    lock = threading.Lock()

    def has_permission(self) -> bool:
        with SlowStream.lock:
            SlowStream.running += 1
            SlowStream.most = max(SlowStream.most, SlowStream.running)
        time.sleep(0.2)
        with SlowStream.lock:
            SlowStream.running -= 1
        return True


class PrefixStream(GroupsStream):
    topics = ["groups.*"]


class DeniedStream(GroupsStream):
    def has_permission(self) -> bool:
        return False


class UnsharedStream(GroupsStream):
    def get_render_key(self) -> Hashable | None:
        return None


class StaffGroupsStream(UserPassesTestMixin, GroupsStream):
    """For active staff only (a rule on the user that can change while the stream is open)."""

    raise_exception = True

    def test_func(self) -> bool:
        user = self.request.user
        return bool(user.is_active and user.is_staff)


class PermissionGroupsStream(PermissionRequiredMixin, GroupsStream):
    """For users who may view groups (a permission that can come from a group)."""

    permission_required = "auth.view_group"
    raise_exception = True


#: The test views at their URLs; the demo's test URLs (tests/project/urls.py) reuse them.
test_urlpatterns = [
    path("test/ticks/", views.ticks, name="test-ticks"),
    path("test/groups/stream/", views.GroupsStream.as_view(), name="test-groups-stream"),
    path("test/groups/private/", views.PrivateGroupsStream.as_view(), name="test-private-stream"),
    path("test/groups/clock/", views.ClockStream.as_view(), name="test-clock-stream"),
    path("test/groups/add/", views.AddGroup.as_view(), name="test-add-group"),
    path("test/groups/add-later/", views.AddGroupLater.as_view(), name="test-add-group-later"),
    path("test/groups/add-private/", views.add_private_group, name="test-add-private"),
    path("test/rooms/<slug:room>/", views.RoomStream.as_view(), name="test-room-stream"),
    path("test/rooms/<slug:room>/state/", views.RoomState.as_view(), name="test-room-state"),
]

urlpatterns = [
    path("hooks/staff/", StaffGroupsStream.as_view()),
    path("hooks/permission/", PermissionGroupsStream.as_view()),
    path("hooks/flaky/", FlakyStream.as_view()),
    path("hooks/group/<int:pk>/", OneGroupStream.as_view()),
    path("hooks/prefix/", PrefixStream.as_view()),
    path("hooks/denied/", DeniedStream.as_view()),
    path("hooks/unshared/", UnsharedStream.as_view()),
    path("hooks/thread/", ThreadStream.as_view()),
    path("hooks/slow/", SlowStream.as_view()),
    path("hooks/thread-command/", ThreadCommand.as_view()),
    *test_urlpatterns,
    path("admin/", admin.site.urls),
    path("metrics", metrics_view),
]
