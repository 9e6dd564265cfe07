"""Real-browser fixtures: Debian's Chromium through Playwright, a uvicorn server in a subprocess
on the test database, and one browser context per user.

Nothing leaves the machine and nothing is downloaded: the pages load Datastar from the app's own
static files (served by the test server), and every request to another host is aborted, never
answered (:attr:`Browsers.blocked` lists them).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.helpers import ROOT, ServerProcess, database_url

# Playwright's sync API keeps an event loop running on the test's thread; without this, Django
# refuses the database work of pytest-django's teardown ("cannot call this from an async context").
# The tests' own ORM calls happen outside Playwright's loop; the servers under test are separate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "correct horse battery staple 42"
#: The endings of the stream URLs a :class:`Tab` follows (the live admin's end in ``live/``).
STREAM_PATHS = ("/stream/", "/live/")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_path() -> str | None:
    return shutil.which("chromium")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for the browser tests (each test opens its own contexts)."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps its (idle) event loop marked as running on this thread, which
    # Django takes for an async context; the tests' ORM calls are plain synchronous code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
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


@pytest.fixture
def server(transactional_db: None, tmp_path: Path) -> Iterator[ServerProcess]:
    """The demo (plus test URLs) served by uvicorn in a subprocess, on the test database."""
    process = ServerProcess(database_url(), log_dir=tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.kill()


@dataclass
class Tab:
    """A page in a browser context logged in as one user, with what went wrong in it.

    It also follows the page's streams (paths ending in ``/stream/``, or ``/live/`` for the live
    admin's) through the DevTools protocol: :meth:`wait_stream` knows when a stream's response has
    delivered data (the server subscribed and sent its first render), which no DOM change shows
    when that render equals the first paint.
    """

    page: Any
    user: str
    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    requests: dict[str, str] = field(default_factory=dict)  # DevTools request id -> URL path
    received: dict[str, int] = field(default_factory=dict)  # request id -> bytes of data
    stream_order: list[str] = field(default_factory=list)  # request ids, in the order sent

    def follow_streams(self, context: Any) -> None:
        session = context.new_cdp_session(self.page)
        session.on("Network.requestWillBeSent", self._on_request)
        session.on("Network.dataReceived", self._on_data)
        session.send("Network.enable")

    def _on_request(self, event: dict[str, Any]) -> None:
        path = urlsplit(event["request"]["url"]).path
        if path.endswith(STREAM_PATHS):
            self.requests[event["requestId"]] = path
            self.stream_order.append(event["requestId"])

    def _on_data(self, event: dict[str, Any]) -> None:
        if event["requestId"] in self.requests:
            self.received[event["requestId"]] = (
                self.received.get(event["requestId"], 0) + event["dataLength"]
            )

    def streams(self, path: str) -> list[int]:
        """Bytes received by each request of the stream at ``path``, oldest first."""
        return [self.received.get(r, 0) for r in self.stream_order if self.requests[r] == path]

    def wait_stream(self, path: str, *, newer_than: int = 0, timeout: float = 10.0) -> None:
        """Wait until a request to ``path`` after the first ``newer_than`` ones has sent data."""
        deadline = time.monotonic() + timeout
        while not any(self.streams(path)[newer_than:]):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.user}'s stream {path} sent nothing within {timeout}s"
                    f" (requests: {self.streams(path)})"
                )
            self.page.wait_for_timeout(25)  # lets Playwright deliver DevTools events


@dataclass
class Browsers:
    """Opens logged-in pages, one browser context per user, and closes them all at the end."""

    browser: Any
    server: ServerProcess
    contexts: list[Any] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # URLs of other hosts, aborted

    def context(self) -> Any:
        context = self.browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(10_000)
        context.set_default_navigation_timeout(15_000)
        origin = self.server.url + "/"
        context.route(lambda url: not url.startswith(origin), self._offline)
        self.contexts.append(context)
        return context

    def _offline(self, route: Any) -> None:
        self.blocked.append(route.request.url)
        route.abort("internetdisconnected")

    def tab(self, username: str | None, context: Any = None) -> Tab:
        """A new page, logged in as ``username`` (in a new context unless one is given)."""
        context = context or self.context()
        page = context.new_page()
        tab = Tab(page, username or "anonymous")
        tab.follow_streams(context)
        page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
        page.on("console", lambda msg: tab.console.append(f"{msg.type}: {msg.text}"))
        if username is not None and not any(
            c["name"] == "sessionid" for c in context.cookies(self.server.url)
        ):
            page.goto(self.server.url + "/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", PASSWORD)
            with page.expect_navigation():
                page.click("button[type=submit]")
            assert "/login/" not in page.url, f"{username} could not log in"
        return tab

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


@pytest.fixture
def browsers(browser: Any, server: ServerProcess) -> Iterator[Browsers]:
    opened = Browsers(browser, server)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def make_user(transactional_db: None) -> Callable[..., Any]:
    """Create a user with the shared test password: ``make_user("ann", is_staff=True)``."""
    from django.contrib.auth import get_user_model

    def make(username: str, **extra: Any) -> Any:
        user = get_user_model()(username=username, **extra)
        user.password = fast_password_hash()
        user.save()
        return user

    return make


def fast_password_hash() -> str:
    """``PASSWORD`` hashed with MD5: logging in costs the server nothing (see settings.py)."""
    from django.contrib.auth.hashers import MD5PasswordHasher

    return MD5PasswordHasher().encode(PASSWORD, "e2etests")


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
