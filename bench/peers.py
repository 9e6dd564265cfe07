"""The systems compared: this project (one process or several), its naive variants, the floor,
Channels, django-eventstream and Stario.

Channels, django-eventstream and Stario run from virtualenvs of their own (``bench/.venv-channels``,
``bench/.venv-eventstream``, ``bench/.venv-stario``), created on first use: they are never the
project's dependencies.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    BENCH_DB,
    CHANNELS_VENV,
    ROOT,
    Server,
    base_db_settings,
    conninfo,
    database_url,
    serve,
    server_env,
)
from bench.serve import GC_ENV

COMMON_PACKAGES = ("uvicorn[standard]", "psycopg[binary]", "Django>=5.2,<7")


@dataclass(frozen=True)
class Peer:
    name: str
    description: str
    #: Starts a server (``port=`` asks for a given port: a restart takes its predecessor's).
    start: Callable[..., AbstractContextManager[Server]]
    stream: str  # path (ws:// for WebSockets)
    command: str
    reset: str
    stats: str | None = None
    #: Run before the peer starts (e.g. create its virtualenv); returns why it cannot run, or None.
    prepare: Callable[[], str | None] | None = None

    @property
    def websocket(self) -> bool:
        return self.stream.startswith("ws:")

    def stream_url(self, server: Server) -> str:
        if self.websocket:
            return f"ws://127.0.0.1:{server.port}{self.stream[3:]}"
        return server.url + self.stream


def realtime_server(
    env: dict[str, str] | None = None, port: int | None = None
) -> AbstractContextManager[Server]:
    return serve(
        "realtime", "config.asgi:application", settings="bench.settings", env=env, port=port
    )


#: Another checkout of this project (e.g. a worktree of main) run as the peer
#: ``realtime-before``: before/after figures from one run, on the same machine and database.
BEFORE_ENV = "BENCH_BEFORE"


def before_root() -> Path | None:
    value = os.environ.get(BEFORE_ENV, "").strip()
    return Path(value).resolve() if value else None


def before_server(port: int | None = None) -> AbstractContextManager[Server]:
    root = before_root()
    if root is None:
        raise RuntimeError(f"set {BEFORE_ENV} to the checkout to compare with")
    return serve(
        "realtime-before",
        "config.asgi:application",
        settings="bench.settings",
        root=root,
        port=port,
        env={"DATABASE_URL": database_url()},
    )


def _before_missing() -> str | None:
    root = before_root()
    if root is None:
        return f"not run: set {BEFORE_ENV}=<another checkout> to compare with it"
    if not (root / "realtime").is_dir():
        return f"not run: {root} is not a checkout of this project"
    return None


def floor_server(port: int | None = None) -> AbstractContextManager[Server]:
    return serve("floor", "bench.floor_app:app", port=port)


def realtime_workers_server(
    workers: int = 2, env: dict[str, str] | None = None
) -> AbstractContextManager[Server]:
    """This project under ``uvicorn --workers N``: N processes behind one port (bench.workers)."""
    return serve(
        f"realtime-{workers}workers",
        "bench.workers:application",
        settings="bench.settings",
        env=env,
        workers=workers,
    )


def bench_db_json() -> str:
    """The bench database's settings as JSON, for a peer's own settings (``BENCH_DB_JSON``)."""
    db = base_db_settings()
    keys = ("USER", "PASSWORD", "HOST", "PORT", "CONN_MAX_AGE")
    # Django's own backend: realtime.db.postgresql needs psycopg-pool, which a peer's venv lacks.
    engine = {"ENGINE": "django.db.backends.postgresql"}
    return json.dumps({**engine, **{k: db[k] for k in keys if k in db}, "NAME": BENCH_DB})


#: The virtualenvs prepared by this process (each is migrated once per run).
_ready: set[Path] = set()


def find_python(minimum: tuple[int, int]) -> str | None:
    """This interpreter if it is at least ``minimum``, else a newer one on PATH or under pyenv."""
    if sys.version_info >= minimum:
        return sys.executable
    for minor in range(14, minimum[1] - 1, -1):
        name = f"python{minimum[0]}.{minor}"
        pyenv = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{minimum[0]}.{minor}.*")))
        for candidate in [shutil.which(name), *(f"{v}/bin/{name}" for v in reversed(pyenv))]:
            if candidate and Path(candidate).exists():
                return candidate
    return None


@dataclass(frozen=True)
class PeerVenv:
    """A virtualenv of a peer's own (bench/.venv-*): its packages are never the project's."""

    path: Path
    packages: tuple[str, ...]
    #: The peer's Django settings module, migrated on first use (None: not a Django peer; the
    #: bench database is migrated by the project's own settings).
    settings: str | None
    #: The oldest Python the peer's packages support.
    python_min: tuple[int, int] = (3, 11)

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    def prepare(self) -> str | None:
        """Create the virtualenv on first use and migrate the bench database with its settings.

        Returns None when ready, else the reason it could not be made to work.
        """
        if self.path in _ready:
            return None
        name = self.path.relative_to(ROOT)
        try:
            if not Path(self.python).exists():
                base = find_python(self.python_min)
                if base is None:
                    wanted = ".".join(map(str, self.python_min))
                    return f"could not prepare {name}: it needs Python {wanted} or newer"
                print(f"creating {name} (first use, {base}) ...", file=sys.stderr)
                subprocess.run([base, "-m", "venv", str(self.path)], check=True)
                subprocess.run(
                    [self.python, "-m", "pip", "install", "--quiet", *self.packages],
                    check=True,
                    timeout=600,
                )
            if self.settings is None:
                _ready.add(self.path)
                return None
            subprocess.run(
                [self.python, "-m", "django", "migrate", "--no-input", "-v", "0"],
                cwd=ROOT,
                env=server_env(self.settings, BENCH_DB_JSON=bench_db_json()),
                check=True,
                timeout=120,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"could not prepare {name}: {exc}"
        _ready.add(self.path)
        return None

    def serve(self, name: str, app: str) -> AbstractContextManager[Server]:
        """Run ``app`` with this virtualenv's Python, on the bench database."""
        assert self.settings is not None
        return serve(
            name,
            app,
            settings=self.settings,
            python=self.python,
            env={"BENCH_DB_JSON": bench_db_json()},
        )


CHANNELS = PeerVenv(
    CHANNELS_VENV,
    ("channels", "channels-postgres", *COMMON_PACKAGES),
    "bench.channels_app.settings",
)
EVENTSTREAM = PeerVenv(
    ROOT / "bench" / ".venv-eventstream",
    ("django-eventstream", "psycopg-pool", *COMMON_PACKAGES),
    "bench.eventstream_app.settings",
)


STARIO = PeerVenv(
    ROOT / "bench" / ".venv-stario",
    # uvloop: Stario runs on the loop it is started on; uvicorn runs the other peers on uvloop.
    ("stario[uvloop]>=5.1,<5.2", "psycopg[binary]", "psycopg-pool"),
    None,
    python_min=(3, 12),  # Stario 5.1 requires Python >= 3.12
)


def channels_server() -> AbstractContextManager[Server]:
    return CHANNELS.serve("channels", "bench.channels_app.asgi:application")


def eventstream_server() -> AbstractContextManager[Server]:
    return EVENTSTREAM.serve("eventstream", "bench.eventstream_app.asgi:application")


def stario_server() -> AbstractContextManager[Server]:
    return serve(
        "stario",
        "",
        module="bench.stario_app",
        python=STARIO.python,
        env={"BENCH_PG_CONNINFO": conninfo(BENCH_DB)},
    )


PEERS = {
    "floor": Peer(
        "floor",
        "bare ASGI app, one pre-rendered patch written to every stream",
        floor_server,
        "/stream",
        "/publish",
        "/reset",
    ),
    "realtime": Peer(
        "realtime",
        "this project: one LISTEN per process, one render per distinct view",
        realtime_server,
        "/test/groups/stream/",
        "/test/groups/add/",
        "/bench/reset/",
        "/bench/stats/",
    ),
    "realtime-before": Peer(
        "realtime-before",
        f"this project as another checkout has it (${BEFORE_ENV}), for before/after in one run",
        before_server,
        "/test/groups/stream/",
        "/test/groups/add/",
        "/bench/reset/",
        "/bench/stats/",
        prepare=_before_missing,
    ),
    "naive": Peer(
        "naive",
        "this project with render key None: one render per subscriber (listener still shared)",
        realtime_server,
        "/bench/naive/",
        "/test/groups/add/",
        "/bench/reset/",
        "/bench/stats/",
    ),
    "naive-listen": Peer(
        "naive-listen",
        "the naive design without this project's relay: one LISTEN connection and one render per "
        "subscriber per notification (bench/views.py NaiveListenStream)",
        realtime_server,
        "/bench/naive-listen/",
        "/test/groups/add/",
        "/bench/reset/",
        "/bench/stats/",
    ),
    "realtime-2workers": Peer(
        "realtime-2workers",
        "this project under uvicorn --workers 2: two processes behind one port, each with its "
        "own LISTEN connection and renders, the streams split between them by the kernel; "
        "renders, streams and RSS summed over both workers (bench/workers.py)",
        realtime_workers_server,
        "/test/groups/stream/",
        "/test/groups/add/",
        "/bench/reset/",
        "/bench/stats/",
    ),
    "realtime-default-gc": Peer(
        "realtime-default-gc",
        "this project with Python's default garbage-collector thresholds (every other server, and "
        "the load generator, run with the tuned ones: see docs/deploying.md)",
        lambda: realtime_server({GC_ENV: ""}),
        "/test/groups/stream/",
        "/test/groups/add/",
        "/bench/reset/",
        "/bench/stats/",
    ),
    "realtime-metrics": Peer(
        "realtime-metrics",
        "this project with Prometheus metrics on: prometheus-client's multiprocess mode "
        "(PROMETHEUS_MULTIPROC_DIR), each process copying its counters every second",
        lambda: realtime_server(
            {"PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="realtime-metrics-")}
        ),
        "/test/groups/stream/",
        "/test/groups/add/",
        "/bench/reset/",
        "/bench/stats/",
    ),
    "channels": Peer(
        "channels",
        "Django Channels + channels-postgres, WebSocket consumers rendering on each message",
        channels_server,
        "ws:/ws/groups/",
        "/add/",
        "/reset/",
        prepare=CHANNELS.prepare,
    ),
    "eventstream": Peer(
        "eventstream",
        "django-eventstream (SSE for Django, in-process, no Redis): one send_event per command, "
        "rendered once; a single process (without Redis or a GRIP proxy such as Pushpin it "
        "cannot fan out across processes)",
        eventstream_server,
        "/events/",
        "/add/",
        "/reset/",
        "/stats/",
        prepare=EVENTSTREAM.prepare,
    ),
    "stario": Peer(
        "stario",
        "Stario 5.1 (its own HTTP server, on uvloop): Datastar SSE and its in-process Relay; "
        "each command re-reads the rows and renders once, the Relay hands the HTML to every "
        "stream (bench/stario_app); a single process: Relay does not cross processes, so two "
        "would need a carrier feeding each process's Relay (a LISTEN connection per process "
        "with pg_notify in the command's transaction, or a Redis or NATS subscription)",
        stario_server,
        "/stream",
        "/add",
        "/reset",
        "/stats",
        prepare=STARIO.prepare,
    ),
}
