"""The minimal example in a real browser: a task added in one tab shows in the other."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers

pytestmark = pytest.mark.e2e


def test_task_list_syncs_across_two_tabs(browsers: Browsers) -> None:
    context = browsers.context()
    one, two = browsers.tab(None, context), browsers.tab(None, context)
    for tab in (one, two):
        tab.page.goto(browsers.server.url + "/tasks/")
        expect(tab.page.locator("#tasks")).to_contain_text("Nothing to do yet.")
        tab.page.evaluate("window.__loaded = true")  # gone if the page reloads

    one.page.get_by_label("New task").fill("Water the plants")
    one.page.get_by_label("New task").press("Enter")
    expect(two.page.locator("#tasks li")).to_have_text(["Water the plants"], timeout=2000)
    expect(one.page.locator("#tasks li")).to_have_text(["Water the plants"], timeout=2000)
    expect(one.page.get_by_label("New task")).to_have_value("")

    two.page.get_by_label("New task").fill("Call the plumber")
    two.page.get_by_role("button", name="Add").click()
    expected = ["Water the plants", "Call the plumber"]
    expect(one.page.locator("#tasks li")).to_have_text(expected, timeout=2000)
    expect(two.page.locator("#tasks li")).to_have_text(expected, timeout=2000)

    for tab in (one, two):
        assert tab.page.evaluate("window.__loaded") is True, "the page reloaded"
        assert tab.errors == []
