"""The test project's URLs plus streams that exercise StreamView's hooks (tests/realtime only)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from django.contrib.auth.mixins import PermissionRequiredMixin, UserPassesTestMixin
from django.contrib.auth.models import Group
from django.urls import path

from realtime import StreamView
from tests.project.urls import urlpatterns as project_urlpatterns
from tests.project.views import GroupsStream


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
    template_name = "test_project/groups.html"
    selector = "#groups"
    mode = "inner"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        groups = list(Group.objects.filter(pk=self.kwargs["pk"]))
        return super().get_context_data(groups=groups, **kwargs)

    def get_signals(self, context: dict[str, Any]) -> dict[str, Any] | None:
        return {"found": len(context["groups"])}


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


urlpatterns = [
    path("hooks/staff/", StaffGroupsStream.as_view()),
    path("hooks/permission/", PermissionGroupsStream.as_view()),
    path("hooks/flaky/", FlakyStream.as_view()),
    path("hooks/group/<int:pk>/", OneGroupStream.as_view()),
    path("hooks/prefix/", PrefixStream.as_view()),
    path("hooks/denied/", DeniedStream.as_view()),
    path("hooks/unshared/", UnsharedStream.as_view()),
    *project_urlpatterns,
]
