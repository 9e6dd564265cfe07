"""Presence in a real browser: two agents on one ticket see each other arrive, type and leave."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers
from tests.e2e.test_desk import (
    LIVE,
    assert_sound,
    desk_row,
    make_ticket,
    open_desk,
    open_portal,
    portal_row,
    select_ticket,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def people(make_user: Any) -> dict[str, Any]:
    return {
        "ann": make_user("ann", first_name="Ann", is_staff=True),
        "ben": make_user("ben", first_name="Ben", is_staff=True),
        "alice": make_user("alice"),
    }


def test_two_agents_on_one_ticket(browsers: Browsers, people: dict[str, Any]) -> None:
    make_ticket(people["alice"], "Cannot log in")
    ann = open_desk(browsers, "ann")
    portal = open_portal(browsers, "alice")
    select_ticket(ann, "Cannot log in")
    agents = ann.page.locator(".ticket-agents")
    looking = portal_row(portal, "Cannot log in").locator(".agent-looking")
    expect(looking).to_have_text("An agent is looking at your ticket", timeout=LIVE)
    # Ann's own chip is in the shared render, hidden by her page.
    expect(agents.locator("li", has_text="Ann")).to_be_hidden()

    ben = open_desk(browsers, "ben")
    select_ticket(ben, "Cannot log in")
    expect(agents).to_contain_text("Ben is viewing", timeout=LIVE)
    expect(ben.page.locator(".ticket-agents")).to_contain_text("Ann is viewing", timeout=LIVE)
    expect(desk_row(ann, "Cannot log in").locator(".row-agent", has_text="Ben")).to_be_visible()

    ben.page.locator(".note-form textarea").press_sequentially("Looking into it", delay=20)
    expect(agents).to_contain_text("Ben is writing a note…", timeout=LIVE)
    # No keystroke for a while: the state lapses by itself (4 s after the last report).
    expect(agents).to_contain_text("Ben is viewing", timeout=8_000)

    ben.page.close()
    expect(agents.locator("li", has_text="Ben")).to_have_count(0, timeout=LIVE)
    assert "Ann" not in portal.page.locator("#my-tickets").inner_text()
    assert_sound(ann, portal)
