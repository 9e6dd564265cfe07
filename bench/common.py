"""Shared plumbing: the bench database, server subprocesses, machine facts, result files."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "bench" / "results")
BENCH_DB = os.environ.get("BENCH_DB", "bench")
CHANNELS_VENV = ROOT / "bench" / ".venv-channels"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100, nearest rank) of ``values``, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.1f}"


def machine() -> dict[str, str]:
    """Date, machine and commit, for the header of every result."""
    import django

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "realtime"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        commit, dirty = "unknown", ""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs (nproc), {platform.machine()}, {platform.system()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "commit": commit + (" (realtime/ modified)" if dirty else ""),
        "load avg at write (1/5/15 min)": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


# The database ---------------------------------------------------------------------------------


def base_db_settings() -> dict[str, Any]:
    """The project's database settings (starting the embedded PostgreSQL if that is what it uses)."""
    from config.database import database_settings

    return database_settings(ROOT)


def conninfo(dbname: str | None = None) -> str:
    db = base_db_settings()
    parts = {
        "host": db.get("HOST") or "",
        "port": db.get("PORT") or "",
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
        "dbname": dbname or db["NAME"],
    }
    return " ".join(f"{k}='{v}'" for k, v in parts.items() if v)


def prepare_database(name: str | None = None) -> None:
    """Create the bench database (``BENCH_DB``, or ``name``) if needed and migrate it (bench
    settings)."""
    import psycopg

    name = name or BENCH_DB
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=server_env("bench.settings", BENCH_DB=name),
        check=True,
    )


def pg_connections(dbname: str = BENCH_DB) -> dict[str, int]:
    """Connections to ``dbname`` by application_name (this query's own is not counted)."""
    import psycopg

    with psycopg.connect(conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT coalesce(application_name, ''), count(*) FROM pg_stat_activity "
            "WHERE datname = %s GROUP BY 1",
            [dbname],
        ).fetchall()
    return {name or "(django)": n for name, n in rows}


def database_url() -> str:
    """This checkout's database server as a ``DATABASE_URL`` (for a server run from another
    checkout, which would otherwise start an embedded PostgreSQL of its own)."""
    from urllib.parse import quote

    db = base_db_settings()
    host = quote(db.get("HOST") or "", safe="")
    auth = quote(db.get("USER") or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def max_connections() -> int:
    import psycopg

    with psycopg.connect(conninfo(), autocommit=True) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return int(row[0]) if row else 0


# Servers --------------------------------------------------------------------------------------


def server_env(settings: str | None = None, root: Path = ROOT, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    if settings:
        env["DJANGO_SETTINGS_MODULE"] = settings
    env["PYTHONPATH"] = str(root)
    env["BENCH_DB"] = BENCH_DB
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running server subprocess (with ``workers`` > 1: a uvicorn supervisor and its workers)."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    #: Where each worker writes ``<pid> <stats port>`` (``bench.workers``); None for one process.
    workers_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def workers(self) -> list[tuple[int, int]]:
        """``(pid, stats port)`` of each worker process (empty for a single-process server)."""
        if self.workers_dir is None:
            return []
        found = []
        for path in sorted(self.workers_dir.glob("*.port")):
            with suppress(OSError, ValueError):
                pid, port = path.read_text().split()
                found.append((int(pid), int(port)))
        return found

    def pids(self) -> list[int]:
        """The processes that serve requests: the workers, or the server itself."""
        return [pid for pid, _ in self.workers()] or [self.pid]

    def rss(self) -> int:
        """Resident memory of the processes that serve requests, summed (not the supervisor)."""
        import psutil

        return sum(int(psutil.Process(pid).memory_info().rss) for pid in self.pids())

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 60.0) -> float:
        """Send ``signum`` to the server (a graceful shutdown), wait for it to exit (killing it
        after ``timeout`` s); return the seconds it took."""
        start = time.monotonic()
        with suppress(ProcessLookupError):
            self.process.send_signal(signum)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        return time.monotonic() - start

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


WORKERS_DIR_ENV = "BENCH_WORKERS_DIR"


@contextmanager
def serve(
    name: str,
    app: str,
    *,
    settings: str | None = None,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    startup: float = 60.0,
    root: Path = ROOT,
    port: int | None = None,
    module: str = "bench.serve",
    workers: int = 1,
) -> Iterator[Server]:
    """Run ``python -m bench.serve app`` in its own process group; kill the group on exit.

    ``root``: the checkout whose code the server runs (another worktree, for a before/after
    comparison in one run); ``port``: a given one (a restarted server takes its predecessor's).
    ``module`` runs another entry point instead (``python -m module --port N``, ``app`` unused),
    for a peer that is not an ASGI app. With ``workers`` > 1, uvicorn's own supervisor runs that
    many worker processes behind the one port; each worker (``bench.workers``) also answers its
    own stats on a private port, written to a directory this function waits for.
    """
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix=f"bench-{name}-", suffix=".log")[1])
    argv = [python, "-m", module]
    if module == "bench.serve":
        argv.append(app)
    argv += ["--port", str(port)]
    extra = dict(env or {})
    workers_dir = None
    if workers > 1:
        workers_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-workers-"))
        argv += ["--workers", str(workers)]
        extra[WORKERS_DIR_ENV] = str(workers_dir)
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=root,
            env={**server_env(settings, root), **extra},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(name, process, port, log, workers_dir)
    try:
        deadline = time.monotonic() + startup
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} server exited early:\n{server.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    pass
                if len(server.workers()) >= workers or workers == 1:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} server did not start:\n{server.log_tail()}") from None
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.unlink(missing_ok=True)
        if workers_dir is not None:
            shutil.rmtree(workers_dir, ignore_errors=True)


# Results --------------------------------------------------------------------------------------


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_results(
    name: str,
    title: str,
    tables: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Any]]]],
    notes: Sequence[str] = (),
    raw: Any = None,
    chart: Any = None,
) -> Path:
    """Write ``bench/results/<name>.md`` (+ ``.json`` with the raw numbers, + ``.png`` if ``chart``
    is a function drawing on a matplotlib Axes)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    facts = machine()
    parts = [f"# {title}", "", " · ".join(f"**{k}** {v}" for k, v in facts.items()), ""]
    for heading, columns, rows in tables:
        if heading:
            parts += [f"### {heading}", ""]
        parts += [markdown_table(columns, rows), ""]
    if chart is not None:
        parts += [f"![{title}]({name}.png)", ""]
    parts += [f"- {note}" for note in notes]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(parts).rstrip() + "\n")
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"machine": facts, "raw": raw}, indent=1, default=str)
    )
    if chart is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(8, 4.5))
        chart(ax)
        ax.set_title(f"{title} ({facts['date']}, {facts['commit']})", fontsize=9)
        fig.tight_layout()
        fig.savefig(RESULTS / f"{name}.png", dpi=100)
        plt.close(fig)
    print(path.read_text())
    return path
