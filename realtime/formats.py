"""Wire formats of a stream: Datastar's SSE events, or named HTML events for htmx's SSE extension.

The render, the topics, the coalescing and the authorization are the stream's; a format only
turns HTML (and signals) into event text. Datastar's fetch sends ``Datastar-Request: true``; a
browser ``EventSource`` (htmx's SSE extension) cannot send custom headers, so a request without it
that accepts ``text/event-stream`` gets the htmx format.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from datastar_py.consts import ElementPatchMode
from datastar_py.sse import ServerSentEventGenerator as SSE
from django.http import HttpRequest


class StreamFormat(Protocol):
    """Turns rendered HTML and signals into SSE event text."""

    #: Whether the request's Datastar signals (``?datastar=...``) should be read.
    reads_signals: bool

    def patch(self, html: str, *, selector: str | None = None, mode: str | None = None) -> str: ...

    def patch_signals(self, signals: dict[str, Any]) -> str: ...


class DatastarFormat:
    """``datastar-patch-elements`` / ``datastar-patch-signals`` events (via datastar-py)."""

    reads_signals = True

    def patch(self, html: str, *, selector: str | None = None, mode: str | None = None) -> str:
        return str(
            SSE.patch_elements(
                html, selector=selector, mode=ElementPatchMode(mode) if mode else None
            )
        )

    def patch_signals(self, signals: dict[str, Any]) -> str:
        return str(SSE.patch_signals(signals))


class HtmxFormat:
    """Named events carrying HTML, as htmx's SSE extension swaps them (``sse-swap="<name>"``).

    Element patches are sent as event ``patch`` (swap it with ``sse-swap="patch"`` and
    ``hx-swap="outerHTML"``, or ``morph`` with an extension); signals, which htmx does not have,
    are sent as event ``signals`` with a JSON body for pages that want them.
    """

    reads_signals = False

    def __init__(self, event: str = "patch") -> None:
        self.event = event

    def patch(self, html: str, *, selector: str | None = None, mode: str | None = None) -> str:
        event = "toast" if mode == "append" else self.event
        lines = "".join(f"data: {line}\n" for line in html.splitlines() or [""])
        return f"event: {event}\n{lines}\n"

    def patch_signals(self, signals: dict[str, Any]) -> str:
        return f"event: signals\ndata: {json.dumps(signals, separators=(',', ':'))}\n\n"


def choose_format(request: HttpRequest) -> StreamFormat:
    """Datastar unless the request is a plain ``EventSource`` (htmx)."""
    if request.headers.get("Datastar-Request") == "true":
        return DatastarFormat()
    if (
        "text/event-stream" in request.headers.get("Accept", "")
        and "HX-Request" not in request.headers
    ):
        return HtmxFormat()
    return DatastarFormat()
