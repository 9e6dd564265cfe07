"""Clients that stop reading: the server closes their connections for real, quietly.

A real uvicorn process, a page big enough to fill the socket buffers, and ten clients that open
the stream and never read. After ``STALL_TIMEOUT`` the server must have closed every one of their
connections (no socket of the server process left connected to them) and logged one WARNING line
per client, with no traceback.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.faults.test_faults import STREAM, add
from tests.helpers import ServerProcess, database_url

pytestmark = pytest.mark.slow

STALLED = 10
STALL = 1.0


def server_sockets_to(server: ServerProcess, ports: set[int]) -> int:
    """How many of the server process's TCP sockets are connected to one of ``ports``."""
    return sum(
        1
        for conn in psutil.Process(server.pid).net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port in ports
    )


@pytest.fixture
def stalled() -> Iterator[list[socket.socket]]:
    clients: list[socket.socket] = []
    yield clients
    for client in clients:
        client.close()


def test_stalled_clients_are_disconnected_for_real(
    transactional_db: None, tmp_path: Path, stalled: list[socket.socket]
) -> None:
    from django.contrib.auth.models import Group

    # ~0.5 MB per render: a client that does not read fills its socket buffers at once.
    Group.objects.bulk_create(Group(name=f"group {i:05d} " + "x" * 80) for i in range(5000))
    with ServerProcess(
        database_url(), log_dir=tmp_path, realtime={"STALL_TIMEOUT": STALL}
    ) as server:
        for _ in range(STALLED):
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", server.port))
            client.sendall(
                f"GET {STREAM} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode()
            )
            stalled.append(client)
        ports = {client.getsockname()[1] for client in stalled}
        # A stream subscribes (and its process starts listening) before its first render: once
        # a client has the first event's bytes waiting (peeked at, not read; the headers come
        # earlier), its stream is woken by the changes below. A fixed pause was not always
        # enough on a busy machine: the changes were published before the listener listened,
        # the stream's first render held them all, it never blocked and was never found stalled.
        deadline = time.monotonic() + 30
        for client in stalled:
            client.settimeout(30)
            while b"data:" not in client.recv(4096, socket.MSG_PEEK):
                assert time.monotonic() < deadline, "no stream sent its first render in 30 s"
                time.sleep(0.02)
        assert server_sockets_to(server, ports) == STALLED
        # Changes keep coming until the buffers are full (a render is ~0.5 MB, a socket's send
        # buffer up to 4 MB) and every stalled connection is closed. A fixed dozen was not
        # always enough on a busy machine: a stream coalesced several changes into one render.
        changes = 0
        deadline = time.monotonic() + 60
        while server_sockets_to(server, ports) and time.monotonic() < deadline:
            add(server.url, f"change {changes}")
            changes += 1
            time.sleep(0.1)
        left = server_sockets_to(server, ports)
        log = server.log_tail(2000)
        print(f"server sockets left after {STALLED} stalled clients and {changes} changes: {left}")
        assert left == 0, f"{left} connections of stalled clients still open:\n{log[-3000:]}"
        assert log.count("client stopped reading") == STALLED, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert "Exception in ASGI application" not in log
