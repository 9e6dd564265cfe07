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
nothing else.

Rendering runs on the render pool (:mod:`realtime.rendering`), shared among streams whose
:meth:`StreamView.get_render_key` is equal.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponseBadRequest, StreamingHttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.views import View

from realtime.conf import get_config
from realtime.encoding import GzipStream, accepts_gzip, shared_blocks
from realtime.formats import StreamFormat, choose_format
from realtime.notices import CommandNotice
from realtime.relay.registry import get_hub
from realtime.relay.topics import validate_topic
from realtime.request_data import BadSignals, parse_signals
from realtime.sending import send_pieces
from realtime.stream_loop import StreamLoop, StreamSpec
from realtime.tabs import pop_tab, tab_topic


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
    #: CSS selector the patch targets; ``None`` morphs elements by their ``id`` (fat morph).
    selector: str | None = None
    #: Datastar patch mode (``outer``, ``inner``, ``append``, ...); ``None`` is Datastar's default.
    mode: str | None = None
    #: Also re-render every N seconds (clocks, "5 minutes ago"); ``None`` for never.
    refresh_interval: float | None = None

    #: The Datastar signals sent with the request (minus the tab id).
    signals: dict[str, Any]
    #: This tab's private id, when the page sent one.
    tab: str | None
    format: StreamFormat

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        super().setup(request, *args, **kwargs)
        self.format = choose_format(request)
        self.signals, self.tab = {}, None

    def get(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> StreamingHttpResponse | HttpResponseBadRequest:
        if not isinstance(request, ASGIRequest):
            raise ImproperlyConfigured(
                f"{type(self).__name__} streams Server-Sent Events, which needs an ASGI server: "
                "serve the project with uvicorn (or `manage.py runserver` with 'realtime' installed), "
                "not WSGI."
            )
        try:
            self.signals = self.read_signals()
        except BadSignals as exc:
            return HttpResponseBadRequest(str(exc), content_type="text/plain")
        self.tab = pop_tab(self.signals)
        if self.template_name is None and type(self).render_html is StreamView.render_html:
            # Fail before streaming: a render that can never succeed would be retried forever.
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs a template_name or a render_html()."
            )
        if not self.has_permission():
            raise PermissionDenied
        topics = [validate_topic(topic, pattern=True) for topic in self.get_topics()]
        notice_topics = [tab_topic(self.tab)] if self.tab else []
        key = self.get_render_key()
        if key is not None:
            key = (self.format.name, key)  # the shared bytes are in this stream's wire format
        config = get_config()
        spec = StreamSpec(
            name=type(self).__name__,
            topics=topics,
            notice_topics=notice_topics,
            key=key,
            render=self.render_stream,
            render_notice=self.render_notice,
            refresh_interval=self.refresh_interval,
        )
        compression = config.STREAM_COMPRESSION
        gzip = compression == "gzip" and accepts_gzip(request)
        response = StreamingHttpResponse(
            self._body(spec, gzip=gzip),
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        if gzip:
            response.headers["Content-Encoding"] = "gzip"
            patch_vary_headers(response, ("Accept-Encoding",))
        elif compression != "middleware":
            # Tells compression middleware to leave the stream alone (see realtime.encoding).
            response.headers["Content-Encoding"] = "identity"
        return response

    async def _body(self, spec: StreamSpec, *, gzip: bool) -> AsyncIterator[bytes]:
        hub = get_hub()
        pieces = StreamLoop(hub, spec, heartbeat=get_config().HEARTBEAT).pieces()
        encoder = GzipStream(shared_blocks(hub)) if gzip else None
        async for chunk in send_pieces(
            pieces,
            encoder=encoder,
            stall_timeout=get_config().STALL_TIMEOUT,
            scope=getattr(self.request, "scope", None),
        ):
            yield chunk

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

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """The template context. Runs on a worker thread: the ORM may be used freely."""
        return {"view": self, **kwargs}

    def get_render_key(self) -> Hashable | None:
        """Everything the rendered bytes depend on; streams with equal keys share one render.

        The default holds the view class, URL args and kwargs, the signals, the user (by id) and
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
        """The HTML of one render (by default, :attr:`template_name` with ``context``)."""
        if self.template_name is None:
            raise ImproperlyConfigured(
                f"{type(self).__name__} needs a template_name or a render_html()."
            )
        return render_to_string(self.template_name, context, request=self.request)

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
