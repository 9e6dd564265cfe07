"""What the whole suite shares: waiting on a condition, ports, the test database's URL, and servers
in subprocesses (``manage.py runserver`` and uvicorn).

Test modules and conftest files import from here; nothing is imported from a conftest file or from
another test module. Nothing here runs at import time: the embedded PostgreSQL starts when
:func:`database_settings` is first called.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent

#: The settings of tests/realtime (the reusable app alone) and of the demo's tests.
REALTIME_SETTINGS = "tests.realtime.settings"
DEMO_SETTINGS = "tests.project.settings"
#: The settings of the demo servers the browser, fault and soak tests start.
SERVER_SETTINGS = "tests.e2e.settings"

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], T], timeout: float = 5.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll ``condition`` until it is truthy; return its value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not met within {timeout}s")
        time.sleep(interval)


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


def database_url(settings_dict: dict[str, Any] | None = None) -> str:
    """A ``DATABASE_URL`` for ``settings_dict`` (default: the database this pytest session uses,
    i.e. the test database), for a subprocess. HOST may be a Unix socket directory."""
    if settings_dict is None:
        from django.db import connection

        settings_dict = connection.settings_dict
    user = quote(settings_dict.get("USER") or "postgres", safe="")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password, safe='')}" if password else user
    host = quote(settings_dict.get("HOST") or "", safe="")
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}@{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


def database_settings() -> dict[str, Any]:
    """``DATABASES["default"]`` for the test settings: ``DATABASE_URL`` when set, else the embedded
    PostgreSQL in ``.pgdata/`` (started, or joined if it runs, and left running)."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        import dj_database_url

        return dict(dj_database_url.parse(url))
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
        warnings.simplefilter("ignore")
        import pgserver

        info = pgserver.get_server(ROOT / ".pgdata", cleanup_mode=None).get_postmaster_info()
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port or 5432),
    }


def unmeasured(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a subprocess whose speed is under test: coverage (``make test`` measures
    subprocesses too, see pyproject.toml) would slow it down several times."""
    env.pop("COVERAGE_PROCESS_CONFIG", None)
    return env


def current_settings_module() -> str:
    """The settings module this pytest session runs with."""
    from django.conf import settings

    return str(settings.SETTINGS_MODULE)


def server_env(settings_module: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a Django subprocess started by a test: the given settings (default:
    this session's) on the test database, with this checkout importable."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = settings_module or current_settings_module()
    env["PYTHONPATH"] = str(ROOT)
    env["DATABASE_URL"] = database_url()
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set while Playwright runs; not for a server
    env.update(extra)
    return env


def start_runserver(
    port: int, *options: str, env: dict[str, str] | None = None, output: bool = True
) -> subprocess.Popen[bytes]:
    """``django-admin runserver`` on ``127.0.0.1:port`` in its own process group (stop_process
    ends it), with this session's settings; ``output=False`` discards what it prints."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "runserver",
            f"127.0.0.1:{port}",
            "--skip-checks",
            *options,
        ],
        cwd=ROOT,
        env=env or server_env(),
        stdout=subprocess.PIPE if output else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Kill a server subprocess's whole group if it still runs, and release its pipe."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


class ServerProcess:
    """uvicorn serving ``app`` on ``127.0.0.1:port`` in a subprocess of its own process group, on
    the database of ``database`` (a URL): restartable, killable.

    By default it serves the demo with the test-only URLs (:data:`SERVER_SETTINGS`), where
    ``realtime`` (JSON, as ``REALTIME_OVERRIDES``) tunes its ``REALTIME`` settings. Its output
    goes to a log file (never a pipe that could fill and block it), shown when it fails to start.
    ``measured=False`` keeps coverage out of a server whose speed is under test.
    """

    def __init__(
        self,
        database: str,
        *,
        port: int | None = None,
        realtime: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        settings_module: str = SERVER_SETTINGS,
        app: str = "tests.e2e.asgi:application",
        measured: bool = True,
        workers: int = 1,
    ) -> None:
        self.port = port or free_port()
        self.workers = workers
        self.database = database
        self.realtime = realtime or {}
        self.extra_env = env or {}
        self.settings_module = settings_module
        self.app = app
        self.measured = measured
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
            DJANGO_SETTINGS_MODULE=self.settings_module,
            PYTHONPATH=str(ROOT),
            DATABASE_URL=self.database,
            REALTIME_OVERRIDES=json.dumps(self.realtime),
        )
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set while Playwright runs; not for the server
        env.update(self.extra_env)
        return env if self.measured else unmeasured(env)

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
                    self.app,
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
        """Wait until Django answers (any status: an error page is an answer too)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    response.read()
                return
            except urllib.error.HTTPError:
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


def listener_pids(
    dsn: str, database: str, application_name: str = "realtime-listener"
) -> list[int]:
    """The pids of realtime listener connections to ``database`` (through the libpq ``dsn``)."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = %s",
            [application_name, database],
        ).fetchall()
    return [row[0] for row in rows]
