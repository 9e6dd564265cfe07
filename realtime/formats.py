"""Wire formats of a stream: Datastar's SSE events, or named HTML events for htmx's SSE extension.

The render, the topics, the coalescing and the authorization are the stream's; a format only
turns HTML (and signals, and a command's error notices) into event text.

Choosing (:func:`choose_format`): Datastar's fetch sends ``Datastar-Request: true``; a browser
``EventSource`` (what htmx's SSE extension opens) cannot send custom headers, so a request without
it that accepts ``text/event-stream`` gets :class:`HtmxFormat`. Anything else gets Datastar's.

What htmx 2's SSE extension (``hx-sse``, shipped by django-htmx and loaded by its default
``{% htmx_script extensions="hx-sse" %}``) does with an event, and therefore what
:class:`HtmxFormat` sends (htmx 4's extension is a different protocol, fetch-based with
``hx-sse:connect`` and no ``sse-swap``; it is not supported):

- An element with ``sse-swap="a,b"`` (inside the element with ``sse-connect``) listens to the
  events *named* ``a`` and ``b``; the event's data, the ``data:`` lines joined with ``\\n`` by the
  browser, is HTML that htmx swaps into that element (or its ``hx-target``) with the element's
  ``hx-swap`` (default ``innerHTML``), processing ``hx-swap-oob`` elements inside it, even with
  ``hx-swap="none"``.
- Unnamed events (``message``) are only seen by ``sse-swap="message"``; a format sends none.
- The ``EventSource`` itself reconnects when the response ends (a server restart); ``retry:``
  sets how soon.

So the htmx events are:

=============  ==================================================================================
``patch``      the view's render (what Datastar gets as ``datastar-patch-elements``). The page's
               element decides the swap: ``<div sse-swap="patch">{% include partial %}</div>``
               replaces the wrapper's content (``StreamView.selector``/``mode`` are Datastar's
               and ignored). Partials whose root elements carry ``hx-swap-oob="true"`` can
               instead be swapped in place by id with ``sse-swap="patch" hx-swap="none"``.
``errors``     a command's field errors for this tab: one ``<span id="errors-<field>"
               hx-swap-oob="innerHTML">message</span>`` per field of the form (empty when the field
               is fine), so a sink ``<div sse-swap="errors" hx-swap="none" hidden></div>`` fills
               the page's ``<span id="errors-title"></span>`` elements.
``toast``      a rejected command's message, as HTML (``realtime/htmx_toast.html``) for
               ``<div id="realtime-toasts" sse-swap="toast" hx-swap="beforeend"></div>``.
``signals``    :meth:`StreamView.get_signals`, as JSON (htmx has no signals; listen with
               ``hx-trigger="sse:signals"`` or ``htmx:sseMessage`` if a page wants them).
=============  ==================================================================================

``{% realtime_htmx_page %}`` and ``{% realtime_htmx_notices %}`` (in ``{% load realtime %}``) write
the ``sse-connect`` attributes and the two notice sinks.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from datastar_py.consts import ElementPatchMode
from datastar_py.sse import ServerSentEventGenerator as SSE
from django.http import HttpRequest
from django.utils.html import format_html

#: SSE's line terminators (``str.splitlines`` knows more, which SSE would not split on).
_LINES = re.compile(r"\r\n|\r|\n")


def single_line(value: str, what: str) -> str:
    """``value`` unchanged, if it holds no line break; a line break would end an SSE field early
    and let the rest forge fields or events of its own, so it raises ``ValueError``."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"An SSE {what} must be a single line, got {value!r}.")
    return value


class StreamFormat(Protocol):
    """Turns rendered HTML, signals and error notices into SSE event text."""

    #: A short name; part of every shared render's key (the bytes are in this format).
    name: str
    #: Whether the request's Datastar signals (``?datastar=...``) should be read; otherwise the
    #: plain query string's parameters are the stream's signals.
    reads_signals: bool
    #: The template of a rejected command's toast (context: ``message``, ``level``).
    toast_template: str
    #: The template of the last event of a stream whose authority ended: it reloads the page,
    #: whose own view then shows what happened (the login page, a 403), never the old data.
    reload_template: str

    def patch(self, html: str, *, selector: str | None = None, mode: str | None = None) -> str: ...

    def patch_signals(self, signals: dict[str, Any]) -> str: ...

    def field_errors(self, messages: dict[str, str]) -> str:
        """One message per form field ("" when the field is fine)."""
        ...

    def toast(self, html: str) -> str:
        """A rendered :attr:`toast_template`, to be appended to the page's toasts."""
        ...

    def reload(self, html: str) -> str:
        """A rendered :attr:`reload_template`, sent as a stream's last event."""
        ...


class DatastarFormat:
    """``datastar-patch-elements`` / ``datastar-patch-signals`` events (via datastar-py).

    Field errors are the signal ``errors`` (``$errors.title``); toasts are appended to
    ``#realtime-toasts``.
    """

    name = "datastar"
    reads_signals = True
    toast_template = "realtime/toast.html"
    reload_template = "realtime/reload.html"

    def patch(self, html: str, *, selector: str | None = None, mode: str | None = None) -> str:
        return str(
            SSE.patch_elements(
                html,
                selector=single_line(selector, "selector") if selector else None,
                mode=ElementPatchMode(mode) if mode else None,
            )
        )

    def patch_signals(self, signals: dict[str, Any]) -> str:
        return str(SSE.patch_signals(signals))

    def field_errors(self, messages: dict[str, str]) -> str:
        return self.patch_signals({"errors": messages})

    def toast(self, html: str) -> str:
        return self.patch(html, selector="#realtime-toasts", mode="append")

    def reload(self, html: str) -> str:
        return self.patch(html, selector="body", mode="append")


class HtmxFormat:
    """Named events carrying HTML, as htmx's SSE extension swaps them (see the module's doc).

    Subclass to rename the events or the error elements' ids (:attr:`error_id`).
    """

    name = "htmx"
    reads_signals = False
    toast_template = "realtime/htmx_toast.html"
    reload_template = "realtime/htmx_reload.html"

    patch_event = "patch"
    signals_event = "signals"
    errors_event = "errors"
    toast_event = "toast"
    #: The id of the element that shows a field's error; ``{field}`` is the form field's name.
    error_id = "errors-{field}"
    #: Milliseconds the browser waits before reconnecting when the stream ends (sent with
    #: patches; ``None`` leaves the browser's default, about 3 s).
    retry: int | None = 1000

    def patch(self, html: str, *, selector: str | None = None, mode: str | None = None) -> str:
        return self.event(self.patch_event, html, retry=self.retry)

    def patch_signals(self, signals: dict[str, Any]) -> str:
        return self.event(self.signals_event, json.dumps(signals, separators=(",", ":")))

    def field_errors(self, messages: dict[str, str]) -> str:
        html = "".join(
            format_html(
                '<span id="{}" hx-swap-oob="innerHTML">{}</span>',
                self.error_id.format(field=field),
                message,
            )
            for field, message in messages.items()
        )
        return self.event(self.errors_event, html)

    def toast(self, html: str) -> str:
        return self.event(self.toast_event, html)

    def reload(self, html: str) -> str:
        # Into the toasts' sink ({% realtime_htmx_notices %}), whose htmx processing runs it.
        return self.event(self.toast_event, html)

    @staticmethod
    def event(name: str, data: str, *, retry: int | None = None) -> str:
        """One SSE event: ``event: name``, then each line of ``data`` as a ``data:`` line."""
        head = f"event: {single_line(name, 'event type')}\n" + (
            f"retry: {retry}\n" if retry is not None else ""
        )
        return head + "".join(f"data: {line}\n" for line in _LINES.split(data)) + "\n"


def choose_format(request: HttpRequest) -> StreamFormat:
    """Datastar unless the request is a plain ``EventSource`` (htmx's SSE extension)."""
    # From META, not request.headers: that mapping of every header would be built for this and
    # then kept by each open stream's request.
    meta = request.META
    if meta.get("HTTP_DATASTAR_REQUEST") == "true":
        return DatastarFormat()
    if "text/event-stream" in meta.get("HTTP_ACCEPT", "") and "HTTP_HX_REQUEST" not in meta:
        return HtmxFormat()
    return DatastarFormat()
