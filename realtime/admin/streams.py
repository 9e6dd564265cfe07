"""The streams behind a live admin: the changelist's rows, and who else is on a change form.

Both are :class:`~realtime.StreamView` subclasses bound to one ``ModelAdmin``, routed by
:meth:`LiveModelAdmin.get_urls <realtime.admin.LiveModelAdmin.get_urls>`. Access is the admin's
own: an active staff member (``AdminSite.has_permission``) with the view or change permission
(``has_view_or_change_permission``), checked when the stream opens and again whenever the user,
their groups or permissions change, as for any stream.
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, cast

from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.templatetags.admin_list import search_form
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string

from realtime.admin.versions import Values, changes, edited_fields, snapshot, version_hash
from realtime.conf import get_config
from realtime.presence import Member, presence_topic, present
from realtime.streams import StreamView

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin
    from django.contrib.admin.views.main import ChangeList


class LiveOptions(Protocol):
    """What the streams read of a :class:`~realtime.admin.LiveModelAdmin` beyond ``ModelAdmin``."""

    live_topics: Sequence[str]

    def live_render_key(self, request: HttpRequest, params: list[tuple[str, str]]) -> Hashable:
        """See :meth:`realtime.admin.LiveModelAdmin.live_render_key`."""


#: The query parameters a stream's request adds to the page's (Datastar's signals).
_STREAM_PARAMS = ("datastar",)
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,64}")


def model_topic(model: type[models.Model]) -> str:
    """``admin.<app_label>.<model_name>``: every object topic of ``model`` starts with it."""
    return f"admin.{model._meta.app_label}.{model._meta.model_name}"


def object_topic(model: type[models.Model], pk: Any) -> str:
    """The topic published when one object of ``model`` is saved or deleted."""
    key = str(pk)
    if not _SEGMENT.fullmatch(key):
        key = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"{model_topic(model)}.{key}"


def row_id(model: type[models.Model], pk: Any) -> str:
    """The DOM id of an object's action checkbox: it keeps ticked rows with their objects when a
    render morphs the list (Datastar matches elements by the ids inside them)."""
    return "realtime-row-" + object_topic(model, pk).replace(".", "-")


class _Bases:
    """The values of versions this process has seen, by (object topic, digest): what a change
    form was opened from, for every stream (and reconnect) of that version. Bounded."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._values: OrderedDict[tuple[str, str], Values] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, key: tuple[str, str], values: Values) -> None:
        with self._lock:
            self._values[key] = values
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)

    def get(self, key: tuple[str, str]) -> Values | None:
        with self._lock:
            return self._values.get(key)


_bases = _Bases()


class _AdminStream(StreamView):
    model_admin: ModelAdmin[Any]

    def has_permission(self) -> bool:
        return self.model_admin.admin_site.has_permission(
            self.request
        ) and self.model_admin.has_view_or_change_permission(self.request, self.get_object())

    def get_object(self) -> models.Model | None:
        return None

    def page_params(self) -> list[tuple[str, str]]:
        """The page's own query parameters, without the ones the stream adds."""
        hidden = {*_STREAM_PARAMS, get_config().TAB_SIGNAL}
        return sorted((k, str(v)) for k, v in self.request.GET.items() if k not in hidden)


class ChangeListStream(_AdminStream):
    """The rows, the paginator and the search bar's count of one changelist page, as the page's
    query asks for them (filters, search, ordering, page). Staff with the same query and the same
    rights on the model share one render."""

    template_name = "realtime/admin/live_change_list.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not self._rechecking:
            try:
                self.changelist()
            except IncorrectLookupParameters:
                return HttpResponseBadRequest(
                    "The changelist's filters are not valid.", content_type="text/plain"
                )
        return super().get(request, *args, **kwargs)

    def get_topics(self) -> list[str]:
        options = cast(LiveOptions, self.model_admin)
        return [f"{model_topic(self.model_admin.model)}.*", *options.live_topics]

    def changelist(self) -> ChangeList:
        """The admin's ``ChangeList`` for the page's query (read afresh on every call)."""
        request = copy.copy(self.request)
        query = request.GET.copy()
        for name in (*_STREAM_PARAMS, get_config().TAB_SIGNAL):
            query.pop(name, None)
        request.GET = query  # type: ignore[assignment]
        admin = self.model_admin
        changelist = admin.get_changelist_instance(request)
        changelist.formset = None
        if changelist.list_editable and admin.has_change_permission(request):
            formset = admin.get_changelist_formset(request)
            changelist.formset = formset(queryset=changelist.result_list)
        return changelist

    def get_render_key(self) -> Hashable | None:
        """The query and the rights that shape the list: everyone alike shares a render. A
        ``ModelAdmin`` whose rows depend on who asks beyond that (its own ``get_queryset``)
        renders per user, unless it says otherwise (:meth:`LiveModelAdmin.live_render_key`)."""
        return cast(LiveOptions, self.model_admin).live_render_key(self.request, self.page_params())

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        changelist = self.changelist()
        return super().get_context_data(
            cl=changelist,
            opts=self.model_admin.model._meta,
            # The search bar's count (the stock search_form tag's context), when it has one.
            realtime_search=search_form(changelist) if changelist.search_fields else None,
            **kwargs,
        )

    def render_stream(self) -> bytes:
        context = self.get_context_data()
        rows = render_to_string(self.template_name, context, request=self.request)
        footer = render_to_string(
            "realtime/admin/live_change_list_pagination.html", context, request=self.request
        )
        events = [
            self.format.patch(rows),
            self.format.patch(footer, selector="#changelist .paginator", mode="outer"),
        ]
        return "".join(events).encode()


class ChangeFormStream(_AdminStream):
    """Who else has this object's change form open, and what changed since this one opened.

    The page's URL carries ``v``, the digest of the version its form was rendered from
    (:func:`~realtime.admin.versions.version_hash`). A render that finds the row at that digest
    remembers its values (per process), and every later render lists the fields that differ from
    them. (A change in the instant between the page's render and its stream's first render is
    reported without the old values; the save is refused with them all the same.)
    """

    template_name = "realtime/admin/live_change_form.html"
    presence_state = "editing"

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self._base_hash = str(request.GET.get("v", ""))[:64]

    def get_object(self) -> models.Model | None:
        """The object, or 404 (like the change view) when it is gone or out of reach."""
        obj: models.Model | None = self.model_admin.get_object(
            self.request, unquote(self.kwargs["object_id"])
        )
        if obj is None:
            raise Http404
        return obj

    def get_topics(self) -> list[str]:
        topic = self.object_topic()
        return [topic, presence_topic(topic)]

    def get_presence_topics(self) -> list[str]:
        return [self.object_topic()]

    def get_presence(self) -> Member | None:
        member = super().get_presence()
        if member is not None and not self.model_admin.has_change_permission(
            self.request, self.get_object()
        ):
            return Member(member.user_id, member.name, "viewing")
        return member

    def object_topic(self) -> str:
        return object_topic(self.model_admin.model, unquote(self.kwargs["object_id"]))

    def get_render_key(self) -> Hashable | None:
        # Per user (the list of others leaves the viewer out) and per opened version.
        return (super().get_render_key(), self._base_hash)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        admin = self.model_admin
        user_id = str(getattr(self.request.user, "pk", ""))
        here = present(self.object_topic())
        context = super().get_context_data(
            opts=admin.model._meta,
            others=[p for p in here if p.user_id != user_id],
            my_tabs=sum(p.tabs for p in here if p.user_id == user_id),
            **kwargs,
        )
        obj = admin.get_object(self.request, unquote(self.kwargs["object_id"]))
        if obj is None:
            return {**context, "deleted": True}
        fields = self.edited_fields(obj)
        current = snapshot(obj, fields)
        key = (self.object_topic(), self._base_hash)
        if version_hash(current) == self._base_hash:
            _bases.remember(key, current)
        base = _bases.get(key)
        if base is not None:
            context["changes"] = changes(admin.model, fields, base, current)
        else:
            context["changed_unknown"] = True
        return context

    def edited_fields(self, obj: models.Model) -> list[models.Field[Any, Any]]:
        """The fields this user's change form edits (as in the admin's change view)."""
        admin, request = self.model_admin, self.request
        fieldsets = admin.get_fieldsets(request, obj)
        form = admin.get_form(request, obj, change=True, fields=flatten_fieldsets(fieldsets))
        return edited_fields(admin.model, form.base_fields)
