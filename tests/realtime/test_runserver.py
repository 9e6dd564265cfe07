"""``runserver`` serves ASGI with uvicorn: streams stream, and Ctrl-C never hangs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from django.test import override_settings

from tests.helpers import (
    ROOT,
    free_port,
    server_env,
    start_runserver,
    stop_process,
    wait_for_port,
)

pytestmark = pytest.mark.slow


def first_event_while_open(port: int) -> tuple[float, httpx.Response, httpx.Client]:
    """Open the test stream; return the time to its first event, with the response still open."""
    client = httpx.Client(timeout=5)
    started = time.monotonic()
    request = client.build_request("GET", f"http://127.0.0.1:{port}/test/ticks/")
    response = client.send(request, stream=True)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    for line in response.iter_lines():
        if line.startswith("data:"):
            return time.monotonic() - started, response, client
    raise AssertionError("the stream ended before its first event")


def stop_with_sigint(process: subprocess.Popen[bytes]) -> float:
    """Send Ctrl-C to the server's process group (as a terminal does); return the time to exit."""
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    process.wait(timeout=10)
    return time.monotonic() - started


@pytest.fixture
def runserver() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``runserver`` (with its reloader) on a free loopback port, in its own process group."""
    port = free_port()
    process = start_runserver(port)
    try:
        wait_for_port(port, process=process)
        yield process, port
    finally:
        stop_process(process)


def test_streams_incrementally_and_stops_on_sigint_with_reloader(
    runserver: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = runserver
    elapsed, response, client = first_event_while_open(port)
    assert elapsed < 2.0
    assert not response.is_closed

    assert stop_with_sigint(process) < 5.0
    response.close()
    client.close()


def test_stops_on_sigint_without_reloader() -> None:
    port = free_port()
    process = start_runserver(port, "--noreload")
    try:
        wait_for_port(port, process=process)
        elapsed, response, client = first_event_while_open(port)
        assert elapsed < 2.0
        assert stop_with_sigint(process) < 5.0
        response.close()
        client.close()
    finally:
        stop_process(process)


def test_banner_names_uvicorn(runserver: tuple[subprocess.Popen[bytes], int]) -> None:
    process, _port = runserver
    os.killpg(process.pid, signal.SIGINT)
    output, _ = process.communicate(timeout=10)
    assert b"Starting ASGI development server (uvicorn)" in output


def test_help_explains_shutdown_timeout() -> None:
    from realtime.management.commands.runserver import Command

    text = Command().create_parser("manage.py", "runserver").format_help()
    assert "--shutdown-timeout SECONDS" in text
    assert "With --noreload" in " ".join(text.split())
    assert "default: 3.0" in " ".join(text.split())


@pytest.mark.django_db
def test_checks_first_and_fails_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=server_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "System check identified no issues" in result.stdout
    assert "address already in use" in output


def test_serves_static_files_under_debug_or_insecure_only() -> None:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    from realtime.management.commands.runserver import Command

    def static(**options: bool) -> bool:
        return isinstance(Command().get_application(**options), ASGIStaticFilesHandler)

    assert not static()  # DEBUG is False in the test settings
    assert static(insecure_serving=True)
    assert not static(insecure_serving=True, use_static_handler=False)
    with override_settings(DEBUG=True):
        assert static()
