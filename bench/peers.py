"""The systems compared: this project, its naive variant, the floor, and Channels."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from bench.common import BENCH_DB, CHANNELS_VENV, ROOT, Server, base_db_settings, serve, server_env

CHANNELS_PACKAGES = [
    "channels",
    "channels-postgres",
    "uvicorn[standard]",
    "psycopg[binary]",
    "Django>=5.2,<7",
]


@dataclass(frozen=True)
class Peer:
    name: str
    description: str
    start: Callable[[], AbstractContextManager[Server]]
    stream: str  # path (ws:// for WebSockets)
    command: str
    reset: str
    stats: str | None = None

    @property
    def websocket(self) -> bool:
        return self.stream.startswith("ws:")

    def stream_url(self, server: Server) -> str:
        if self.websocket:
            return f"ws://127.0.0.1:{server.port}{self.stream[3:]}"
        return server.url + self.stream


def realtime_server(env: dict[str, str] | None = None) -> AbstractContextManager[Server]:
    return serve("realtime", "config.asgi:application", settings="bench.settings", env=env)


def floor_server() -> AbstractContextManager[Server]:
    return serve("floor", "bench.floor_app:app")


def channels_db_json() -> str:
    db = base_db_settings()
    keys = ("ENGINE", "USER", "PASSWORD", "HOST", "PORT", "CONN_MAX_AGE")
    return json.dumps({**{k: db[k] for k in keys if k in db}, "NAME": BENCH_DB})


_channels_ready: list[str] = []


def prepare_channels() -> str | None:
    """Create ``bench/.venv-channels`` on first use and migrate channels-postgres's table.

    Returns None when ready, else the reason it could not be made to work.
    """
    if _channels_ready:
        return None
    python = CHANNELS_VENV / "bin" / "python"
    try:
        if not python.exists():
            print("creating bench/.venv-channels (first use) ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(CHANNELS_VENV)], check=True)
            subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *CHANNELS_PACKAGES],
                check=True,
                timeout=600,
            )
        subprocess.run(
            [str(python), "-m", "django", "migrate", "--no-input", "-v", "0"],
            cwd=ROOT,
            env=server_env("bench.channels_app.settings", BENCH_DB_JSON=channels_db_json()),
            check=True,
            timeout=120,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not prepare the Channels virtualenv: {exc}"
    _channels_ready.append("ok")
    return None


@contextmanager
def channels_server() -> Iterator[Server]:
    with serve(
        "channels",
        "bench.channels_app.asgi:application",
        settings="bench.channels_app.settings",
        python=str(CHANNELS_VENV / "bin" / "python"),
        env={"BENCH_DB_JSON": channels_db_json()},
    ) as server:
        yield server


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
    "naive": Peer(
        "naive",
        "this project with render key None: one render per subscriber (listener still shared)",
        realtime_server,
        "/bench/naive/",
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
    ),
}
