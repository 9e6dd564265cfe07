"""A Datastar tab and an htmx tab on the same task stream and command, in a real Chromium.

htmx and its SSE extension come from django-htmx's own static files (served to the browser from
the installed package: the test server has no static file handler); Datastar from the e2e
fixtures' offline copy. Nothing is fetched from the network.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers, Tab

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TIMEOUT = 10_000  # ms, for anything that crosses the server


def serve_static(route: Any) -> None:
    """Answer ``/static/...`` from the installed apps' static files (django-htmx's htmx)."""
    path = route.request.url.split("/static/", 1)[1].split("?", 1)[0]
    found = finders.find(path)
    if not found:
        route.fulfill(status=404, body="not found")
        return
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    route.fulfill(status=200, body=Path(found).read_bytes(), headers={"Content-Type": content_type})


def open_tasks(browsers: Browsers, flavour: str) -> Tab:
    context = browsers.context()
    context.route(f"{browsers.server.url}/static/**", serve_static)
    # Counts the stream's events (htmx's events bubble up to the window).
    context.add_init_script(
        "addEventListener('htmx:sseMessage', () => {"
        " window.sseMessages = (window.sseMessages || 0) + 1; });"
    )
    tab = browsers.tab(None, context)
    path = "/tasks/htmx/" if flavour == "htmx" else "/tasks/"
    tab.page.goto(browsers.server.url + path)
    return tab


def wait_for_htmx_stream(tab: Tab) -> None:
    """Until htmx and its SSE extension are loaded and the stream has sent its first event.

    Not merely until the EventSource is open: its headers arrive before the stream has
    subscribed, and a command's error notice published in between reaches no stream (the
    first event, the full state, is rendered after subscribing)."""
    tab.page.wait_for_function(
        "() => window.htmx && htmx.version.startsWith('2.') && htmx.createEventSource",
        timeout=TIMEOUT,
    )
    tab.page.wait_for_function(
        """() => {
            const body = document.body;
            const source = body['htmx-internal-data'] && body['htmx-internal-data'].sseEventSource;
            return source && source.readyState === EventSource.OPEN;
        }""",
        timeout=TIMEOUT,
    )
    tab.page.wait_for_function("() => window.sseMessages > 0", timeout=TIMEOUT)


def task_titles(tab: Tab) -> list[str]:
    return [t.strip() for t in tab.page.locator("#tasks li").all_inner_texts()]


def wait_for_task(tab: Tab, title: str) -> None:
    tab.page.locator("#tasks li", has_text=title).wait_for(timeout=TIMEOUT)


def test_a_datastar_tab_and_an_htmx_tab_stay_in_sync(browsers: Browsers) -> None:
    datastar = open_tasks(browsers, "datastar")
    htmx = open_tasks(browsers, "htmx")
    wait_for_htmx_stream(htmx)
    datastar.page.locator("main[data-signals]").wait_for(timeout=TIMEOUT)

    # Datastar -> htmx
    datastar.page.fill("main form input", "Written with Datastar")
    datastar.page.press("main form input", "Enter")
    wait_for_task(htmx, "Written with Datastar")
    wait_for_task(datastar, "Written with Datastar")

    # htmx -> Datastar
    htmx.page.fill("input[name=title]", "Written with htmx")
    htmx.page.click("form button")
    wait_for_task(datastar, "Written with htmx")
    wait_for_task(htmx, "Written with htmx")
    # Reset after the 204 (htmx's after-request may run after the stream already showed the task).
    expect(htmx.page.locator("input[name=title]")).to_have_value("", timeout=TIMEOUT)

    assert (
        task_titles(htmx) == task_titles(datastar) == ["Written with Datastar", "Written with htmx"]
    )
    # The htmx page is still swapping into the same list element (not a stale one).
    assert htmx.page.locator("#task-list > #tasks").count() == 1
    assert datastar.errors == []
    assert htmx.errors == []


def test_htmx_tab_shows_its_own_field_errors_from_the_stream(browsers: Browsers) -> None:
    htmx = open_tasks(browsers, "htmx")
    other = open_tasks(browsers, "htmx")
    wait_for_htmx_stream(htmx)
    wait_for_htmx_stream(other)

    with htmx.page.expect_response(lambda r: r.url.endswith("/tasks/add/")) as answer:
        htmx.page.click("form button")  # empty title
    assert answer.value.status == 422
    htmx.page.wait_for_function(
        "() => document.getElementById('errors-title').textContent === 'This field is required.'",
        timeout=TIMEOUT,
    )
    assert other.page.text_content("#errors-title") == ""  # the other tab's stream heard nothing

    # A good post clears the error (before the request) and the stream shows the task.
    htmx.page.fill("input[name=title]", "Fixed")
    htmx.page.click("form button")
    wait_for_task(other, "Fixed")
    assert htmx.page.text_content("#errors-title") == ""
    assert htmx.errors == []


@pytest.mark.slow
def test_htmx_tab_shows_a_rejected_commands_toast_then_removes_it(browsers: Browsers) -> None:
    """Any command posted from the page reports to this tab's stream (here a test command whose
    business rule refuses the name "forbidden": 409)."""
    htmx = open_tasks(browsers, "htmx")
    wait_for_htmx_stream(htmx)
    htmx.page.evaluate(
        """() => {
            const form = document.createElement('form');
            form.setAttribute('hx-post', '/test/groups/add/');
            form.innerHTML = '<input name="name" value="forbidden">';
            document.querySelector('main').appendChild(form);
            htmx.process(form);
            htmx.trigger(form, 'submit');
        }"""
    )
    toast = htmx.page.locator("#realtime-toasts [role=alert]")
    toast.wait_for(timeout=TIMEOUT)
    assert toast.inner_text().strip() == "That name is forbidden."
    toast.wait_for(state="detached", timeout=TIMEOUT)  # hx-on::load removes it after 6 s
    assert htmx.errors == []


def test_htmx_swaps_every_event_of_the_wire_format(browser: Any) -> None:
    """The format's bytes, read by Chromium's EventSource and swapped by htmx 2's SSE extension:
    multi-line HTML (CRLF too), out-of-band field errors, toasts, and out-of-band patches."""
    from django.template.loader import render_to_string

    from realtime.formats import HtmxFormat
    from realtime.templatetags.realtime import realtime_htmx_notices

    fmt = HtmxFormat()
    toast = render_to_string(
        "realtime/htmx_toast.html", {"message": "No <b>way</b>", "level": "error"}
    )
    body = (
        # One render: the list for the wrapper, and a counter elsewhere swapped out of band.
        fmt.patch(
            '<ul id="tasks">\r\n  <li>one</li>\n  <li>two</li>\r</ul>\n'
            '<p id="count" hx-swap-oob="true">2 tasks</p>'
        )
        + fmt.field_errors({"title": "Too <long>.", "due": ""})
        + fmt.toast(toast)
    )
    origin = "http://htmx.test"
    htmx_js = Path(finders.find("django_htmx/htmx-2.min.js") or "").read_bytes()
    sse_js = Path(finders.find("django_htmx/ext/hx-sse-2.min.js") or "").read_bytes()
    page_html = f"""<!doctype html><html><head>
        <script src="/htmx.js"></script><script src="/sse.js"></script></head>
        <body hx-ext="sse" sse-connect="/stream">
          <div id="wrap" sse-swap="patch"><ul id="tasks"><li>old</li></ul></div>
          <p id="count">0 tasks</p>
          <span id="errors-title">stale</span><span id="errors-due">stale</span>
          {realtime_htmx_notices()}
        </body></html>"""
    files = {
        "/": ("text/html", page_html.encode()),
        "/htmx.js": ("text/javascript", htmx_js),
        "/sse.js": ("text/javascript", sse_js),
        "/stream": ("text/event-stream", body.encode()),
    }

    def handle(route: Any) -> None:
        path = "/" + route.request.url.removeprefix(origin).lstrip("/").split("?")[0]
        content_type, content = files[path]
        route.fulfill(status=200, body=content, headers={"Content-Type": content_type})

    context = browser.new_context()
    try:
        context.route(lambda url: True, handle)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        # (The routed stream ends after one body, so EventSource reconnects and htmx logs an
        # htmx:sseError each time: not a problem here. Swap errors are.)
        page.add_init_script(
            """window.swapProblems = [];
            for (const name of ['htmx:oobErrorNoTarget', 'htmx:swapError', 'htmx:targetError']) {
                document.addEventListener(name, () => window.swapProblems.push(name));
            }"""
        )
        page.goto(origin + "/")
        page.locator("#realtime-toasts [role=alert]").first.wait_for(timeout=TIMEOUT)
        assert page.locator("#wrap > #tasks > li").all_inner_texts() == ["one", "two"]
        # Every SSE line ending came back as "\n"; nothing else changed.
        assert (
            page.inner_html("#wrap") == '<ul id="tasks">\n  <li>one</li>\n  <li>two</li>\n</ul>\n'
        )
        assert page.text_content("#count") == "2 tasks"  # swapped in place, out of band
        assert page.locator("#wrap #count").count() == 0
        assert page.text_content("#errors-title") == "Too <long>."
        assert page.text_content("#errors-due") == ""
        assert page.locator("#realtime-toasts [role=alert]").first.inner_html() == (
            "No &lt;b&gt;way&lt;/b&gt;"
        )
        assert problems == []
        assert page.evaluate("window.swapProblems") == []
    finally:
        context.close()
