"""Bad input, generated: every command endpoint of the demo is fed random JSON shapes, wrong types,
huge and empty strings, unknown ids, forbidden transitions, missing or invalid CSRF tokens, wrong
methods, wrong content types and oversized bodies.

The contract checked on every request: never a 500; a rejection is a 4xx that carries a message
(JSON ``{"message": ...}`` from the command, or Django's own page for CSRF, 403 and 400); success is
``204``; and a rejected request leaves the write model, the read model and the task list exactly as
they were, while an accepted one leaves the read model equal to the projection of the write model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=50,
    deadline=None,
    database=None,  # no .hypothesis/ directory in the checkout
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ACCEPTED = 204
REJECTIONS = {400, 403, 404, 405, 409, 413, 415, 422}
SIGNALS = ("subject", "message", "status", "note", "title", "tab")


class Huge(str):
    """A long string that Hypothesis reports briefly (a failure report stays readable)."""

    def __repr__(self) -> str:
        return f"<{len(self)} chars: {str(self[:24])!r}...>"


class HugeBytes(bytes):
    def __repr__(self) -> str:
        return f"<{len(self)} bytes: {bytes(self[:24])!r}...>"


# Values of every JSON type, nested, with the strings that matter: empty, blank, huge, markup,
# NUL, lone surrogates, valid choices.
special_text = st.sampled_from(
    [
        "",
        " ",
        "open",
        "pending",
        "closed",
        "reopened",
        "x" * 201,
        Huge("y" * 10_001),
        Huge("z" * 300_000),
        "<script>alert(1)</script>",
        "a\x00b",
        "\ud800",
        "\U0001f600" * 50,
        "Résumé ✓",
        "12345678",
        "tab_ok_123456",
    ]
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | special_text
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
shaped_objects = st.dictionaries(st.sampled_from(SIGNALS) | st.text(max_size=12), json_values)
json_bodies = (
    shaped_objects.map(json.dumps)
    | json_values.map(json.dumps)
    | st.sampled_from(
        [
            "",
            "{",
            "null",
            "[]",
            '"just a string"',
            "NaN",
            '{"subject": 1e999}',
            Huge("[" * 100_000),
            Huge('{"a":' * 50_000 + "1" + "}" * 50_000),
            '{"subject": "\\ud800 lone surrogate", "message": "\\udfff", "title": "\\ud83d"}',
        ]
    )
)
raw_bodies = st.binary(max_size=2_000) | st.sampled_from(
    [b"\xff\xfe\x00", b"subject=a&subject=b", b"\x00" * 100, HugeBytes(b"x" * 3_000_000)]
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "multipart/form-data",
        "text/plain",
        "application/xml",
        "text/event-stream",
        "",
        "application/json\r\nX-Injected: 1",
    ]
)
form_fields = st.dictionaries(
    st.sampled_from(SIGNALS) | st.text(max_size=8),
    st.lists(st.text(max_size=50) | special_text, min_size=1, max_size=3),
    max_size=5,
)
methods = st.sampled_from(["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "POST"])
csrf_modes = st.sampled_from(["valid", "missing", "wrong", "no-cookie", "malformed"])
ticket_ids = st.integers(min_value=0, max_value=2**70) | st.sampled_from(["open", "closed"])


@dataclass
class Endpoint:
    name: str
    url: Callable[[Any], str]  # gets the id drawn for the URL
    user: str  # who it is for
    roles: frozenset[str]  # who may use it
    valid: dict[str, Any]


LOGGED_IN = frozenset({"agent", "customer"})
ENDPOINTS = [
    Endpoint(
        "create-ticket",
        lambda _: "/tickets/new/",
        "customer",
        LOGGED_IN,
        {"subject": "Hi there", "message": "Help"},
    ),
    Endpoint(
        "update-status",
        lambda pk: f"/tickets/{pk}/status/",
        "agent",
        frozenset({"agent"}),
        {"status": "pending"},
    ),
    Endpoint(
        "agent-note",
        lambda pk: f"/tickets/{pk}/note/",
        "agent",
        frozenset({"agent"}),
        {"note": "Looked at it."},
    ),
    Endpoint(
        "add-task",
        lambda _: "/tasks/add/",
        "anonymous",
        LOGGED_IN | {"anonymous"},
        {"title": "Water the plants"},
    ),
]


class Desk:
    """Users, two tickets (one open, one closed) and logged-in CSRF-enforcing clients."""

    def __init__(self) -> None:
        from django.contrib.auth import get_user_model

        from tickets.models import Ticket

        users = get_user_model().objects
        self.users = {
            "agent": users.create(username="fuzz-agent", is_staff=True),
            "customer": users.create(username="fuzz-customer"),
        }
        self.tickets = {
            "open": Ticket.objects.create(
                customer=self.users["customer"], subject="Open one", message="m"
            ),
            "closed": Ticket.objects.create(
                customer=self.users["customer"], subject="Closed one", message="m", status="closed"
            ),
        }
        self.clients: dict[str, Client] = {}
        for role in ("agent", "customer", "anonymous"):
            client = Client(enforce_csrf_checks=True, raise_request_exception=False)
            if role != "anonymous":
                client.force_login(self.users[role])
            client.get("/login/")  # sets the CSRF cookie
            self.clients[role] = client

    def pk(self, drawn: int | str) -> int | str:
        return self.tickets[drawn].pk if isinstance(drawn, str) else drawn

    def send(
        self,
        endpoint: Endpoint,
        *,
        body: bytes | str = b"",
        content_type: str = "application/json",
        method: str = "POST",
        csrf: str = "valid",
        role: str | None = None,
        pk: int | str = "open",
    ) -> Any:
        client = self.clients[role or endpoint.user]
        token = client.cookies["csrftoken"].value
        headers = {"X-CSRFToken": token}
        if csrf == "missing":
            headers = {}
        elif csrf == "wrong":
            headers = {"X-CSRFToken": "a" * 32}
        elif csrf == "malformed":
            headers = {"X-CSRFToken": "not a token!"}
        saved = client.cookies.get("csrftoken")
        if csrf == "no-cookie":
            del client.cookies["csrftoken"]
        try:
            return client.generic(
                method,
                endpoint.url(self.pk(pk)),
                data=body,
                content_type=content_type,
                headers=headers,
            )
        finally:
            if saved is not None:
                client.cookies["csrftoken"] = saved


def snapshot() -> tuple[list[dict[str, Any]], ...]:
    from examples.tasks.models import Task
    from tickets.models import Ticket, TicketListItem

    return (
        list(Ticket.objects.order_by("pk").values()),
        list(TicketListItem.objects.order_by("pk").values()),
        list(Task.objects.order_by("pk").values()),
    )


def assert_projection_consistent() -> None:
    from tickets.models import Ticket, TicketListItem
    from tickets.projector import make_preview

    rows = {row.pk: row for row in TicketListItem.objects.all()}
    tickets = list(Ticket.objects.all())
    assert set(rows) == {t.pk for t in tickets}
    for ticket in tickets:
        row = rows[ticket.pk]
        assert (row.subject, row.status, row.has_note, row.preview, row.updated_at) == (
            ticket.subject,
            ticket.status,
            bool(ticket.agent_note.strip()),
            make_preview(ticket.message),
            ticket.updated_at,
        )


def check(desk: Desk, send: Callable[[], Any]) -> int:
    """Send, then check the contract; return the status."""
    before = snapshot()
    response = send()
    status = response.status_code
    assert status != 500, response.content[:500]
    assert status == ACCEPTED or status in REJECTIONS, (status, response.content[:300])
    if status == ACCEPTED:
        assert response.content == b""
        assert_projection_consistent()
        return status
    assert snapshot() == before, f"a rejected request ({status}) changed the database"
    if response.request["REQUEST_METHOD"] == "HEAD":
        return status  # no body, by definition
    if response.get("Content-Type", "").startswith("application/json"):
        assert str(json.loads(response.content).get("message", "")).strip()
    else:
        assert response.content.strip(), f"{status} without a message"
    return status


@pytest.fixture
def desk() -> Desk:
    return Desk()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_valid_input_is_accepted(desk: Desk, endpoint: Endpoint) -> None:
    body = json.dumps({**endpoint.valid, "tab": "tab_ok_123456"})
    assert check(desk, lambda: desk.send(endpoint, body=body)) == ACCEPTED


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_random_json(desk: Desk, endpoint: Endpoint) -> None:
    @FUZZ
    @given(body=json_bodies, pk=ticket_ids)
    def fuzz(body: str, pk: int | str) -> None:
        check(desk, lambda: desk.send(endpoint, body=body, pk=pk))

    fuzz()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_random_bodies_and_content_types(desk: Desk, endpoint: Endpoint) -> None:
    @FUZZ
    @given(body=raw_bodies, content_type=content_types)
    def fuzz(body: bytes, content_type: str) -> None:
        check(desk, lambda: desk.send(endpoint, body=body, content_type=content_type))

    fuzz()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_random_form_data(desk: Desk, endpoint: Endpoint) -> None:
    from urllib.parse import urlencode

    @FUZZ
    @given(fields=form_fields, pk=ticket_ids)
    def fuzz(fields: dict[str, list[str]], pk: int | str) -> None:
        body = urlencode(fields, doseq=True, errors="surrogatepass")
        form = "application/x-www-form-urlencoded"
        check(desk, lambda: desk.send(endpoint, body=body, content_type=form, pk=pk))

    fuzz()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_methods_csrf_and_users(desk: Desk, endpoint: Endpoint) -> None:
    @FUZZ
    @given(
        method=methods, csrf=csrf_modes, role=st.sampled_from(["agent", "customer", "anonymous"])
    )
    def fuzz(method: str, csrf: str, role: str) -> None:
        body = json.dumps(endpoint.valid)
        status = check(
            desk, lambda: desk.send(endpoint, body=body, method=method, csrf=csrf, role=role)
        )
        safe = method in ("GET", "HEAD", "OPTIONS", "TRACE")
        if csrf != "valid" and not safe:
            assert status == 403  # CSRF is checked first, on unsafe methods only
        elif role not in endpoint.roles:
            assert status == 403  # then who is asking
        elif method != "POST":
            assert status == 405
        if status == 405:
            assert "POST" in desk.send(endpoint, method=method).get("Allow", "")

    fuzz()


def test_forbidden_transitions_and_unknown_tickets(desk: Desk) -> None:
    status_endpoint = ENDPOINTS[1]

    @FUZZ
    @given(status=st.sampled_from(["open", "pending", "closed"]), pk=ticket_ids)
    def fuzz(status: str, pk: int | str) -> None:
        body = json.dumps({"status": status})
        got = check(desk, lambda: desk.send(status_endpoint, body=body, pk=pk))
        if pk == "closed" and status != "closed":
            assert got == 409
        elif isinstance(pk, int) and pk not in {t.pk for t in desk.tickets.values()}:
            assert got == 404

    fuzz()


MALFORMED_SIGNALS = [
    Huge("[" * 30_000),
    "[" * 3_000,
    '{"a":' * 2_000 + "1" + "}" * 2_000,
    Huge('{"a":' * 20_000 + "1" + "}" * 20_000),
    "{",
    "null",
    "[1, 2]",
    '"a string"',
    "\udcff",
    # Lone surrogates (escaped in JSON): one parser for commands and streams refuses them both.
    '{"filter": {"status": "\\ud800", "page": "\\udfff"}}',
    # Larger than the parser's bound (4096 bytes).
    Huge('{"filter": {"status": "' + "x" * 20_000 + '"}}'),
]
ODD_SIGNALS = [
    '{"filter": {"status": "open", "ticket": 1e999}}',
    '{"filter": [1, 2, 3], "tab": {"x": 1}}',
    '{"filter": {"page": -5, "ticket": "9999999999999999999999"}}',
    '{"filter": {"status": "' + "x" * 3_000 + '"}}',
]


@pytest.mark.django_db(transaction=True)
def test_streams_refuse_malformed_signals(tmp_path: Any) -> None:
    """Streams read signals from the query string: malformed ones are a 400, odd ones no 500."""
    from urllib.parse import quote

    from django.contrib.auth import get_user_model

    from realtime.testing import open_stream
    from tests.helpers import ServerProcess, database_url

    agent = get_user_model().objects.create(username="stream-agent", is_staff=True)
    client = Client()
    client.force_login(agent)
    cookies = {"sessionid": client.cookies["sessionid"].value}
    with ServerProcess(database_url(), log_dir=tmp_path) as server:
        for path in ("/desk/stream/", "/my/stream/", "/tasks/stream/"):
            for raw in MALFORMED_SIGNALS + ODD_SIGNALS:
                query = quote(raw, safe="", errors="surrogatepass")
                stream = open_stream(f"{server.url}{path}?datastar={query}", cookies=cookies)
                try:
                    if raw in MALFORMED_SIGNALS:
                        assert stream.status == 400, (path, repr(raw), stream.status)
                    else:
                        assert stream.status == 200, (path, repr(raw), stream.status)
                        event = stream.next_event(timeout=5)
                        assert event.event == "datastar-patch-elements"
                finally:
                    stream.close()
        assert "Traceback" not in server.log_tail(400), server.log_tail()
