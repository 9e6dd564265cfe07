"""The demo with no network: every request to another host is aborted, and every page is live.

The pages load Datastar from ``realtime``'s static files and htmx from django-htmx's, both served
by the test server; the browser contexts abort (never answer) anything else. Each page opens its
stream once per load and asks the server for nothing it does not have (no 404s, not even a
favicon).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers, Tab
from tests.e2e.test_desk import DESK_STREAM, PORTAL_STREAM, desk_row, portal_row, send_ticket

pytestmark = pytest.mark.e2e

LIVE = 3_000  # ms
TASKS_STREAM = "/tasks/stream/"


def open_tab(browsers: Browsers, user: str | None, path: str) -> tuple[Tab, list[str]]:
    """A page at ``path`` and the list its failed answers (status >= 400) go to."""
    tab = browsers.tab(user)
    failures: list[str] = []
    tab.page.on(
        "response",
        lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    tab.page.goto(browsers.server.url + path)
    tab.page.evaluate("window.__loaded = true")  # gone if the page ever reloads
    return tab, failures


def test_every_page_is_live_with_other_hosts_blocked(
    browsers: Browsers, make_user: Callable[..., Any]
) -> None:
    make_user("agent", is_staff=True)
    make_user("alice")
    desk, desk_failures = open_tab(browsers, "agent", "/desk/")
    portal, portal_failures = open_tab(browsers, "alice", "/my/")
    tasks, tasks_failures = open_tab(browsers, None, "/tasks/")
    htmx, htmx_failures = open_tab(browsers, None, "/tasks/htmx/")
    desk.wait_stream(DESK_STREAM)
    portal.wait_stream(PORTAL_STREAM)
    tasks.wait_stream(TASKS_STREAM)
    htmx.page.wait_for_function(
        "() => document.body['htmx-internal-data']?.sseEventSource?.readyState === 1"
    )

    # The blocking is real: a request to another host fails, and is recorded. (From a blank page
    # of the same browser: the demo's pages would refuse it earlier, by their CSP.)
    probe = tasks.page.context.new_page()
    outcome = probe.evaluate(
        "fetch('https://cdn.jsdelivr.net/npm/nothing.js').then(() => 'reached', () => 'blocked')"
    )
    probe.close()
    assert outcome == "blocked"
    assert browsers.blocked == ["https://cdn.jsdelivr.net/npm/nothing.js"]

    # Desk and portal: a customer's ticket shows on both at once.
    send_ticket(portal, "Offline printer")
    expect(desk_row(desk, "Offline printer")).to_be_visible(timeout=LIVE)
    expect(portal_row(portal, "Offline printer")).to_contain_text("Open", timeout=LIVE)

    # The Datastar and the htmx task lists, each way.
    tasks.page.get_by_label("New task").fill("Written offline")
    tasks.page.get_by_label("New task").press("Enter")
    expect(htmx.page.locator("#tasks li")).to_have_text(["Written offline"], timeout=LIVE)
    htmx.page.fill("input[name=title]", "Also offline")
    htmx.page.click("form button")
    expect(tasks.page.locator("#tasks li")).to_have_text(
        ["Written offline", "Also offline"], timeout=LIVE
    )

    assert browsers.blocked == ["https://cdn.jsdelivr.net/npm/nothing.js"], "a page left the host"
    for tab, failures in (
        (desk, desk_failures),
        (portal, portal_failures),
        (tasks, tasks_failures),
        (htmx, htmx_failures),
    ):
        assert tab.page.evaluate("window.__loaded") is True, f"{tab.page.url} reloaded"
        assert tab.errors == [], tab.errors
        assert failures == [], f"{tab.page.url}: {failures}"


@pytest.mark.parametrize(
    ("path", "stream", "staff"),
    [
        ("/desk/", DESK_STREAM, True),
        ("/my/", PORTAL_STREAM, False),
        ("/tasks/", TASKS_STREAM, False),
    ],
)
def test_a_page_opens_its_stream_once(
    browsers: Browsers, make_user: Callable[..., Any], path: str, stream: str, staff: bool
) -> None:
    make_user("someone", is_staff=staff)
    tab = browsers.tab("someone")
    tab.page.goto(browsers.server.url + path)
    tab.wait_stream(stream)
    tab.page.wait_for_timeout(600)  # past the desk's 120 ms debounce, with room to spare
    assert len(tab.streams(stream)) == 1, f"{path} opened {tab.streams(stream)}"


def test_a_desk_filter_reopens_the_stream_once(
    browsers: Browsers, make_user: Callable[..., Any]
) -> None:
    make_user("agent", is_staff=True)
    tab = browsers.tab("agent")
    tab.page.goto(browsers.server.url + "/desk/")
    tab.wait_stream(DESK_STREAM)
    tab.page.get_by_role("button", name="With note").click()
    tab.wait_stream(DESK_STREAM, newer_than=1)
    tab.page.wait_for_timeout(600)
    assert len(tab.streams(DESK_STREAM)) == 2, tab.streams(DESK_STREAM)
