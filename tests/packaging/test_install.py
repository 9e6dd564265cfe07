"""The package, as a user meets it: built, installed into a fresh virtualenv, used by the quickstart.

``python -m build`` makes the sdist and the wheel; their contents and metadata are checked. The
wheel is then installed into a new virtualenv (no site packages of this checkout), a project is
made with ``django-admin startproject``, and ``docs/quickstart.md`` is applied to it: every code
block whose first line names a file is written there as it is (the settings block is added at the
end of the generated settings, as the page says). The project is migrated on a database of its own
(given as ``DATABASE_URL``, which the quickstart's ``realtime.embedded.database()`` prefers to the
embedded server), served with ``manage.py runserver`` on loopback, and a task POSTed to its command
must reach an open stream.
Then the examples of ``docs/testing.md`` are written into the same project and must pass there.

Nothing here imports the demo project; the docs' text is the only source of the app and its tests.
"""

from __future__ import annotations

import ast
import email.parser
import html
import http.client
import http.cookies
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import tomllib
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import django
import psycopg
import pytest

from tests.helpers import ROOT, database_url, free_port, stop_process, wait_for_port

QUICKSTART = ROOT / "docs" / "quickstart.md"
TESTING = ROOT / "docs" / "testing.md"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DIST_NAME = PROJECT["name"].replace("-", "_")
VERSION = PROJECT["version"]

#: Fenced blocks whose first line is a comment naming the file they belong to.
_BLOCK = re.compile(r"^```[a-z]*\n(?P<body>.*?)^```", re.MULTILINE | re.DOTALL)
_MARKER = re.compile(r"^(?:#|\{#)\s*(?P<path>[\w./-]+\.(?:py|html|ini))\s*(?:#\})?\s*$")

#: The shell steps of the docs this test takes (each must appear in the docs as written).
COMMANDS = (
    'python -m pip install "django-realtime-cqrs[embedded]"',
    "python -m pip install build",
    "django-admin startproject mysite",
    "python manage.py startapp tasks",
    "python manage.py makemigrations tasks",
    "python manage.py migrate",
    "python manage.py runserver",
)
TESTING_COMMANDS = ("python -m pip install pytest pytest-django", "python -m pytest")

#: Every bounded wait of the test, in seconds.
BUILD_TIMEOUT = 120
INSTALL_TIMEOUT = 120
COMMAND_TIMEOUT = 60
EVENT_TIMEOUT = 5


def doc_files(doc: Path) -> dict[str, str]:
    """A page's code blocks that name their file: ``{path: text}`` (marker line kept)."""
    files: dict[str, str] = {}
    for block in _BLOCK.finditer(doc.read_text()):
        body = block["body"]
        marker = _MARKER.match(body.split("\n", 1)[0])
        if marker:
            assert marker["path"] not in files, f"two blocks for {marker['path']}"
            files[marker["path"]] = body
    return files


def _assigned_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def append_settings(original: str, block: str) -> str:
    """``original`` with ``block`` added at its end, as the quickstart says to do."""
    return original.rstrip("\n") + "\n\n\n" + block


def code_lines(text: str) -> int:
    """Lines a reader writes: neither blank nor the block's file-name marker."""
    lines = [line for line in text.splitlines() if line.strip()]
    return len(lines) - 1 if lines and _MARKER.match(lines[0]) else len(lines)


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float) -> str:
    """Run a command to completion; fail the test with its output when it fails."""
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The sdist and the wheel (built from the sdist), as ``python -m build`` makes them."""
    outdir = tmp_path_factory.mktemp("dist")
    run(
        [sys.executable, "-m", "build", "--outdir", str(outdir), str(ROOT)],
        cwd=outdir,
        timeout=BUILD_TIMEOUT,
    )
    [wheel] = outdir.glob("*.whl")
    [sdist] = outdir.glob("*.tar.gz")
    return Dist(wheel, sdist)


# --- what the docs promise (fast) -----------------------------------------------------------


def test_quickstart_names_every_file_and_step() -> None:
    files = doc_files(QUICKSTART)
    assert set(files) == {
        "mysite/settings.py",
        "mysite/urls.py",
        "tasks/models.py",
        "tasks/views.py",
        "tasks/templates/tasks/index.html",
        "tasks/templates/tasks/task_list.html",
    }
    for path, text in files.items():
        if path.endswith(".py"):
            compile(text, path, "exec")
    settings = ast.parse(files["mysite/settings.py"])
    names = [name for node in settings.body for name in _assigned_names(node)]
    assert names == ["INSTALLED_APPS", "DATABASES", "ASGI_APPLICATION"]
    [apps] = [n.value for n in settings.body if _assigned_names(n) == ["INSTALLED_APPS"]]  # type: ignore[attr-defined]
    assert isinstance(apps, ast.List)
    first = apps.elts[0]
    assert isinstance(first, ast.Constant)
    assert first.value == "realtime"  # above staticfiles, whose runserver cannot stream
    text = QUICKSTART.read_text()
    for command in COMMANDS:
        assert f"\n{command}\n" in text, f"the quickstart no longer says `{command}`"


def test_testing_guide_names_its_files_and_steps() -> None:
    files = doc_files(TESTING)
    assert set(files) == {"pytest.ini", "tasks/test_tasks.py"}
    compile(files["tasks/test_tasks.py"], "tasks/test_tasks.py", "exec")
    text = TESTING.read_text()
    for command in TESTING_COMMANDS:
        assert f"\n{command}\n" in text, f"testing.md no longer says `{command}`"


def test_the_live_task_list_is_at_most_20_lines_of_python() -> None:
    files = doc_files(QUICKSTART)
    python = [path for path in files if path.endswith(".py") and path != "mysite/settings.py"]
    assert sum(code_lines(files[path]) for path in python) <= 20
    assert code_lines(files["mysite/settings.py"]) <= 4
    text = QUICKSTART.read_text()
    assert "You write 20 lines of Python" in text
    assert "4 lines of settings" in text


def test_append_settings_adds_the_block_at_the_end() -> None:
    original = 'DEBUG = True\nINSTALLED_APPS = ["a"]\n'
    block = '# f\nINSTALLED_APPS = ["realtime", *INSTALLED_APPS]\n'
    merged = append_settings(original, block)
    assert merged == original + "\n\n" + block
    namespace: dict[str, Any] = {}
    exec(merged, namespace)
    assert namespace["INSTALLED_APPS"] == ["realtime", "a"]


# --- the built distributions ----------------------------------------------------------------


def source_files() -> set[str]:
    """Every file of the app in this checkout, as a wheel names it."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "realtime").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


@pytest.mark.slow
def test_wheel_holds_the_app_and_its_metadata(dist: Dist) -> None:
    dist_info = f"{DIST_NAME}-{VERSION}.dist-info"
    assert dist.wheel.name == f"{DIST_NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(dist.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = email.parser.Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())

    strays = sorted(n for n in names if not n.startswith(("realtime/", f"{dist_info}/")))
    assert not strays, f"the wheel holds more than the app: {strays}"
    assert "realtime/py.typed" in names
    assert "realtime/__init__.py" in names
    missing = sorted(source_files() - names)
    assert not missing, f"files of realtime/ missing from the wheel: {missing}"
    for folder in ("templates", "static"):
        shipped = {n for n in source_files() if n.startswith(f"realtime/{folder}/")}
        assert shipped <= names

    assert metadata["Name"] == PROJECT["name"]
    assert metadata["Version"] == VERSION
    classifiers = metadata.get_all("Classifier") or []
    assert "Framework :: Django :: 5.2" in classifiers
    assert "Framework :: Django :: 6.1" in classifiers
    assert metadata["License-Expression"] or metadata["License"], "no license in METADATA"
    assert f"{dist_info}/licenses/LICENSE" in names
    assert metadata["Requires-Python"]


def test_version_matches_the_package() -> None:
    import realtime

    assert realtime.__version__ == VERSION


@pytest.mark.slow
def test_sdist_holds_changelog_license_and_docs(dist: Dist) -> None:
    base = f"{DIST_NAME}-{VERSION}"
    assert dist.sdist.name == f"{base}.tar.gz"
    with tarfile.open(dist.sdist) as sdist:
        names = set(sdist.getnames())
    for path in (
        "CHANGELOG.md",
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "realtime/__init__.py",
        "docs/quickstart.md",
    ):
        assert f"{base}/{path}" in names, f"{path} missing from the sdist"
    assert not [n for n in names if n.startswith(f"{base}/tests/")], "tests leaked into the sdist"


# --- the quickstart, live ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def database() -> Iterator[dict[str, Any]]:
    """A fresh, empty database on the test session's PostgreSQL server; dropped afterwards."""
    from django.db import connection

    server = connection.settings_dict
    params = {
        "host": server["HOST"] or None,
        "port": server["PORT"] or None,
        "user": server["USER"] or None,
        "password": server["PASSWORD"] or None,
    }
    name = f"realtime_quickstart_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": server["USER"],
            "PASSWORD": server["PASSWORD"],
            "HOST": server["HOST"],
            "PORT": server["PORT"],
        }
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
            # pytest-django's test database too, should the project's own test run have died.
            for stale in (name, f"test_{name}"):
                admin.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')


def user_environment(venv: Path) -> dict[str, str]:
    """A shell as a user of the new project has it: the venv first, nothing of this checkout."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {
            "DJANGO_SETTINGS_MODULE",
            "PYTHONPATH",
            "PYTHONHOME",
            "PYTHONWARNINGS",
            "DATABASE_URL",
            "VIRTUAL_ENV",
        }
    }
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Page:
    cookies: dict[str, str]
    csrf_token: str
    tab: str
    stream_url: str
    command_url: str


def open_page(port: int) -> Page:
    """GET the page as a browser would, and read what its Datastar attributes wire up."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=EVENT_TIMEOUT)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read().decode()
        assert response.status == 200, body[:2000]
        jar = http.cookies.SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar.load(header)
    finally:
        conn.close()
    text = html.unescape(body)
    stream = re.search(r"""@get\(["']([^"']+)["']""", text)
    command = re.search(r"""@post\(["']([^"']+)["']""", text)
    signals = re.search(r"""data-signals=["']\{(.*?)\}["']""", text)
    assert stream, f"the page opens no stream:\n{body}"
    assert command, f"the page posts no command:\n{body}"
    assert signals, f"the page sets no signals:\n{body}"
    # A JavaScript object literal of string values: {tab: "...", _csrf: "..."}.
    values = dict(re.findall(r"""(\w+):\s*["']([^"']*)["']""", signals[1]))
    cookies = {key: morsel.value for key, morsel in jar.items()}
    assert "csrftoken" in cookies, "the page set no CSRF cookie"
    return Page(cookies, values["_csrf"], values["tab"], stream[1], command[1])


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{key}={value}" for key, value in cookies.items())


@dataclass(frozen=True)
class Event:
    event: str
    data: str


class RawStream:
    """A Server-Sent-Events response read off a plain socket (HTTP/1.1, chunked or not)."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=EVENT_TIMEOUT)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""  # bytes off the socket, not yet decoded
        self.body = b""  # decoded body bytes, not yet parsed into events
        self.chunked: bool | None = None  # unknown until the head is read
        deadline = time.monotonic() + EVENT_TIMEOUT
        if not self._read_until(lambda: b"\r\n\r\n" in self.raw, deadline):
            raise AssertionError(f"no response head within {EVENT_TIMEOUT}s")
        head, _, self.raw = self.raw.partition(b"\r\n\r\n")
        status, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status.split()[1])
        self.headers = {
            key.strip().lower(): value.strip()
            for key, _, value in (line.partition(":") for line in header_lines)
        }
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._decode()

    def _read_until(self, done: Callable[[], bool], deadline: float) -> bool:
        """Read until ``done()``; ``False`` when the deadline passes first."""
        while not done():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return False
            if not data:
                raise AssertionError("the server closed the stream")
            self.raw += data
            self._decode()
        return True

    def _decode(self) -> None:
        """Move whole body bytes from ``raw`` to ``body`` (undoing chunked framing)."""
        if self.chunked is None:
            return
        if not self.chunked:
            self.body, self.raw = self.body + self.raw, b""
            return
        while (end := self.raw.find(b"\r\n")) != -1:
            size = int(self.raw[:end].split(b";")[0], 16)
            if len(self.raw) < end + 2 + size + 2:
                return
            self.body += self.raw[end + 2 : end + 2 + size]
            self.raw = self.raw[end + 2 + size + 2 :]

    def next_event(self, predicate: Callable[[Event], bool], timeout: float) -> Event:
        """The next event that satisfies ``predicate``, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            while (end := self.body.find(b"\n\n")) != -1:
                block, self.body = self.body[:end], self.body[end + 2 :]
                event = parse_event(block.decode())
                if event is not None and predicate(event):
                    return event
            if not self._read_until(lambda: b"\n\n" in self.body, deadline):
                raise AssertionError(f"no matching event within {timeout}s")

    def close(self) -> None:
        self.sock.close()


def parse_event(block: str) -> Event | None:
    """One SSE event (comments and heartbeats give ``None``)."""
    name, data = "message", []
    for line in block.split("\n"):
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return Event(name, "\n".join(data)) if data else None


def is_patch(event: Event) -> bool:
    return event.event == "datastar-patch-elements"


@dataclass(frozen=True)
class Project:
    root: Path  # the directory startproject ran in
    site: Path  # the project (manage.py)
    python: str  # the fresh virtualenv's interpreter
    env: dict[str, str]


@pytest.fixture(scope="module")
def project(
    dist: Dist, database: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """The quickstart, done by the book in a fresh virtualenv with the built wheel installed."""
    root = tmp_path_factory.mktemp("quickstart")
    venv = root / "venv"
    python = str(venv / "bin" / "python")
    run([sys.executable, "-m", "venv", str(venv)], cwd=root, timeout=COMMAND_TIMEOUT)
    env = user_environment(venv)
    # The Django of this test session, so each leg of the matrix (5.2 LTS, 6.x) checks its own.
    pip = [python, "-m", "pip", "install", "--quiet", f"Django=={django.__version__}"]
    run([*pip, str(dist.wheel)], cwd=root, env=env, timeout=INSTALL_TIMEOUT)

    # The documented steps, as written (see COMMANDS).
    django_admin = str(venv / "bin" / "django-admin")
    run([django_admin, "startproject", "mysite"], cwd=root, env=env, timeout=COMMAND_TIMEOUT)
    site = root / "mysite"
    run([python, "manage.py", "startapp", "tasks"], cwd=site, env=env, timeout=COMMAND_TIMEOUT)
    write_doc_files(site, doc_files(QUICKSTART))
    # The database: this session's PostgreSQL server, as the "bring your own" path gives it.
    env["DATABASE_URL"] = database_url(database)
    for step in (["makemigrations", "tasks"], ["migrate"], ["check", "--fail-level", "WARNING"]):
        run([python, "manage.py", *step], cwd=site, env=env, timeout=COMMAND_TIMEOUT)
    yield Project(root, site, python, env)
    shutil.rmtree(venv, ignore_errors=True)


def write_doc_files(site: Path, files: dict[str, str]) -> None:
    """Write the docs' named blocks into the project (settings blocks are merged)."""
    for path, text in files.items():
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path == "mysite/settings.py":
            text = append_settings(target.read_text(), text)
        target.write_text(text)


@pytest.mark.slow
def test_quickstart_project_goes_live(project: Project) -> None:
    python, site, env = project.python, project.site, project.env
    port = free_port()
    log_path = project.root / "runserver.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [python, "manage.py", "runserver", f"127.0.0.1:{port}"],
            cwd=site,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        stream: RawStream | None = None
        try:
            wait_for_port(port, timeout=COMMAND_TIMEOUT, process=server)
            page = open_page(port)
            signals = quote(json.dumps({"tab": page.tab}))
            stream = RawStream(
                port,
                f"{page.stream_url}?datastar={signals}",
                {
                    "Accept": "text/event-stream",
                    "Datastar-Request": "true",
                    "Cookie": cookie_header(page.cookies),
                },
            )
            assert stream.status == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            first = stream.next_event(is_patch, EVENT_TIMEOUT)
            assert 'id="tasks"' in first.data
            assert "hello" not in first.data

            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=EVENT_TIMEOUT)
            try:
                conn.request(
                    "POST",
                    page.command_url,
                    body=json.dumps({"tab": page.tab, "title": "hello"}),
                    headers={
                        "Content-Type": "application/json",
                        "Datastar-Request": "true",
                        "X-CSRFToken": page.csrf_token,
                        "Cookie": cookie_header(page.cookies),
                    },
                )
                response = conn.getresponse()
                answer = response.read()
            finally:
                conn.close()
            assert response.status == 204, answer[:2000]

            live = stream.next_event(lambda e: is_patch(e) and "hello" in e.data, EVENT_TIMEOUT)
            assert "<li>hello</li>" in live.data
        except BaseException:
            print(log_path.read_text(errors="replace"))  # the server's side of a failure
            raise
        finally:
            if stream is not None:
                stream.close()
            stop_process(server)


@pytest.mark.slow
def test_testing_guide_passes_in_the_quickstart_project(project: Project) -> None:
    pip = [project.python, "-m", "pip", "install", "--quiet", "pytest", "pytest-django"]
    run(pip, cwd=project.root, env=project.env, timeout=INSTALL_TIMEOUT)
    write_doc_files(project.site, doc_files(TESTING))
    output = run(
        [project.python, "-m", "pytest", "-p", "no:cacheprovider", "-q"],
        cwd=project.site,
        env=project.env,
        timeout=COMMAND_TIMEOUT * 2,
    )
    tests = doc_files(TESTING)["tasks/test_tasks.py"].count("\ndef test_")
    assert f"{tests} passed" in output, output
