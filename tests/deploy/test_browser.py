"""One browser, many tabs, through nginx: over HTTP/2 every tab stays live; over HTTP/1.1 the
browser's six connections per host are all held by open streams and the seventh tab waits, as
docs/deploying.md ('HTTP/2 and the six-connections limit') says.

The page is the quickstart's live task list (no login); Chromium runs through Playwright and
accepts the test's self-signed certificate. Nothing leaves the machine: the Datastar client is
served from the local copy the browser tests use.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.conftest import Stack
from tests.deploy.topology import require
from tests.e2e.conftest import CHROMIUM_ARGS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

TABS = 10


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium") or require("chromium")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's loop runs on this thread
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def browser_context(chromium: Any, origin: str) -> Any:
    """A context that trusts the test certificate and reaches nothing but ``origin`` (whose nginx
    serves the Datastar client from the collected static files, as documented)."""
    context = chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(10_000)
    context.route(lambda url: not url.startswith(origin + "/"), lambda route: route.abort())
    return context


def open_tab(context: Any, url: str) -> Any:
    page = context.new_page()
    page.goto(url + "/tasks/")
    return page


def test_ten_tabs_stay_live_over_http2(stack: Stack, chromium: Any) -> None:
    from playwright.sync_api import expect

    url = stack.nginx.url
    context = browser_context(chromium, url)
    try:
        tabs = [open_tab(context, url) for _ in range(TABS)]
        protocols = {
            t.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
            for t in tabs
        }
        assert protocols == {"h2"}, protocols
        title = "Live in ten tabs"
        tabs[-1].get_by_label("New task").fill(title)
        tabs[-1].get_by_label("New task").press("Enter")
        live = 0
        for tab in tabs:
            expect(tab.locator("#tasks")).to_contain_text(title, timeout=5000)
            live += 1
        print(f"\ntabs live over HTTP/2 in one browser: {live} of {TABS}")
    finally:
        context.close()


def test_the_seventh_tab_waits_over_http1(stack: Stack, chromium: Any) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    url = stack.nginx.http1_url
    context = browser_context(chromium, url)
    try:
        tabs = [open_tab(context, url) for _ in range(6)]
        protocols = {
            t.evaluate("performance.getEntriesByType('navigation')[0].nextHopProtocol")
            for t in tabs
        }
        assert protocols == {"http/1.1"}, protocols
        # Six open streams hold the browser's six connections to the host: any other request
        # waits, a seventh tab's page first of all.
        seventh = context.new_page()
        with pytest.raises(PlaywrightTimeout):
            seventh.goto(url + "/tasks/", timeout=3000)
        for tab in tabs[4:]:
            tab.close()  # two connections freed: the seventh tab loads, and its command goes
        seventh.wait_for_selector("#tasks", timeout=10_000)  # the waiting navigation ends
        title = "Two tabs closed, one opened"
        seventh.get_by_label("New task").fill(title)
        seventh.get_by_label("New task").press("Enter")
        for tab in [*tabs[:4], seventh]:
            expect(tab.locator("#tasks")).to_contain_text(title, timeout=5000)
    finally:
        context.close()
