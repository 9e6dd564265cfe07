"""A private PostgreSQL server for tests that restart it (the embedded ``pgserver`` binaries).

The suite's own database server is shared by everything in the session (and by other processes
on the machine), so a test that restarts PostgreSQL gets a server of its own: same binaries as the
embedded server, its data in a temporary directory, listening on a Unix socket in that directory
only (no TCP port). When running as root the server runs as the ``pgserver`` user, as ``pgserver``
itself does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote


def _bin(name: str) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset in containers
        from pgserver._commands import POSTGRES_BIN_PATH

    return str(Path(POSTGRES_BIN_PATH) / name)


def _prepare_root_user(user: str) -> Any:
    """As root, PostgreSQL must run as another user: the one ``pgserver`` uses, with read and
    execute access to the binaries (what ``pgserver`` itself arranges before its first start)."""
    import stat
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
        from pgserver.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

    entry = ensure_user_exists(user)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    return entry


class PrivatePostgres:
    """``initdb`` + ``pg_ctl start`` in a temporary directory; ``restart()``; ``destroy()``."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="rt-pg-"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.data.mkdir(mode=0o700)
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "pgserver"
            entry = _prepare_root_user(self.user)
            os.chown(self.data, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> None:
        kwargs: dict[str, Any] = {"user": self.user} if self.user else {}
        # Output to a file, never a pipe: pg_ctl leaves the server holding inherited descriptors.
        with (self.base / "commands.log").open("ab") as log:
            subprocess.run(
                args,
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
                cwd=self.base,
                **kwargs,
            )

    def start(self) -> PrivatePostgres:
        self._run(
            _bin("initdb"),
            "-D",
            str(self.data),
            "--auth=trust",
            "--encoding=utf8",
            "-U",
            "postgres",
        )
        self._run(*self._start_command())
        return self

    def _start_command(self) -> tuple[str, ...]:
        return (
            _bin("pg_ctl"),
            "-D",
            str(self.data),
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.data}",
            "-o",
            "-c fsync=off",
            "-l",
            str(self.data / "log"),
            "start",
        )

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is dropped; waits until it accepts again."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "restart")

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: every connection is dropped; nothing accepts until started."""
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")

    def start_again(self) -> None:
        """Start the server stopped by :meth:`stop` (same data, same socket)."""
        self._run(*self._start_command())

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._run(_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def settings(self, name: str = "postgres") -> dict[str, Any]:
        return {"NAME": name, "USER": "postgres", "HOST": str(self.data), "PORT": 5432}

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@{quote(str(self.data), safe='')}:5432/{name}"

    def log(self) -> str:
        try:
            return (self.data / "log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""
