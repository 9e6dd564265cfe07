"""User text is data, never client code: typed in a real browser, saved and shown exactly as typed.

Datastar rewrites ``@name(`` into an action call anywhere in an expression, string literals
included, so a note pasted into ``data-signals:note="'...'"`` came back changed (``ping @bob(re:
invoice)`` as ``ping __action("bob",evt,re: invoice)``) and saving wrote the change back. Every
user-editable field of the demo gets text full of what Datastar, JavaScript templates and HTML
treat as code, and must come back unchanged, in the database and on screen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Browsers, Tab
from tests.e2e.test_desk import (
    DESK_STREAM,
    LIVE,
    desk_row,
    open_desk,
    open_portal,
    portal_row,
    send_ticket,
)

pytestmark = pytest.mark.e2e

#: What a Datastar expression, a JavaScript template or HTML would take for code.
CODE = (
    "ping @bob(re: invoice) $20 ${x} `whoami` @post('/logout/') $_csrf"
    " </script><script>window.__pwned = 1</script> ' \" \\ ; 🖕JS_DS🚀 &amp;"
)
SUBJECT = "Refund " + CODE
MESSAGE = "First line " + CODE + "\nSecond line @bob( $20"
NOTE = "ping @bob(re: invoice)\n" + CODE + "\n\n`${x}`"  # (forms strip outer blanks)
CUSTOMER = "eve@bob($20)${x}`x`</script>"
TASK = "Pay " + CODE


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``probe`` (a database read) until it returns something truthy (how fast is not
    what these tests check: a busy machine may take a while to save)."""
    import time

    deadline = time.monotonic() + timeout
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: nothing within {timeout}s")
        time.sleep(0.05)
    return value


def assert_no_code_ran(*tabs: Tab) -> None:
    for tab in tabs:
        assert tab.page.evaluate("typeof window.__pwned") == "undefined", f"script ran: {tab.user}"
        assert tab.errors == [], f"{tab.user}: {tab.errors}"


def test_ticket_fields_and_notes_come_back_as_typed(
    browsers: Browsers, make_user: Callable[..., Any]
) -> None:
    from tickets.models import Ticket

    make_user("agent", is_staff=True)
    make_user("agent2", is_staff=True)
    make_user(CUSTOMER)  # an admin may give a user any name; the desk shows it
    desk = open_desk(browsers)
    portal = open_portal(browsers, CUSTOMER)

    send_ticket(portal, SUBJECT, MESSAGE)
    ticket = wait_for("the ticket", lambda: Ticket.objects.filter(subject=SUBJECT).first())
    assert (ticket.subject, ticket.message) == (SUBJECT, MESSAGE)
    expect(portal_row(portal, "Refund ping").locator(".subject")).to_have_text(
        SUBJECT, timeout=LIVE
    )
    expect(desk_row(desk, "Refund ping").locator(".subject")).to_have_text(SUBJECT, timeout=LIVE)

    streams = len(desk.streams(DESK_STREAM))
    desk_row(desk, "Refund ping").get_by_role("button").click()
    card = desk.page.locator(".detail-card")
    expect(card.locator("#detail-title")).to_contain_text(SUBJECT, timeout=LIVE)
    desk.wait_stream(DESK_STREAM, newer_than=streams)  # the detail came from a new stream
    expect(card.locator(".meta strong")).to_have_text(CUSTOMER)
    assert card.locator(".message").inner_text() == MESSAGE

    # The agent's note: saved as typed, and the form the stream renders next holds it as typed.
    textarea = desk.page.locator(".note-form textarea")
    textarea.fill(NOTE)
    desk.page.get_by_role("button", name="Save note").click()
    wait_for("the note", lambda: Ticket.objects.get(pk=ticket.pk).agent_note == NOTE)
    expect(desk_row(desk, "Refund ping").locator(".note-flag")).to_be_visible(timeout=LIVE)
    expect(textarea).to_have_value(NOTE, timeout=LIVE)
    assert desk.page.evaluate("document.querySelector('.note-form textarea').value") == NOTE

    # Another agent opens it fresh; saving it again unchanged writes nothing different.
    other = open_desk(browsers, "agent2")
    desk_row(other, "Refund ping").get_by_role("button").click()
    other_textarea = other.page.locator(".note-form textarea")
    expect(other_textarea).to_have_value(NOTE, timeout=LIVE)
    with other.page.expect_response(lambda r: r.url.endswith("/note/")) as saved:
        other.page.get_by_role("button", name="Save note").click()
    assert saved.value.status == 204
    assert Ticket.objects.get(pk=ticket.pk).agent_note == NOTE
    other_textarea.fill(NOTE + "again @bob(")
    other.page.get_by_role("button", name="Save note").click()
    wait_for(
        "the second note",
        lambda: Ticket.objects.get(pk=ticket.pk).agent_note == NOTE + "again @bob(",
    )
    expect(textarea).to_have_value(NOTE + "again @bob(", timeout=LIVE)
    assert_no_code_ran(desk, portal, other)


@pytest.mark.parametrize("path", ["/tasks/", "/tasks/htmx/"])
def test_task_titles_come_back_as_typed(browsers: Browsers, path: str) -> None:
    from examples.tasks.models import Task

    tab = browsers.tab(None)
    tab.page.goto(browsers.server.url + path)
    expect(tab.page.locator("#tasks")).to_contain_text("Nothing to do yet.")
    tab.wait_stream("/tasks/stream/")
    tab.page.get_by_label("New task").fill(TASK)
    tab.page.get_by_label("New task").press("Enter")
    expect(tab.page.locator("#tasks li")).to_have_text([TASK], timeout=LIVE)
    assert [t.title for t in Task.objects.all()] == [TASK]
    assert_no_code_ran(tab)
