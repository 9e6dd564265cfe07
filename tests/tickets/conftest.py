"""Fixtures for the support desk's tests: users, tickets, a live server and logged-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.test import Client

from realtime.testing import TEST_CSRF_TOKEN, LiveServer
from tickets.models import Ticket

MakeTicket = Callable[..., Ticket]


@pytest.fixture
def agent(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("agent", is_staff=True)


@pytest.fixture
def alice(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("alice")


@pytest.fixture
def bob(django_user_model: type[User]) -> User:
    return django_user_model.objects.create_user("bob")


@pytest.fixture
def make_ticket(alice: User) -> MakeTicket:
    """Create a ticket (for alice unless ``customer`` is given); it is projected by the signals."""

    def make(**fields: Any) -> Ticket:
        fields.setdefault("customer", alice)
        fields.setdefault("subject", "Printer on fire")
        fields.setdefault("message", "It was fine yesterday.")
        return Ticket.objects.create(**fields)

    return make


@pytest.fixture
def server(transactional_db: None) -> Iterator[str]:
    """The project served for real (uvicorn, ASGI) on a free port: its base URL."""
    with LiveServer() as live:
        yield live.url


def session_cookies(user: User) -> dict[str, str]:
    """Cookies of a logged-in session for ``user`` (committed, so a live server sees it)."""
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


Browser = Callable[[User, str], httpx.Client]


@pytest.fixture
def browser(server: str) -> Iterator[Browser]:
    """Open an HTTP client logged in as a user, that loaded a page and, like a Datastar action,
    sends its CSRF token as ``X-CSRFToken``."""
    clients: list[httpx.Client] = []

    def open_browser(user: User, page: str) -> httpx.Client:
        cookies = {**session_cookies(user), "csrftoken": TEST_CSRF_TOKEN}  # owns testing.tab_id()
        client = httpx.Client(base_url=server, cookies=cookies, timeout=5)
        clients.append(client)
        response = client.get(page)
        assert response.status_code == 200, response.text
        client.headers["X-CSRFToken"] = TEST_CSRF_TOKEN
        return client

    yield open_browser
    for client in clients:
        client.close()
