"""A live Django admin: changelists that update, who is editing, and no silent overwrites.

Opt in per model by subclassing :class:`LiveModelAdmin` instead of ``ModelAdmin``::

    from realtime.admin import LiveModelAdmin

    @admin.register(Ticket)
    class TicketAdmin(LiveModelAdmin):
        list_display = ("subject", "status")

- **The changelist is live.** Rows created, changed or deleted anywhere (the admin, a command, the
  shell, another process) appear, change or leave without a reload, with the page's filters,
  search, ordering and page kept, and the ticked rows and picked action untouched.
- **The change form shows who else has it open** ("Ann is editing this"), through
  :mod:`realtime.presence`, and **what changed since it was opened**, field by field.
- **A stale save is refused** (the stale-edit guard, :mod:`realtime.admin.guard`): the server
  compares the version the form was opened from with the row, locked, in the save's transaction,
  and refuses with the difference; the person reloads, or saves again on purpose. It does not
  depend on JavaScript.

Everything else is the stock admin: its templates are extended, not copied; actions, inlines,
permissions and ``ModelAdmin`` hooks work as before. ``ModelAdmin`` classes that don't opt in are
untouched.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest, HttpResponse
from django.template.loader import select_template
from django.urls import URLPattern, path, reverse
from django.utils import translation
from django.utils.safestring import SafeString

from realtime.admin.guard import GUARD_FIELDS, VERSION_FIELD, guarded_form
from realtime.admin.streams import ChangeFormStream, ChangeListStream, object_topic, row_id
from realtime.admin.versions import (
    BadVersion,
    edited_fields,
    make_token,
    read_token,
    snapshot,
    version_hash,
)
from realtime.broadcasting import connect_publisher

__all__ = ["LiveModelAdmin", "object_topic"]

_Stream = TypeVar("_Stream", ChangeListStream, ChangeFormStream)


class LiveModelAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A ``ModelAdmin`` whose changelist and change form are live (see the module docstring).

    The object topics (:func:`object_topic`, ``admin.<app>.<model>.<pk>``) are published on every
    save and delete of the model (and changes of its many-to-many fields), from any process.
    """

    change_list_template = "realtime/admin/change_list.html"
    change_form_template = "realtime/admin/change_form.html"

    #: More topics that re-render the changelist, for columns that show other models' data (a
    #: customer's name on a ticket row): e.g. ``["customers.*"]``, published by those models.
    live_topics: Sequence[str] = ()
    #: Share changelist renders between users with the same query and rights even though this
    #: ``ModelAdmin`` overrides ``get_queryset`` (when its rows do not depend on the user).
    live_shared_renders: bool = False
    #: Turn off one half: the live changelist, or the change form's presence and guard.
    live_changelist: bool = True
    live_change_form: bool = True

    def __init__(self, model: type[models.Model], admin_site: admin.AdminSite) -> None:
        super().__init__(model, admin_site)
        connect_publisher(
            model,
            lambda instance: [object_topic(model, instance.pk)],
            uid=f"realtime.admin.{model._meta.label}",
        )

    # URLs ----------------------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        """The admin's URLs, and before them the two streams (``live/`` for the changelist,
        ``<object_id>/live/`` for a change form)."""
        info = self.opts.app_label, self.opts.model_name
        streams = [
            path(
                "live/",
                self._stream(ChangeListStream).as_view(),
                name="{}_{}_live".format(*info),
            ),
            path(
                "<path:object_id>/live/",
                self._stream(ChangeFormStream).as_view(),
                name="{}_{}_live_change".format(*info),
            ),
        ]
        return [*streams, *super().get_urls()]

    def _stream(self, base: type[_Stream]) -> type[_Stream]:
        """``base`` bound to this ``ModelAdmin``, named after the model (``TicketChangeListStream``
        in metrics and logs)."""
        name = self.model.__name__ + base.__name__
        metaclass: Any = type(base)
        bound: type[_Stream] = metaclass(
            name, (base,), {"model_admin": self, "__module__": base.__module__}
        )
        return bound

    def _live_url(self, name: str, *args: Any) -> str:
        info = self.admin_site.name, self.opts.app_label, self.opts.model_name
        return reverse("{}:{}_{}_".format(*info) + name, args=args)

    # Views ---------------------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        context: dict[str, Any] = {"realtime_base_template": self._base_template("change_list")}
        if self.live_changelist:
            query = request.GET.urlencode()
            url = self._live_url("live")
            context["realtime_stream_url"] = f"{url}?{query}" if query else url
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        context = {"realtime_base_template": self._base_template("change_form")}
        return super().changeform_view(
            request, object_id, form_url, {**context, **(extra_context or {})}
        )

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: models.Model | None = None,
    ) -> Any:
        if change and obj is not None and self.live_change_form:
            context.update(self._version_context(context["adminform"].form, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _version_context(self, form: forms.ModelForm[Any], obj: models.Model) -> dict[str, Any]:
        """The version the form edits (its token, and its digest for the stream) and, after a
        refused save, why."""
        if form.is_bound:
            # The form comes back with errors: it still edits the version it was opened from.
            token = form.data.get(VERSION_FIELD, "")
            try:
                digest = version_hash(read_token(token, obj))
            except BadVersion:
                digest = ""
            stale = getattr(form, "realtime_stale", None)
            if stale is not None:
                # The refusal lists the changes and offers to overwrite the version it shows: from
                # now on the live notice reports changes made after that version, not before it.
                digest = stale.current_hash
        else:
            values = snapshot(obj, edited_fields(type(obj), form.fields))
            token, digest, stale = make_token(obj, values), version_hash(values), None
        url = self._live_url("live_change", obj.pk)
        return {
            "realtime_version": token,
            "realtime_stale": stale,
            "realtime_stream_url": f"{url}?v={digest}",
        }

    def get_form(
        self,
        request: HttpRequest,
        obj: models.Model | None = None,
        change: bool = False,
        **kwargs: Any,
    ) -> type[forms.ModelForm[Any]]:
        """The admin's form, with the stale-edit guard on change forms."""
        form: type[forms.ModelForm[Any]] = super().get_form(request, obj, change, **kwargs)
        # ``fields`` is None when the admin only asks which fields exist (get_fields): the guard's
        # own fields must not land in the fieldsets.
        if (
            change
            and obj is not None
            and self.live_change_form
            and kwargs.get("fields")
            and not any(name in form.base_fields for name in GUARD_FIELDS)
        ):
            form = guarded_form(form)
        return form

    # Hooks ---------------------------------------------------------------------------------

    def live_render_key(self, request: HttpRequest, params: list[tuple[str, str]]) -> Hashable:
        """What a changelist render depends on: streams with equal keys share one render.

        By default the page's query (``params``), the user's view/change/delete/add rights and
        actions on the model, and the language; plus the user when this ``ModelAdmin`` overrides
        ``get_queryset`` (its rows may depend on who asks) unless :attr:`live_shared_renders`.
        Override it when the list depends on anything else about the user.
        """
        rights = (
            self.has_view_permission(request),
            self.has_change_permission(request),
            self.has_delete_permission(request),
            self.has_add_permission(request),
        )
        per_user = (
            type(self).get_queryset is not admin.ModelAdmin.get_queryset
            and not self.live_shared_renders
        )
        return (
            type(self).__module__,
            type(self).__qualname__,
            json.dumps(params),
            rights,
            tuple(sorted(self.get_actions(request))),
            getattr(request.user, "pk", None) if per_user else None,
            translation.get_language(),
        )

    def action_checkbox(self, obj: models.Model) -> SafeString:
        """The stock action checkbox, with an id that keeps a ticked row ticked across renders."""
        checkbox = str(super().action_checkbox(obj))
        # row_id() is letters, digits, "-" and "_": nothing to escape.
        return SafeString(
            checkbox.replace("<input ", f'<input id="{row_id(self.model, obj.pk)}" ', 1)
        )

    def _base_template(self, name: str) -> Any:
        """The template the stock admin would use for this model's ``name`` page (a project's
        ``admin/<app>/<model>/<name>.html`` override included), for the live one to extend."""
        app_label, model_name = self.opts.app_label, self.opts.model_name
        return select_template(
            [
                f"admin/{app_label}/{model_name}/{name}.html",
                f"admin/{app_label}/{name}.html",
                f"admin/{name}.html",
            ]
        )
