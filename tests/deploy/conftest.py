"""The deploy suite's stack, started once per module: PostgreSQL, PgBouncer (transaction mode),
two uvicorn processes of the demo (their listeners direct to PostgreSQL), nginx in front."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from realtime.testing import TEST_CSRF_TOKEN
from tests.deploy.client import insecure_tls
from tests.deploy.topology import Nginx, PgBouncer, require
from tests.faults.postgres import PrivatePostgres
from tests.helpers import ROOT, ServerProcess, free_port

ADD = "/test/groups/add/"


@dataclass
class Stack:
    """The running topology, and ways to write to it and read what it committed."""

    postgres: PrivatePostgres
    pgbouncer: PgBouncer
    apps: list[ServerProcess]
    nginx: Nginx
    directory: Path

    def app(
        self, *, listen_url: str | None = None, name: str = "app", port: int | None = None
    ) -> ServerProcess:
        """A demo process (not started) on PgBouncer, its listener on ``listen_url``."""
        env = {
            "DJANGO_SETTINGS_MODULE": "tests.deploy.settings",
            "LISTEN_DATABASE_URL": listen_url or self.postgres.url(),
            "CSRF_TRUSTED_ORIGINS": f"{self.nginx.url} {self.nginx.http1_url}",
            "DJANGO_DEBUG": "0",
        }
        log_dir = self.directory / name
        log_dir.mkdir(exist_ok=True)
        return ServerProcess(self.pgbouncer.database_url, port=port, env=env, log_dir=log_dir)

    def logs(self) -> str:
        """The tails of every server's log (shown when a test fails)."""
        parts = [f"== {app.log_path.name}\n{app.log_tail(40)}" for app in self.apps]
        return "\n".join([*parts, self.nginx.log(), self.pgbouncer.log()])

    def dsn(self) -> str:
        """libpq parameters of PostgreSQL itself (not through PgBouncer)."""
        settings = self.postgres.settings()
        return psycopg.conninfo.make_conninfo(
            dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=5432
        )

    def committed(self) -> set[str]:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            return {row[0] for row in conn.execute("SELECT name FROM auth_group")}

    def add(self, name: str, base: str | None = None, timeout: float = 10) -> int:
        """POST the add-group command (through nginx unless ``base`` says otherwise)."""
        base = base or self.nginx.url
        host, port = base.split("://")[1].split(":")
        tls = base.startswith("https")
        connection = (
            http.client.HTTPSConnection(host, int(port), timeout=timeout, context=insecure_tls())
            if tls
            else http.client.HTTPConnection(host, int(port), timeout=timeout)
        )
        try:
            connection.request(
                "POST",
                ADD,
                body=json.dumps({"name": name}).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Datastar-Request": "true",
                    "Cookie": f"csrftoken={TEST_CSRF_TOKEN}",
                    "X-CSRFToken": TEST_CSRF_TOKEN,
                    "Origin": base,
                    "Referer": base + "/",
                },
            )
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    require("nginx")
    require("pgbouncer")
    # Not under pytest's temporary directory: as root, PgBouncer and nginx's workers run as
    # another user, who must reach their files.
    directory = Path(tempfile.mkdtemp(prefix="rt-deploy-"))
    directory.chmod(0o755)
    postgres = PrivatePostgres()
    started: list[object] = []
    try:
        postgres.start()
        static = directory / "staticfiles"
        env = dict(
            os.environ,
            DATABASE_URL=postgres.url(),
            DJANGO_SETTINGS_MODULE="tests.e2e.settings",
            DJANGO_STATIC_ROOT=str(static),
            PYTHONPATH=str(ROOT),
        )
        for command in (["migrate"], ["collectstatic"]):
            subprocess.run(
                [sys.executable, "manage.py", *command, "--no-input", "-v", "0"],
                cwd=ROOT,
                env=env,
                check=True,
                timeout=120,
                capture_output=True,
            )
        pgbouncer = PgBouncer(directory / "pgbouncer", postgres.data)
        pgbouncer.start()
        started.append(pgbouncer)
        ports = [free_port(), free_port()]
        stack = Stack(
            postgres,
            pgbouncer,
            [],
            Nginx(directory / "nginx", ports, static=static, http1=True),
            directory,
        )
        stack.apps = [stack.app(name=f"app{i}", port=port) for i, port in enumerate(ports)]
        for app in stack.apps:
            app.start()
            started.append(app)
        stack.nginx.start()
        started.append(stack.nginx)
        yield stack
    except BaseException:
        if "stack" in locals():
            print(stack.logs())
        raise
    finally:
        for thing in reversed(started):
            if isinstance(thing, ServerProcess):
                thing.kill()
            else:
                thing.stop()  # type: ignore[attr-defined]
        postgres.destroy()
        shutil.rmtree(directory, ignore_errors=True)
