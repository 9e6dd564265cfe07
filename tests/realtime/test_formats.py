"""Stream wire formats: Datastar's events, htmx's named HTML events, and the choice by headers."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from datastar_py.sse import ServerSentEventGenerator as SSE
from django.test import RequestFactory

from realtime.formats import DatastarFormat, HtmxFormat, choose_format
from realtime.streams import StreamView
from realtime.testing import SSEEvent, parse_sse

HTML = '<ul id="tasks">\n  <li>one</li>\n  <li>two</li>\n</ul>'


def only_event(text: str) -> SSEEvent:
    [event] = parse_sse(text)
    return event


class Spans(HTMLParser):
    """``(attributes, text)`` of every top-level ``<span>``."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.spans: list[tuple[dict[str, str | None], str]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag == "span"
        self.spans.append((dict(attrs), ""))

    def handle_data(self, data: str) -> None:
        attrs, text = self.spans[-1]
        self.spans[-1] = (attrs, text + data)


# htmx ------------------------------------------------------------------------------------------


def test_htmx_patch_is_a_named_event_whose_data_is_the_html() -> None:
    text = HtmxFormat().patch(HTML)
    assert text == (
        "event: patch\n"
        "retry: 1000\n"
        'data: <ul id="tasks">\n'
        "data:   <li>one</li>\n"
        "data:   <li>two</li>\n"
        "data: </ul>\n"
        "\n"
    )
    event = only_event(text)
    # What EventSource hands to the extension's listener: data lines joined with "\n".
    assert (event.event, event.data) == ("patch", HTML)


def test_htmx_patch_ignores_datastar_selector_and_mode() -> None:
    """The page's sse-swap element decides where and how (hx-target / hx-swap)."""
    fmt = HtmxFormat()
    assert fmt.patch(HTML, selector="#x", mode="append") == fmt.patch(HTML)


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_htmx_every_sse_line_ending_becomes_a_data_line(newline: str) -> None:
    text = HtmxFormat().patch(f"<p>a{newline}b</p>")
    assert "\r" not in text
    assert only_event(text).data == "<p>a\nb</p>"


def test_htmx_unicode_line_separators_are_not_sse_line_endings() -> None:
    html = "<p>a\u2028b\x0cc\x85d</p>"
    assert only_event(HtmxFormat().patch(html)).data == html


def test_htmx_empty_and_blank_lines_survive() -> None:
    assert only_event(HtmxFormat().patch("")).data == ""
    assert only_event(HtmxFormat().patch("<a>\n\n</a>\n")).data == "<a>\n\n</a>\n"


def test_htmx_patch_retry_can_be_left_to_the_browser() -> None:
    class NoRetry(HtmxFormat):
        retry = None

    assert NoRetry().patch("<p>x</p>") == "event: patch\ndata: <p>x</p>\n\n"


def test_htmx_signals_event_is_json() -> None:
    event = only_event(HtmxFormat().patch_signals({"count": 2, "names": ["a"]}))
    assert event.event == "signals"
    assert json.loads(event.data) == {"count": 2, "names": ["a"]}


def test_htmx_field_errors_are_out_of_band_swaps_of_every_field() -> None:
    event = only_event(HtmxFormat().field_errors({"title": "Too long.", "due": ""}))
    assert event.event == "errors"
    assert Spans(event.data).spans == [
        ({"id": "errors-title", "hx-swap-oob": "innerHTML"}, "Too long."),
        ({"id": "errors-due", "hx-swap-oob": "innerHTML"}, ""),  # clears a stale message
    ]


def test_htmx_field_errors_are_escaped() -> None:
    event = only_event(HtmxFormat().field_errors({"title": '<script>alert("x")</script>'}))
    assert "<script>" not in event.data
    [(_attrs, text)] = Spans(event.data).spans
    assert text == '<script>alert("x")</script>'


def test_htmx_event_and_id_names_can_be_changed_by_subclassing() -> None:
    class Custom(HtmxFormat):
        patch_event = "tasks"
        errors_event = "task-errors"
        error_id = "task-{field}-error"

    assert only_event(Custom().patch("<p>")).event == "tasks"
    event = only_event(Custom().field_errors({"title": "x"}))
    assert event.event == "task-errors"
    assert 'id="task-title-error"' in event.data


def test_htmx_toast_is_its_own_event() -> None:
    event = only_event(HtmxFormat().toast('<div role="alert">No.</div>'))
    assert (event.event, event.data) == ("toast", '<div role="alert">No.</div>')


# Datastar --------------------------------------------------------------------------------------


def test_datastar_patch_is_datastar_pys() -> None:
    assert DatastarFormat().patch(HTML) == str(SSE.patch_elements(HTML))
    event = only_event(DatastarFormat().patch(HTML, selector="#list", mode="inner"))
    assert event.event == "datastar-patch-elements"
    assert event.selector == "#list"
    assert "mode inner" in event.data_lines
    assert event.elements == HTML


def test_datastar_signals() -> None:
    event = only_event(DatastarFormat().patch_signals({"count": 2}))
    assert (event.event, event.signals) == ("datastar-patch-signals", {"count": 2})


def test_datastar_field_errors_are_the_errors_signal() -> None:
    event = only_event(DatastarFormat().field_errors({"title": "Too long.", "due": ""}))
    assert event.event == "datastar-patch-signals"
    assert event.signals == {"errors": {"title": "Too long.", "due": ""}}


def test_datastar_toast_is_appended_to_the_toasts() -> None:
    event = only_event(DatastarFormat().toast('<div role="alert">No.</div>'))
    assert event.event == "datastar-patch-elements"
    assert event.selector == "#realtime-toasts"
    assert "mode append" in event.data_lines
    assert event.elements == '<div role="alert">No.</div>'


def test_formats_have_distinct_names() -> None:
    assert DatastarFormat.name != HtmxFormat.name
    assert DatastarFormat.reads_signals
    assert not HtmxFormat.reads_signals


# The choice --------------------------------------------------------------------------------------

#: What each client really sends when it opens a stream.
DATASTAR_FETCH = {"HTTP_ACCEPT": "text/event-stream, text/html", "HTTP_DATASTAR_REQUEST": "true"}
EVENT_SOURCE = {"HTTP_ACCEPT": "text/event-stream", "HTTP_CACHE_CONTROL": "no-cache"}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (DATASTAR_FETCH, DatastarFormat),
        ({"HTTP_DATASTAR_REQUEST": "true"}, DatastarFormat),
        (EVENT_SOURCE, HtmxFormat),
        ({"HTTP_ACCEPT": "text/html, text/event-stream;q=0.9"}, HtmxFormat),
        # An htmx ajax request is not the extension's EventSource.
        ({**EVENT_SOURCE, "HTTP_HX_REQUEST": "true"}, DatastarFormat),
        ({"HTTP_ACCEPT": "*/*"}, DatastarFormat),  # curl and friends
        ({}, DatastarFormat),
        ({**EVENT_SOURCE, "HTTP_DATASTAR_REQUEST": "false"}, HtmxFormat),
    ],
)
def test_choose_format_by_headers(headers: dict[str, str], expected: type) -> None:
    request = RequestFactory().get("/stream/", **headers)  # type: ignore[arg-type]
    assert type(choose_format(request)) is expected


# A stream's notices and render key, per format --------------------------------------------------


class Stream(StreamView):
    template_name = "realtime/toast.html"  # any template; not rendered here


def stream(query: str = "", **headers: str) -> Stream:
    view = Stream()
    view.setup(RequestFactory().get(f"/stream/{query}", **headers))  # type: ignore[arg-type]
    return view


REJECTED = {
    "kind": "command-error",
    "command": "AddTask",
    "status": 409,
    "message": "Closed tasks cannot be renamed.",
    "errors": {},
    "fields": ["title"],
}
INVALID = {
    **REJECTED,
    "status": 422,
    "message": "Please correct the errors below.",
    "errors": {"title": ["This field is required."]},
}


def notice_events(view: StreamView, payload: dict[str, Any]) -> list[SSEEvent]:
    return parse_sse(view.render_notice(payload))


def test_htmx_stream_sends_field_errors_without_a_toast() -> None:
    [errors] = notice_events(stream(**EVENT_SOURCE), INVALID)
    assert errors.event == "errors"
    assert Spans(errors.data).spans == [
        ({"id": "errors-title", "hx-swap-oob": "innerHTML"}, "This field is required.")
    ]


def test_htmx_stream_sends_a_rule_rejection_as_a_toast_htmx_removes() -> None:
    errors, toast = notice_events(stream(**EVENT_SOURCE), REJECTED)
    assert Spans(errors.data).spans == [({"id": "errors-title", "hx-swap-oob": "innerHTML"}, "")]
    assert toast.event == "toast"
    assert "Closed tasks cannot be renamed." in toast.data
    assert 'role="alert"' in toast.data
    assert "hx-on::load=" in toast.data  # htmx runs it; a Datastar attribute would be inert
    assert "data-init" not in toast.data


def test_datastar_stream_notices_are_unchanged() -> None:
    errors, toast = notice_events(stream(**DATASTAR_FETCH), REJECTED)
    assert errors.signals == {"errors": {"title": ""}}
    assert toast.selector == "#realtime-toasts"
    assert "Closed tasks cannot be renamed." in toast.elements
    assert "data-init=" in toast.elements


@pytest.mark.parametrize("headers", [EVENT_SOURCE, DATASTAR_FETCH])
def test_form_wide_errors_are_toasted_with_their_own_message(headers: dict[str, str]) -> None:
    payload = {**INVALID, "errors": {"__all__": ["Pick a date or a title."]}}
    _errors, toast = notice_events(stream(**headers), payload)
    assert "Pick a date or a title." in toast.data
    assert "Please correct the errors below." not in toast.data


@pytest.mark.parametrize("newline", ["\n", "\r", "\r\n"])
def test_single_line_fields_refuse_line_breaks(newline: str) -> None:
    # A line break would end the field early and let the rest forge fields or events.
    with pytest.raises(ValueError, match="An SSE selector must be a single line"):
        DatastarFormat().patch("<p>", selector=f"#a{newline}event: x")
    with pytest.raises(ValueError, match="An SSE event type must be a single line"):
        HtmxFormat.event(f"patch{newline}data: forged", "<p>")


@pytest.mark.parametrize("headers", [EVENT_SOURCE, DATASTAR_FETCH])
def test_other_payloads_on_the_tab_topic_send_nothing(headers: dict[str, str]) -> None:
    assert stream(**headers).render_notice({"kind": "something-else"}) == b""
    assert stream(**headers).render_notice("a plain string") == b""


def test_an_htmx_query_string_is_bounded_like_datastar_signals() -> None:
    from realtime.conf import get_config
    from realtime.request_data import BadSignals

    limit = get_config().MAX_STREAM_SIGNALS_BYTES
    assert stream(f"?tab={'t' * 20}", **EVENT_SOURCE).read_signals() == {"tab": "t" * 20}
    with pytest.raises(BadSignals, match=f"longer than {limit} bytes"):
        stream(f"?tab={'t' * limit}", **EVENT_SOURCE).read_signals()
