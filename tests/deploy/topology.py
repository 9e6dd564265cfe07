"""The production topology, for real: nginx (TLS, HTTP/1.1 and HTTP/2) in front of uvicorn
processes of the demo, PgBouncer in transaction mode between them and PostgreSQL.

Everything runs on loopback, on free ports, with generated configuration in a temporary
directory. nginx's configuration is the one ``docs/deploying.md`` recommends, read out of the
page; only the ports, the upstream servers and the certificate paths are filled in (and a
missing one fails the test, so the page cannot drift from what is tested).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, free_port, wait_for_port

DOC = ROOT / "docs" / "deploying.md"


def require(binary: str) -> str:
    """The path of ``binary``; a missing one fails in CI (``.ci/run`` installs it), else skips."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        message = f"{binary} is not installed (apt-get install {binary}; .ci/run does it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost (key and certificate files)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            require("openssl"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


#: The MIME types every nginx installation ships (Debian: nginx-common).
NGINX_MIME_TYPES = "/etc/nginx/mime.types"


def documented_nginx_config() -> str:
    """The ``nginx`` block of docs/deploying.md's reverse-proxy section, as written."""
    text = DOC.read_text()
    section = text[text.index("## The reverse proxy") :]
    match = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert match, "docs/deploying.md: no nginx block in 'The reverse proxy'"
    return match.group(1)


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"docs/deploying.md's nginx block no longer has {old!r} once"
    return text.replace(old, new)


def nginx_config(
    upstreams: list[int],
    *,
    port: int,
    cert: Path,
    key: Path,
    static: Path,
    http1_port: int | None = None,
) -> str:
    """The documented server and upstream blocks for this test's ports and certificate.

    ``http1_port``: a second copy of the server block that speaks HTTP/1.1 only (no ALPN h2),
    to show what browsers do without HTTP/2.
    """
    config = documented_nginx_config()
    server = re.search(r"server 127\.0\.0\.1:8000([^;]*);", config)
    assert server, "docs/deploying.md's nginx block no longer has 'server 127.0.0.1:8000'"
    servers = "\n    ".join(f"server 127.0.0.1:{p}{server.group(1)};" for p in upstreams)
    config = config.replace(server.group(0), servers)
    config = _replace_once(config, "listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;")
    config = _replace_once(config, "/etc/ssl/mysite.pem", str(cert))
    config = _replace_once(config, "/etc/ssl/mysite.key", str(key))
    config = _replace_once(config, "/srv/mysite/staticfiles/", f"{static}/")
    if http1_port is not None:
        block = config[config.index("server {") :]
        config += "\n" + block.replace(
            f"listen 127.0.0.1:{port} ssl http2;", f"listen 127.0.0.1:{http1_port} ssl;"
        )
    return config


def _as_root_run_as() -> str | None:
    """As root, the servers run as an unprivileged user: the one the private PostgreSQL uses."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        pwd.getpwnam("pgserver")
        return "pgserver"
    return "nobody"


class Daemon:
    """A server subprocess in its own process group, with its log in ``directory``."""

    name = "daemon"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with (self.directory / "output.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            wait_for_port(self.port, timeout=20, process=self.process)
        except BaseException as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{self.log()}") from exc

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)

    def log(self) -> str:
        parts = []
        for path in sorted(self.directory.glob("*.log")):
            parts.append(f"== {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


class Nginx(Daemon):
    """nginx with the documented configuration, TLS on :attr:`port` (HTTP/2 and HTTP/1.1)."""

    name = "nginx"

    def __init__(
        self, directory: Path, upstreams: list[int], *, static: Path, http1: bool = False
    ) -> None:
        super().__init__(directory)
        self.http1_port = free_port() if http1 else None
        cert, key = self_signed_certificate(directory)
        user = _as_root_run_as()
        temp = {
            name: directory / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        }
        for path in temp.values():
            path.mkdir(exist_ok=True)
            if user:
                shutil.chown(path, user)
        (directory / "nginx.conf").write_text(
            "\n".join(
                [
                    f"user {user};" if user else "",
                    "worker_processes 1;",
                    "worker_rlimit_nofile 16384;",
                    f"pid {directory / 'nginx.pid'};",
                    f"error_log {directory / 'error.log'} warn;",
                    "events { worker_connections 8192; }",
                    "http {",
                    # As Debian's own nginx.conf does (the documented blocks go inside it):
                    # without the types, static files go out as text/plain and browsers refuse
                    # the Datastar module.
                    f"    include {NGINX_MIME_TYPES};",
                    "    default_type application/octet-stream;",
                    "    access_log off;",
                    *(f"    {name}_temp_path {path};" for name, path in temp.items()),
                    nginx_config(
                        upstreams,
                        port=self.port,
                        cert=cert,
                        key=key,
                        static=static,
                        http1_port=self.http1_port,
                    ),
                    "}",
                ]
            )
        )

    def command(self) -> list[str]:
        return [
            require("nginx"),
            "-p",
            str(self.directory),
            "-c",
            str(self.directory / "nginx.conf"),
            "-g",
            "daemon off;",
        ]

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def http1_url(self) -> str:
        return f"https://127.0.0.1:{self.http1_port}"


class PgBouncer(Daemon):
    """PgBouncer in front of the PostgreSQL listening in ``socket_dir`` (database ``postgres``)."""

    name = "pgbouncer"

    def __init__(self, directory: Path, socket_dir: Path, *, pool_mode: str = "transaction"):
        super().__init__(directory)
        user = _as_root_run_as()
        (directory / "userlist.txt").write_text('"postgres" ""\n')
        (directory / "pgbouncer.ini").write_text(
            f"""[databases]
postgres = host={socket_dir} port=5432 dbname=postgres user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "userlist.txt"}
pool_mode = {pool_mode}
max_client_conn = 500
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
"""
        )
        if user:
            shutil.chown(directory, user)
            for path in directory.iterdir():
                shutil.chown(path, user)
        self.user = user

    def command(self) -> list[str]:
        return [
            require("pgbouncer"),
            *(["-u", self.user] if self.user else []),
            str(self.directory / "pgbouncer.ini"),
        ]

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
