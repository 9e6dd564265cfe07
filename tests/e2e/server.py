"""A real uvicorn server in a subprocess, pointed at the test database (restartable, killable).

Used by the browser tests, the fault tests and the soak test. The server runs the demo project
with the test-only URLs (``tests.e2e.settings``); ``REALTIME_OVERRIDES`` (JSON) tunes its
``REALTIME`` settings. Its output goes to a log file (never a pipe that could fill and block it),
shown when a test fails to start it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.conftest import ROOT, free_port, wait_for_port

SETTINGS_MODULE = "tests.e2e.settings"


def database_url(settings_dict: dict[str, Any]) -> str:
    """A ``DATABASE_URL`` for the database of ``settings_dict`` (HOST may be a socket dir)."""
    user = quote(settings_dict.get("USER") or "postgres", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = quote(settings_dict.get("HOST") or "", safe="")
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


def test_database_url() -> str:
    """The ``DATABASE_URL`` of the database this pytest session uses (the test database)."""
    from django.db import connection

    return database_url(connection.settings_dict)


test_database_url.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


class ServerProcess:
    """``uvicorn config.asgi:application`` on ``127.0.0.1:port`` in its own process group."""

    def __init__(
        self,
        database: str,
        *,
        port: int | None = None,
        realtime: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        workers: int = 1,
    ) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.database = database
        self.realtime = realtime or {}
        self.extra_env = env or {}
        self.log_dir = log_dir or Path(tempfile.gettempdir())
        self.log_path = self.log_dir / f"uvicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE=SETTINGS_MODULE,
            PYTHONPATH=str(ROOT),
            DATABASE_URL=self.database,
            REALTIME_OVERRIDES=json.dumps(self.realtime),
        )
        env.pop("REALTIME_DATASTAR_URL", None)
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set while Playwright runs; not for the server
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 30.0) -> ServerProcess:
        """Start the server and wait until it answers HTTP."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.starts} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "tests.e2e.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--lifespan",
                    "off",
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--timeout-graceful-shutdown",
                    "3",
                    *(["--workers", str(self.workers)] if self.workers > 1 else []),
                ],
                cwd=ROOT,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, timeout=timeout, process=self.process)
            self._wait_http(timeout)
        except BaseException as exc:
            self.kill()
            raise RuntimeError(f"the server did not start:\n{self.log_tail()}") from exc
        return self

    def _wait_http(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/login/", timeout=5) as response:
                    response.read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash: no graceful shutdown)."""
        self._signal(signal.SIGKILL)

    def stop(self, timeout: float = 8.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it takes too long."""
        if self.process is None or self.process.poll() is not None:
            self._reap()
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        self.kill()

    def restart(self, timeout: float = 30.0) -> None:
        """Kill the server and start a new one on the same port."""
        self.kill()
        self.start(timeout)

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        self._reap()

    def _reap(self) -> None:
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)

    def rss(self) -> int:
        """Resident memory of the server process, in bytes."""
        import psutil

        return int(psutil.Process(self.pid).memory_info().rss)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
