"""The live operations page in a real browser: linked from the admin, staff only, and it moves
(streamed numbers and the inline-SVG chart) when commands fire elsewhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers
from tests.e2e.test_desk import LIVE, PORTAL_STREAM, open_portal, send_ticket

pytestmark = pytest.mark.e2e

OPS_STREAM = "/ops/stream/"


def number(tab: Any, selector: str) -> int:
    return int(tab.page.locator(selector).inner_text().replace(",", ""))


def test_operations_page_moves_when_commands_fire(
    browsers: Browsers, make_user: Callable[..., Any]
) -> None:
    make_user("admin", is_staff=True, is_superuser=True)
    make_user("alice")
    ops = browsers.tab("admin")
    ops.page.goto(browsers.server.url + "/admin/")
    ops.page.get_by_role("link", name="Live operations").click()
    expect(ops.page.get_by_role("heading", name="Live operations")).to_be_visible()
    ops.wait_stream(OPS_STREAM)
    ops.page.evaluate("window.__loaded = true")  # gone if the page ever reloads
    commands = number(ops, "#ops-commands")
    streams = number(ops, "#ops-streams")
    assert streams >= 1  # the operations page's own stream

    portal = open_portal(browsers, "alice")
    expect(ops.page.locator("#ops-streams")).to_have_text(str(streams + 1), timeout=LIVE)
    for n in range(3):
        send_ticket(portal, f"Operations {n}")
    expect(ops.page.locator("#ops-commands")).to_have_text(str(commands + 3), timeout=LIVE)
    expect(ops.page.locator("#ops-latency")).to_contain_text("ms", timeout=LIVE)
    expect(ops.page.locator("#operations table").nth(2)).to_contain_text("create-ticket")
    # The chart's commands line left the baseline: some point is above the bottom edge.
    heights = ops.page.locator("polyline.series-commands").get_attribute("points") or ""
    ys = [float(point.split(",")[1]) for point in heights.split()]
    assert ys, heights
    assert min(ys) < 140, heights
    assert ops.page.evaluate("window.__loaded") is True
    assert portal.streams(PORTAL_STREAM)
    assert ops.errors == []


def test_operations_page_is_for_staff_only(
    browsers: Browsers, make_user: Callable[..., Any]
) -> None:
    make_user("alice")
    tab = browsers.tab("alice")
    for path in ("/ops/", "/ops/stream/", "/metrics"):
        response = tab.page.goto(browsers.server.url + path)
        assert response is not None
        assert response.status == 403, path
