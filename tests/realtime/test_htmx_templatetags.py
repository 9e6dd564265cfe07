"""Template tags for htmx pages: ``{% realtime_htmx_page %}`` and ``{% realtime_htmx_notices %}``."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from django.middleware.csrf import _unmask_cipher_token, get_token
from django.template import Context, Template
from django.test import RequestFactory, override_settings

from tests.realtime.helpers import Elements


def page_attrs(stream_url: str = "/tasks/stream/") -> tuple[dict[str, str | None], object]:
    request = RequestFactory().get("/tasks/htmx/")
    html = Template("{% load realtime %}<body {% realtime_htmx_page url %}></body>").render(
        Context({"request": request, "url": stream_url})
    )
    [(tag, attrs)] = Elements(html).tags
    assert tag == "body"
    return attrs, request


def test_page_opens_the_stream_with_the_tab_id_and_sends_it_with_every_request() -> None:
    attrs, _request = page_attrs()
    assert attrs["hx-ext"] == "sse"
    url = urlsplit(attrs["sse-connect"] or "")
    assert url.path == "/tasks/stream/"
    [tab] = parse_qs(url.query)["tab"]
    assert len(tab) >= 16
    assert json.loads(attrs["hx-vals"] or "") == {"tab": tab}


def test_page_sends_the_csrf_token_as_a_header() -> None:
    attrs, request = page_attrs()
    token = json.loads(attrs["hx-headers"] or "")["X-CSRFToken"]
    assert _unmask_cipher_token(token) == _unmask_cipher_token(get_token(request))


def test_each_page_gets_its_own_tab() -> None:
    first, _ = page_attrs()
    second, _ = page_attrs()
    assert first["hx-vals"] != second["hx-vals"]


def test_stream_url_with_a_query_string_and_quotes() -> None:
    attrs, _ = page_attrs('/stream/?filter=open&q="x"')
    url = urlsplit(attrs["sse-connect"] or "")
    query = parse_qs(url.query)
    assert query["filter"] == ["open"]
    assert query["q"] == ['"x"']
    assert "tab" in query


def test_tab_parameter_follows_the_setting() -> None:
    with override_settings(REALTIME={"TAB_SIGNAL": "tabId"}):
        attrs, _ = page_attrs()
    assert "tabId=" in (attrs["sse-connect"] or "")
    assert list(json.loads(attrs["hx-vals"] or "")) == ["tabId"]


def test_notices_are_the_toast_and_errors_sinks() -> None:
    html = Template("{% load realtime %}{% realtime_htmx_notices %}").render(Context({}))
    toasts, errors = Elements(html).tags
    assert toasts == (
        "div",
        {
            "id": "realtime-toasts",
            "sse-swap": "toast",
            "hx-swap": "beforeend",
            "aria-live": "polite",
        },
    )
    assert errors == ("div", {"sse-swap": "errors", "hx-swap": "none", "hidden": None})
