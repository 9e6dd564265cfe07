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

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Hashable, Sequence
from contextlib import aclosing
from functools import partial
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
from realtime.metrics import counters
from realtime.relay.hub import Hub, Subscription, get_hub
from realtime.relay.topics import validate_topic
from realtime.rendering import (
    SharedRenders,
    release_request_thread,
    run_sync,
    shared_renders,
)
from realtime.signals import BadSignals, pop_tab, read_signals, tab_topic

logger = logging.getLogger("realtime")

HEARTBEAT = b": keep-alive\n\n"
_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)


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
            self.signals = (
                read_signals(request) if self.format.reads_signals else dict(request.GET.items())
            )
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
        compression = get_config().STREAM_COMPRESSION
        gzip = compression == "gzip" and accepts_gzip(request)
        response = StreamingHttpResponse(
            self._guarded(self._events(topics, notice_topics, key), gzip=gzip),
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
        """Events for a private notice sent to this tab (by default, a command's errors)."""
        if not isinstance(payload, dict):
            return b""
        events: list[str] = []
        fields = payload.get("fields")
        errors = payload.get("errors") or {}
        if isinstance(fields, list) and isinstance(errors, dict):
            messages = {str(f): " ".join(map(str, errors.get(f, []))) for f in fields}
            events.append(self.format.field_errors(messages))
        message = payload.get("message")
        if payload.get("status") == 422 and isinstance(errors, dict):
            # Field errors show beside their fields; the form's own errors need the toast.
            message = " ".join(map(str, errors.get("__all__", [])))
        if message:
            context = {"message": message, "level": "error"}
            events.append(self.format.toast(render_to_string(self.format.toast_template, context)))
        return "".join(events).encode()

    # The stream ------------------------------------------------------------------------------

    async def _events(
        self, topics: list[str], notice_topics: list[str], key: Hashable | None
    ) -> AsyncIterator[tuple[bytes, bool]]:
        """The stream's pieces, each with whether it is a shared render (see :mod:`encoding`)."""
        hub = get_hub()
        shared = shared_renders(hub)
        config = get_config()
        loop = asyncio.get_running_loop()
        if key is not None:
            shared.hold(key)
        counters.open_streams += 1
        try:
            async with hub.subscribe(topics, notice_topics) as subscription:
                if subscription.closed:
                    return
                release_request_thread()
                if key is not None:
                    subscription.on_change = partial(shared.render_ahead, key, self.render_stream)
                body = await self._render(hub, shared, key, hub.version, subscription)
                if body is None:
                    return
                yield body, True
                heartbeat_at = loop.time() + (config.HEARTBEAT or float("inf"))
                refresh_at = loop.time() + (self.refresh_interval or float("inf"))
                while True:
                    timeout = max(0.0, min(heartbeat_at, refresh_at) - loop.time())
                    woke = await subscription.wait(None if timeout == float("inf") else timeout)
                    if subscription.closed:
                        return
                    chunks: list[tuple[bytes, bool]] = []
                    if woke:
                        changed, version, notices = subscription.consume()
                        for _topic, payload in notices:
                            notice = await run_sync(partial(self.render_notice, payload))
                            chunks.append((notice, False))
                        if changed:
                            rendered = await self._render(hub, shared, key, version, subscription)
                            if rendered is None:
                                return
                            # Notifications that left this view's bytes as they were send nothing.
                            if rendered != body:
                                body = rendered
                                chunks.append((body, True))
                    elif loop.time() >= refresh_at:
                        # Time, not data, changed: a shared render of this version would be the
                        # same bytes again, so this one is rendered afresh (key None).
                        rendered = await self._render(hub, shared, None, hub.version, subscription)
                        if rendered is None:
                            return
                        body = rendered
                        chunks.append((body, True))
                    else:
                        counters.heartbeats_sent += 1
                        chunks.append((HEARTBEAT, True))
                    now = loop.time()
                    if self.refresh_interval and now >= refresh_at:
                        refresh_at = now + self.refresh_interval
                    if chunks:
                        heartbeat_at = now + (config.HEARTBEAT or float("inf"))
                    for chunk in chunks:
                        yield chunk
        finally:
            counters.open_streams -= 1
            if key is not None:
                shared.release(key)

    async def _render(
        self,
        hub: Hub,
        shared: SharedRenders,
        key: Hashable | None,
        version: int,
        subscription: Subscription,
    ) -> bytes | None:
        """Render (or share a render), retrying while the database is unreachable.

        Returns ``None`` when the stream should end (the subscription closed while retrying).
        """
        attempt = 0
        while True:
            try:
                return await shared.render(key, version, hub.version, self.render_stream)
            except Exception:
                delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS) - 1)]
                logger.warning(
                    "realtime: %s failed to render; retrying in %ss",
                    type(self).__name__,
                    delay,
                    exc_info=True,
                )
                attempt += 1
                # Not subscription.wait(): a pending change would end it at once, every time,
                # turning the backoff into a busy loop while the database is down.
                await asyncio.sleep(delay)
                if subscription.closed:
                    return None

    async def _guarded(
        self, pieces: AsyncIterator[tuple[bytes, bool]], *, gzip: bool
    ) -> AsyncIterator[bytes]:
        """Encode, count what is sent, and close the stream when the client stops reading.

        The stream is suspended at ``yield`` until the server has handed the previous chunk to the
        socket; a timer armed there cancels the response task if that takes ``STALL_TIMEOUT``.
        """
        stall = get_config().STALL_TIMEOUT
        encoder = GzipStream(shared_blocks(get_hub())) if gzip else None
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        async with aclosing(pieces):  # type: ignore[type-var]
            async for piece, shared in pieces:
                chunk = encoder.encode(piece, shared=shared) if encoder else piece
                counters.events_sent += 1
                counters.bytes_sent += len(chunk)
                timer = (
                    loop.call_later(stall, _disconnect_stalled, task, pieces)
                    if stall and task
                    else None
                )
                try:
                    yield chunk
                finally:
                    if timer is not None:
                        timer.cancel()
        if encoder is not None:
            yield encoder.finish()


_closing: set[asyncio.Task[Any]] = set()


def _disconnect_stalled(task: asyncio.Task[Any], pieces: AsyncIterator[Any]) -> None:
    counters.stalled_disconnects += 1
    logger.warning("realtime: closing a stream whose client stopped reading")
    # End the stream itself now (its finally removes the subscription): cancelling the response
    # task alone leaves the suspended generators to the garbage collector, which may be late.
    aclose = getattr(pieces, "aclose", None)
    if aclose is not None:
        closing = task.get_loop().create_task(aclose())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    task.cancel("realtime: the client stopped reading the stream")
