"""htmx on the same streams and commands, over real HTTP: the task list's htmx flavour.

The htmx page opens the task stream with a browser ``EventSource`` (no custom headers), so the
stream answers with named events carrying HTML; its form posts are form-encoded with
``HX-Request`` and the CSRF header. A Datastar client on the same stream keeps Datastar's events.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from examples.tasks.models import Task
from realtime.testing import EventStream, LiveServer, SSEEvent, open_stream, post_command, tab_id

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(transactional_db: None) -> Iterator[LiveServer]:
    with LiveServer() as live:
        yield live


@pytest.fixture
def streams() -> Iterator[list[EventStream]]:
    opened: list[EventStream] = []
    yield opened
    for stream in opened:
        stream.close()


def new_tab() -> str:
    """A tab id of the test client's browser (open_stream and post_command send its cookie)."""
    return tab_id()


def htmx_stream(
    server: LiveServer, name: str, opened: list[EventStream], **signals: str
) -> EventStream:
    stream = open_stream(server.url + reverse(name), signals=signals or None, htmx=True)
    opened.append(stream)
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    return stream


def is_patch(event: SSEEvent) -> bool:
    return event.event == "patch"


class Attributes(HTMLParser):
    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


# The page -----------------------------------------------------------------------------------


def test_htmx_page_loads_htmx_locally_and_connects_to_the_shared_stream(client: Client) -> None:
    page = client.get(reverse("tasks:htmx"))
    assert page.status_code == 200
    tags = Attributes(page.content.decode()).tags
    scripts = [attrs["src"] or "" for tag, attrs in tags if tag == "script"]
    assert any(re.search(r"/static/django_htmx/htmx-2(\.min)?\.js$", s) for s in scripts)
    assert any(re.search(r"/static/django_htmx/ext/hx-sse-2(\.min)?\.js$", s) for s in scripts)
    assert not [s for s in scripts if "://" in s]  # nothing from a CDN
    [body] = [attrs for tag, attrs in tags if tag == "body"]
    connect = urlsplit(body["sse-connect"] or "")
    assert connect.path == reverse("tasks:stream")  # the Datastar page's stream, not a copy
    [tab] = parse_qs(connect.query)["tab"]
    assert f'"tab": "{tab}"' in (body["hx-vals"] or "")
    assert "X-CSRFToken" in (body["hx-headers"] or "")
    forms = [attrs for tag, attrs in tags if tag == "form"]
    assert [f["hx-post"] for f in forms] == [reverse("tasks:add")]  # the Datastar page's command
    assert any(attrs.get("sse-swap") == "patch" for _tag, attrs in tags)
    assert any(attrs.get("id") == "errors-title" for _tag, attrs in tags)


# Streams --------------------------------------------------------------------------------------


def test_htmx_stream_gets_named_html_events(server: LiveServer, streams: list[EventStream]) -> None:
    Task.objects.create(title="Water the plants")
    stream = htmx_stream(server, "tasks:stream", streams)
    first = stream.next_event()
    assert first.event == "patch"
    assert '<ul id="tasks">' in first.data
    assert "Water the plants" in first.data
    assert not [line for line in first.data_lines if line.startswith("elements ")]

    answer = post_command(server.url + reverse("tasks:add"), {"title": "Feed the cat"}, htmx=True)
    assert answer.status == 204
    assert answer.body == b""
    update = stream.next_event(is_patch)
    assert "Water the plants" in update.data
    assert "Feed the cat" in update.data


def test_datastar_and_htmx_clients_share_the_stream_but_not_the_bytes(
    server: LiveServer, streams: list[EventStream]
) -> None:
    """Same view, same arguments: one render key's worth of HTML, two wire formats."""
    url = server.url + reverse("tasks:stream")
    datastar = open_stream(url)
    streams.append(datastar)
    assert datastar.next_event().event == "datastar-patch-elements"
    htmx = htmx_stream(server, "tasks:stream", streams)
    assert htmx.next_event().event == "patch"  # not the Datastar render it could have shared

    Task.objects.create(title="Saved anywhere")  # broadcast(Task) publishes "tasks"
    assert "Saved anywhere" in datastar.next_event().elements
    assert "Saved anywhere" in htmx.next_event(is_patch).data
    assert "datastar" not in htmx.raw.decode()


# Commands -------------------------------------------------------------------------------------


def test_htmx_form_post_is_204_and_writes(server: LiveServer) -> None:
    tab = new_tab()
    answer = post_command(
        server.url + reverse("tasks:add"), {"title": "From htmx", "tab": tab}, htmx=True
    )
    assert answer.status == 204
    assert list(Task.objects.values_list("title", flat=True)) == ["From htmx"]


def test_htmx_form_post_without_csrf_is_403(server: LiveServer) -> None:
    answer = post_command(server.url + reverse("tasks:add"), {"title": "x"}, htmx=True, csrf=False)
    assert answer.status == 403
    assert not Task.objects.exists()


def test_invalid_htmx_post_is_422_and_the_errors_reach_that_tab_only(
    server: LiveServer, streams: list[EventStream]
) -> None:
    tab, other = new_tab(), new_tab()
    mine = htmx_stream(server, "tasks:stream", streams, tab=tab)
    theirs = htmx_stream(server, "tasks:stream", streams, tab=other)
    mine.next_event(is_patch)
    theirs.next_event(is_patch)

    answer = post_command(server.url + reverse("tasks:add"), {"title": "", "tab": tab}, htmx=True)
    assert answer.status == 422
    assert answer.json()["errors"] == {"title": ["This field is required."]}
    assert not Task.objects.exists()

    errors = mine.next_event(lambda e: e.event == "errors")
    assert errors.data == (
        '<span id="errors-title" hx-swap-oob="innerHTML">This field is required.</span>'
    )
    # No toast for field errors; the other tab hears nothing. Both streams are read up to a task
    # committed afterwards: notifications reach them in commit order.
    Task.objects.create(title="committed after the errors")
    for stream, private in ((mine, {"toast"}), (theirs, {"errors", "toast"})):
        read = [stream.next_event()]
        while not (is_patch(read[-1]) and "committed after the errors" in read[-1].data):
            read.append(stream.next_event())
        assert [e.event for e in read if e.event in private] == []


def test_business_rule_rejection_is_409_and_a_toast_on_the_htmx_stream(
    server: LiveServer, streams: list[EventStream]
) -> None:
    tab = new_tab()
    stream = htmx_stream(server, "test-groups-stream", streams, tab=tab)
    assert stream.next_event().event == "patch"
    answer = post_command(
        server.url + reverse("test-add-group"), {"name": "forbidden", "tab": tab}, htmx=True
    )
    assert answer.status == 409
    assert answer.json()["message"] == "That name is forbidden."
    errors = stream.next_event(lambda e: e.event != "patch")
    assert errors.event == "errors"  # clears the form's field errors
    assert errors.data == '<span id="errors-name" hx-swap-oob="innerHTML"></span>'
    toast = stream.next_event()
    assert toast.event == "toast"
    assert "That name is forbidden." in toast.data
    assert 'role="alert"' in toast.data
