"""``StreamView``: one long-lived Server-Sent-Events response per browser tab.

Contract: on connect the stream subscribes to its topics, then sends the full state at once
(rendered from the database, never from a notification). Each time a watched topic is published it
renders again, at most once per wake however many notifications arrived (latest state wins); when
asked it also renders every ``refresh_interval`` seconds. Between events it sends an SSE comment
every ``HEARTBEAT`` seconds. It ends when the client goes away (its subscription is removed in a
``finally``), when the server shuts down (so the server can exit; the Datastar client reconnects),
or when the client leaves an event unread longer than ``STALL_TIMEOUT``.

Authorization happens before the stream starts: ``dispatch`` is ordinary synchronous Django, so
``LoginRequiredMixin``, ``PermissionRequiredMixin``, ``UserPassesTestMixin`` and a
``has_permission()`` hook work as on any view, and a refused request gets its 403 or redirect and
nothing else. It is re-checked while the stream is open (:mod:`realtime.access`): a logout ends
the session's streams; a change to the user re-runs the same ``dispatch`` rules with the user
loaded afresh (:meth:`StreamView.recheck_access`); so does reaching ``MAX_STREAM_AGE``, after
which the stream ends and its client reconnects. A refused stream's last event reloads the page.
A client holds at most ``MAX_STREAMS_PER_CLIENT`` streams (:mod:`realtime.limits`).

Rendering runs on the render pool (:mod:`realtime.rendering`), shared among streams whose
:meth:`StreamView.get_render_key` is equal.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from functools import partial, wraps
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.views import View

from realtime.access import control_topics, reload_user
from realtime.conf import get_config
from realtime.counters import counters
from realtime.encoding import GzipStream, accepts_gzip
from realtime.formats import StreamFormat, choose_format
from realtime.limits import StreamSlot, TooManyStreams, take_slot
from realtime.notices import CommandNotice
from realtime.presence import Member, hub_tracker
from realtime.relay.hub import Hub
from realtime.relay.topics import validate_topic
from realtime.request_data import BadSignals, parse_signals
from realtime.sending import send_pieces
from realtime.stream_loop import StreamLoop, StreamSpec
from realtime.tabs import pop_tab, tab_topic

logger = logging.getLogger("realtime")

#: Milliseconds a client waits before reopening a stream that could not open (SSE ``retry``).
UNAVAILABLE_RETRY_MS = 10_000


class StreamView(View):
    """An async SSE stream that re-renders templates whenever its topics are published.

    Subclass it, set :attr:`topics` and :attr:`template_name` (or override the hooks), and route it
    like any view. Pages open it with ``{% realtime_page url %}``.
    """

    http_method_names: ClassVar[list[str]] = ["get"]  # type: ignore[misc]

    #: Topics to watch; ``{name}`` placeholders are filled from the URL kwargs.
    topics: Sequence[str] = ()
    #: Template rendered with :meth:`get_context_data` and sent as a ``datastar-patch-elements``.
    template_name: str | None = None
    #: Rows to render, as Django's ``ListView`` has them: re-run for every render and put in the
    #: context as ``object_list`` and ``<model>_list``; ``template_name`` then defaults to
    #: ``<app_label>/<model>_list.html``.
    queryset: QuerySet[Any] | None = None
    #: CSS selector the patch targets; ``None`` morphs elements by their ``id`` (fat morph).
    selector: str | None = None
    #: Datastar patch mode (``outer``, ``inner``, ``append``, ...); ``None`` is Datastar's default.
    mode: str | None = None
    #: Also re-render every N seconds (clocks, "5 minutes ago"); ``None`` for never.
    refresh_interval: float | None = None
    #: The signals this stream renders from (e.g. ``["filter", "page"]``). The others a page
    #: sends are dropped: they never reach the view, nor split its shared renders.
    signal_names: Sequence[str] = ()
    #: Topics this stream is *present* on while it is open (:mod:`realtime.presence`: who is
    #: here); ``{name}`` placeholders are filled from the URL kwargs. Streams that show presence
    #: watch ``presence.<topic>``.
    presence_topics: Sequence[str] = ()
    #: The stream's resting presence state (a command may change it for a while).
    presence_state: str = "viewing"

    #: The signals of :attr:`signal_names` sent with the request.
    signals: dict[str, Any]
    #: This tab's private id, when the page sent one.
    tab: str | None
    format: StreamFormat

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.format = choose_format(request)
        self.signals, self.tab = {}, None
        self._rechecking = False

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable[..., HttpResponseBase]:
        """The view function; when the database fails while the stream opens (authorization
        reads the session and the user, in the access mixins before this class's own code), it
        answers an empty event stream that asks the client to come back in
        :data:`UNAVAILABLE_RETRY_MS` instead of a 500: Datastar 1.0.1 retries a 5xx every
        second without limit, and an ``EventSource`` would give up for good."""
        view = super().as_view(**initkwargs)

        @wraps(view)
        def open_stream(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            try:
                response: HttpResponseBase = view(request, *args, **kwargs)
            except DatabaseError:
                logger.exception(
                    "realtime: %s could not open (database error); the client retries in %d s",
                    cls.__name__,
                    UNAVAILABLE_RETRY_MS // 1000,
                )
                return HttpResponse(
                    f"retry: {UNAVAILABLE_RETRY_MS}\n\n",
                    content_type="text/event-stream",
                    headers={"Cache-Control": "no-store"},
                )
            return response

        open_stream.opens_stream = True  # type: ignore[attr-defined]
        return open_stream

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if self._rechecking:
            # recheck_access() re-running dispatch: every rule before this point passed.
            if not self.has_permission():
                raise PermissionDenied
            return _ACCESS_GRANTED
        if not isinstance(request, ASGIRequest):
            raise ImproperlyConfigured(
                f"{type(self).__name__} streams Server-Sent Events, which needs an ASGI server: "
                "serve the project with uvicorn (or `manage.py runserver` with 'realtime' installed), "
                "not WSGI."
            )
        try:
            signals = self.read_signals()
        except BadSignals as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain")
        self.tab = pop_tab(request, signals)
        self.signals = {name: signals[name] for name in self.signal_names if name in signals}
        if self.get_template_name() is None and type(self).render_html is StreamView.render_html:
            # Fail before streaming: a render that can never succeed would be retried forever.
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs a template_name or a render_html()."
            )
        if not self.has_permission():
            raise PermissionDenied
        topics = [validate_topic(topic, pattern=True) for topic in self.get_topics()]
        presence_topics = [validate_topic(topic) for topic in self.get_presence_topics()]
        member = self.get_presence() if presence_topics else None
        notice_topics = [tab_topic(self.tab)] if self.tab else []
        key = self.get_render_key()
        if key is not None:
            key = (self.format.name, key)  # the shared bytes are in this stream's wire format
        config = get_config()
        self._session_topic, controls = control_topics(request)
        spec = StreamSpec(
            name=type(self).__name__,
            topics=topics,
            notice_topics=notice_topics,
            key=key,
            render=self.render_stream,
            render_notice=self.render_notice,
            refresh_interval=self.refresh_interval,
            control_topics=controls,
            recheck=self._recheck,
            max_age=_spread(config.MAX_STREAM_AGE, self._session_seconds_left()),
            start=partial(self._present, presence_topics, member) if member is not None else None,
        )
        try:
            slot = take_slot(request)
        except TooManyStreams as exc:
            return HttpResponse(
                str(exc), status=429, content_type="text/plain", headers={"Retry-After": "30"}
            )
        compression = config.STREAM_COMPRESSION
        gzip = compression == "gzip" and accepts_gzip(request)
        # Made here, run on the event loop: the loop's pieces, encoded and sent (the stream's
        # slot is given back when the response closes).
        body = send_pieces(
            StreamLoop(spec, heartbeat=config.HEARTBEAT).pieces(),
            encoder=GzipStream() if gzip else None,
            stall_timeout=config.STALL_TIMEOUT,
            scope=getattr(request, "scope", None),
            view=counters.view(spec.name),
        )
        response = _StreamResponse(
            slot,
            body,
            content_type="text/event-stream",
            # no-store: a stream carries one user's private data, which no cache may keep.
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        if gzip:
            response.headers["Content-Encoding"] = "gzip"
            patch_vary_headers(response, ("Accept-Encoding",))
        elif compression != "middleware":
            # Tells compression middleware to leave the stream alone (see realtime.encoding).
            response.headers["Content-Encoding"] = "identity"
        return response

    def _present(self, topics: list[str], member: Member, hub: Hub) -> Callable[[], None]:
        """Join ``topics`` as ``member`` (on the event loop, as the stream starts); returns the
        leave."""
        tracker = hub_tracker(hub)
        return partial(tracker.leave, tracker.join(topics, member, self.tab))

    def _session_seconds_left(self) -> float | None:
        session = getattr(self.request, "session", None)
        if session is None or not getattr(session, "session_key", None):
            return None
        return max(0.0, float(session.get_expiry_age()))

    def _recheck(self, controls: set[str]) -> bytes | None:
        """The stream loop's re-check: ``None`` while access holds, else the reload event."""
        if self._session_topic in controls or not self.recheck_access():
            html = render_to_string(self.format.reload_template, request=self.request)
            return self.format.reload(html).encode()
        return None

    def recheck_access(self) -> bool:
        """Whether this stream's request would be accepted now. Runs on a worker thread.

        Reloads the request's session and user from the database, then runs the view's own
        ``dispatch`` again (so every mixin's rules and :meth:`has_permission` apply) up to the
        point where it would start streaming. Called when the user, its groups or permissions
        change, and when the stream reaches ``MAX_STREAM_AGE``; a refused stream ends. When the
        view's rules read other rows (the team a ticket belongs to), publish the affected user's
        topic (:func:`realtime.access.user_topic`) in the transaction that changes those rows.
        """
        reload_user(self.request)
        self._rechecking = True
        try:
            response = self.dispatch(self.request, *self.args, **self.kwargs)
        except (PermissionDenied, Http404):
            return False
        finally:
            self._rechecking = False
        return response is _ACCESS_GRANTED

    def read_signals(self) -> dict[str, Any]:
        """The request's signals: Datastar's ``datastar`` query parameter (bounded, see
        :func:`realtime.request_data.parse_signals`), or the plain query string's parameters
        for an htmx ``EventSource``. Raises :class:`~realtime.request_data.BadSignals` (400)."""
        config = get_config()
        if not self.format.reads_signals:
            raw = self.request.META.get("QUERY_STRING", "")
            if len(raw.encode()) > config.MAX_STREAM_SIGNALS_BYTES:
                raise BadSignals(
                    f"The stream's query string is longer than {config.MAX_STREAM_SIGNALS_BYTES} bytes."
                )
            return dict(self.request.GET.items())
        return parse_signals(
            self.request.GET.get("datastar", ""),
            what="The stream's signals",
            max_bytes=config.MAX_STREAM_SIGNALS_BYTES,
            max_depth=config.MAX_SIGNALS_DEPTH,
        )

    # Hooks ---------------------------------------------------------------------------------

    def has_permission(self) -> bool:
        """Return ``False`` to refuse the stream with 403 (runs before anything is streamed)."""
        return True

    def get_topics(self) -> list[str]:
        """The topics to watch: :attr:`topics` with URL kwargs filled in."""
        return [topic.format(**self.kwargs) for topic in self.topics]

    def get_presence_topics(self) -> list[str]:
        """The topics this stream is present on: :attr:`presence_topics` with URL kwargs filled
        in. Override to choose them from the request (e.g. the ticket a tab's signals select)."""
        return [topic.format(**self.kwargs) for topic in self.presence_topics]

    def get_presence(self) -> Member | None:
        """Who this stream is on its presence topics, or ``None`` to be present nowhere.

        By default the signed-in user (its primary key, full name or else username) in
        :attr:`presence_state`; anonymous visitors are never present. Runs before streaming.
        """
        user = getattr(self.request, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        name = user.get_full_name() if hasattr(user, "get_full_name") else ""
        return Member(str(user.pk), name or user.get_username(), self.presence_state)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The template context. Runs on a worker thread: the ORM may be used freely."""
        context = {"view": self, **kwargs}
        if self.queryset is not None:
            rows = self.queryset.all()  # a fresh QuerySet: the class attribute's would cache rows
            context.setdefault("object_list", rows)
            context.setdefault(f"{rows.model._meta.model_name}_list", rows)
        return context

    def get_template_name(self) -> str | None:
        """:attr:`template_name`, else ``<app_label>/<model>_list.html`` for a :attr:`queryset`."""
        if self.template_name is None and self.queryset is not None:
            meta = self.queryset.model._meta
            return f"{meta.app_label}/{meta.model_name}_list.html"
        return self.template_name

    def get_render_key(self) -> Hashable | None:
        """Everything the rendered bytes depend on; streams with equal keys share one render.

        The default holds the view class, URL args and kwargs, the signals of
        :attr:`signal_names`, the user (by id) and
        the language. Override to share more widely (e.g. one key for every staff member) or
        return ``None`` to render for each stream alone.
        """
        user = getattr(self.request, "user", None)
        user_key = (getattr(user, "pk", None), bool(getattr(user, "is_authenticated", False)))
        return (
            type(self).__module__,
            type(self).__qualname__,
            tuple(self.args),
            tuple(sorted((k, str(v)) for k, v in self.kwargs.items())),
            json.dumps(self.signals, sort_keys=True, default=str),
            user_key,
            translation.get_language(),
        )

    def get_signals(self, context: dict[str, Any]) -> dict[str, Any] | None:
        """Signals to patch with every render (``datastar-patch-signals``), or ``None``."""
        return None

    def render_html(self, context: dict[str, Any]) -> str:
        """The HTML of one render (by default, :meth:`get_template_name` with ``context``)."""
        template_name = self.get_template_name()
        if template_name is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs a template_name or a render_html()."
            )
        return render_to_string(template_name, context, request=self.request)

    def render_stream(self) -> bytes:
        """One complete render as SSE bytes. Runs on a worker thread."""
        context = self.get_context_data()
        events = [
            self.format.patch(self.render_html(context), selector=self.selector, mode=self.mode)
        ]
        signals = self.get_signals(context)
        if signals:
            events.append(self.format.patch_signals(signals))
        return "".join(events).encode()

    def render_notice(self, payload: Any) -> bytes:
        """Events for a private notice sent to this tab: by default, a
        :class:`~realtime.notices.CommandNotice` (a command's errors) as field errors and a
        toast; other payloads send nothing. Runs on a worker thread."""
        notice = CommandNotice.from_payload(payload)
        if notice is None:
            return b""
        events = [self.format.field_errors(notice.field_messages())] if notice.fields else []
        if notice.toast:
            context = {"message": notice.toast, "level": "error"}
            events.append(self.format.toast(render_to_string(self.format.toast_template, context)))
        return "".join(events).encode()


#: What ``get()`` answers while :meth:`StreamView.recheck_access` re-runs ``dispatch``.
_ACCESS_GRANTED = HttpResponse(status=204)


_DJANGO_CONTENT: property = StreamingHttpResponse.streaming_content  # type: ignore[assignment]


class _StreamResponse(StreamingHttpResponse):
    """A stream's response; gives its slot back when closed, even if it never streamed.

    Its ``streaming_content`` is the stream's own generator while no middleware has replaced it:
    its pieces are bytes already, so Django's per-part conversion (one more generator for each
    open stream) is skipped.
    """

    def __init__(
        self, slot: StreamSlot, body: AsyncIterator[bytes], *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(body, *args, **kwargs)
        self._slot = slot
        self._own: AsyncIterator[bytes] | None = body

    @property
    def streaming_content(self) -> Any:
        own = getattr(self, "_own", None)
        return own if own is not None else _DJANGO_CONTENT.fget(self)  # type: ignore[misc]

    @streaming_content.setter
    def streaming_content(self, value: Any) -> None:
        _DJANGO_CONTENT.fset(self, value)  # type: ignore[misc]
        self._own = None  # replaced (by a middleware): Django's conversion applies

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._slot.release()


def _spread(max_age: float, session_left: float | None) -> float | None:
    """A stream's age limit: ``MAX_STREAM_AGE`` less up to a tenth (so streams opened together
    end apart), and never past its session's expiry."""
    ages = [
        age
        for age in (max_age * (1 - random.random() / 10) if max_age else None, session_left)
        if age is not None
    ]
    return min(ages) if ages else None
