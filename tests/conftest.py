"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Block until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited early with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def server_env(**extra: str) -> dict[str, str]:
    """The environment for a server subprocess started by a test."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "tests.project.settings")
    env["DJANGO_SETTINGS_MODULE"] = "tests.project.settings"
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def start_runserver(
    port: int, *options: str, env: dict[str, str] | None = None, output: bool = True
) -> subprocess.Popen[bytes]:
    """``manage.py runserver`` on ``127.0.0.1:port`` in its own process group (stop_process ends
    it); ``output=False`` discards what it prints."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--skip-checks", *options],
        cwd=ROOT,
        env=env or server_env(),
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.fixture
def runserver() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``manage.py runserver`` on a free loopback port, in its own process group."""
    port = free_port()
    process = start_runserver(port)
    try:
        wait_for_port(port, process=process)
        yield process, port
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Kill a server subprocess's whole group if it still runs, and release its pipe."""
    if process.poll() is None:
        os.killpg(process.pid, 9)
    process.wait()
    if process.stdout is not None:
        process.stdout.close()
