"""The pages work under their Content-Security-Policy, in a real browser, with no violation.

Every ``securitypolicyviolation`` event a page sees is recorded (an init script runs before any
page script), and the pages are used as people use them: Datastar's expressions (which need
``'unsafe-eval'``), its streams and commands, htmx's SSE swaps and ``hx-on`` handlers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers, Tab
from tests.e2e.test_desk import LIVE, desk_row, open_desk, open_portal, select_ticket, send_ticket

pytestmark = pytest.mark.e2e

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(
    `${e.violatedDirective} blocked ${e.blockedURI || '(inline)'} at ${e.sourceFile}:${e.lineNumber}`
));
"""


def watch(tab: Tab) -> Tab:
    tab.page.add_init_script(RECORD_VIOLATIONS)
    return tab


def assert_clean(*tabs: Tab) -> None:
    for tab in tabs:
        assert tab.page.evaluate("window.__csp") == [], tab.user
        assert tab.errors == [], f"{tab.user}: {tab.errors}"
        assert not [line for line in tab.console if "Content Security Policy" in line], tab.console


def test_the_desk_and_the_portal_work_under_the_policy(
    browsers: Browsers, make_user: Callable[..., Any]
) -> None:
    make_user("agent", is_staff=True)
    make_user("alice")
    agent_context, alice_context = browsers.context(), browsers.context()
    agent_context.add_init_script(RECORD_VIOLATIONS)
    alice_context.add_init_script(RECORD_VIOLATIONS)
    desk = open_desk(browsers, "agent", agent_context)
    portal = open_portal(browsers, "alice", alice_context)
    response = desk.page.request.get(browsers.server.url + "/desk/")
    assert "'unsafe-eval'" in response.headers["content-security-policy"]

    send_ticket(portal, "Printer on fire")
    expect(desk_row(desk, "Printer on fire")).to_be_visible(timeout=LIVE)
    select_ticket(desk, "Printer on fire")
    desk.page.locator(".note-form textarea").fill("Called the fire brigade.")
    desk.page.get_by_role("button", name="Save note").click()
    expect(desk_row(desk, "Printer on fire").locator(".note-flag")).to_be_visible(timeout=LIVE)
    desk.page.get_by_role("button", name="Mark closed").click()
    expect(desk.page.locator(".detail-card .badge")).to_have_text("Closed", timeout=LIVE)
    desk.page.get_by_role("button", name="Closed").first.click()  # the status filter
    expect(desk.page).to_have_url(re.compile(r"/desk/\?status=closed&ticket=\d+$"), timeout=LIVE)
    assert_clean(desk, portal)


@pytest.mark.parametrize("path", ["/tasks/", "/tasks/htmx/"])
def test_the_task_lists_work_under_the_policy(browsers: Browsers, path: str) -> None:
    context = browsers.context()
    context.add_init_script(RECORD_VIOLATIONS)
    one, two = browsers.tab(None, context), browsers.tab(None, context)
    for tab in (one, two):
        response = tab.page.goto(browsers.server.url + path)
        assert "'unsafe-eval'" in response.headers["content-security-policy"]
        tab.wait_stream("/tasks/stream/")
    one.page.get_by_label("New task").fill("Water the plants")
    one.page.get_by_label("New task").press("Enter")
    for tab in (one, two):
        expect(tab.page.locator("#tasks li")).to_have_text(["Water the plants"], timeout=LIVE)
    expect(one.page.get_by_label("New task")).to_have_value("", timeout=LIVE)
    assert_clean(one, two)


def test_the_admin_works_under_the_policy(
    browsers: Browsers, make_user: Callable[..., Any]
) -> None:
    make_user("admin", is_staff=True, is_superuser=True)
    context = browsers.context()
    context.add_init_script(RECORD_VIOLATIONS)
    tab = browsers.tab("admin", context)
    response = tab.page.goto(browsers.server.url + "/admin/tickets/ticket/add/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(tab.page.locator("#content h1")).to_contain_text("Add ticket")
    tab.page.goto(browsers.server.url + "/admin/auth/user/")
    expect(tab.page.locator("#result_list")).to_be_visible()
    assert_clean(tab)
