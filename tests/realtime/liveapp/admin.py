"""``Note`` in the admin, live (realtime.admin.LiveModelAdmin)."""

from __future__ import annotations

from django.contrib import admin

from realtime.admin import LiveModelAdmin
from tests.realtime.liveapp.models import Comment, Note


class CommentInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Comment
    extra = 0


@admin.register(Note)
class NoteAdmin(LiveModelAdmin):
    inlines = (CommentInline,)
    list_display = ("title", "status", "pinned", "owner")
    list_filter = ("status",)
    search_fields = ("title",)
    list_per_page = 5
    readonly_fields = ("updated_at",)
