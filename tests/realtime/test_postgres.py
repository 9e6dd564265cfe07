"""The PostgreSQL relay: one LISTEN connection per process, reconnection and resync after a gap."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from realtime import stats
from realtime.conf import get_config
from realtime.relay.hub import Hub
from realtime.relay.postgres import PostgresBackend, listener_conninfo
from realtime.testing import LiveServer, open_stream
from tests.helpers import wait_for
from tests.realtime.helpers import (
    GROUPS,
    RawStreams,
    add_group,
    listener_backends,
    override_realtime,
    shows,
)


def test_listener_conninfo_copies_django_settings_and_names_itself() -> None:
    info = listener_conninfo("default")
    params = connection.get_connection_params()
    assert info["dbname"] == params["dbname"]
    assert info["application_name"] == "realtime-listener"
    assert info["keepalives"] == 1
    # Only libpq parameters travel (Django's own options such as cursor_factory do not).
    assert "cursor_factory" not in info
    assert "context" not in info
    assert all(value not in (None, "") for value in info.values())


def test_one_listen_connection_for_200_streams(server: LiveServer) -> None:
    # Counted by this process's connects, not by the database's listeners: other servers' may be
    # there too (or closing), whatever ran before.
    connects = stats()["listener_connects"]
    with RawStreams(server.port, GROUPS, 200, signals={"n": 1}) as streams:
        streams.wait(lambda raw: b'class="empty"' in raw, timeout=20)
        assert stats()["subscriptions"]["groups"] == 200
        assert stats()["listener_connects"] - connects <= 1  # none if it listened already
        assert listener_pid(server) in listener_backends()
        add_group("all")
        streams.wait(lambda raw: b"<li>all</li>" in raw, timeout=20)
        assert stats()["listener_connects"] - connects <= 1


def test_idle_listener_proves_its_connection_alive(server: LiveServer) -> None:
    with open_stream(server.url + GROUPS) as stream:
        stream.next_event(timeout=5)

        def probed() -> bool:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT query FROM pg_stat_activity "
                    "WHERE application_name = 'realtime-listener' AND datname = current_database()"
                )
                return any(row[0] == "SELECT 1" for row in cursor.fetchall())

        # HEARTBEAT is 1 s in the test settings: an idle listener sends a probe every second.
        wait_for(probed, timeout=4)


def test_stopping_the_server_closes_its_listener(transactional_db: None) -> None:
    before = len(listener_backends())
    with LiveServer() as live, open_stream(live.url + GROUPS) as stream:
        stream.next_event(timeout=5)
        assert len(listener_backends()) == before + 1
    wait_for(lambda: len(listener_backends()) == before, timeout=5)


def listener_pid(live: LiveServer) -> int | None:
    """The backend pid of ``live``'s listener connection (None while it is not connected)."""
    from realtime.relay.registry import all_hubs

    [hub] = [hub for hub in all_hubs() if hub.loop is live._loop]
    conn = getattr(hub.backend, "connection", None)
    return None if conn is None else int(conn.info.backend_pid)


@pytest.mark.django_db(transaction=True)
def test_killed_listener_reconnects_and_every_stream_resyncs() -> None:
    # A slow first retry leaves a gap wide enough to commit into, whatever the machine's load.
    with override_realtime(RECONNECT_DELAY=1.0), LiveServer() as live:
        streams = [open_stream(live.url + GROUPS, signals={"n": n}) for n in range(3)]
        try:
            for stream in streams:
                stream.next_event(shows(), timeout=5)
            pid = listener_pid(live)
            assert pid in listener_backends()
            before = stats()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            wait_for(lambda: pid not in listener_backends() and listener_pid(live) is None)
            # Committed while this server listens to nothing: its NOTIFY is lost there...
            add_group("during-the-gap")
            # ...yet every stream shows it once the listener is back.
            for stream in streams:
                stream.next_event(shows("during-the-gap"), timeout=10)
            after = stats()
            assert after["listener_reconnects"] == before["listener_reconnects"] + 1
            assert after["resyncs"] >= before["resyncs"] + 1
            new_pid = listener_pid(live)
            assert new_pid is not None
            assert new_pid != pid
            assert new_pid in listener_backends()
            # And the new connection carries notifications again.
            add_group("after")
            for stream in streams:
                stream.next_event(shows("after", "during-the-gap"), timeout=5)
        finally:
            for stream in streams:
                stream.close()


async def notify(payload: str) -> None:
    info = listener_conninfo("default") | {"application_name": "realtime-test"}
    async with await psycopg.AsyncConnection.connect(autocommit=True, **info) as conn:
        await conn.execute("SELECT pg_notify(%s, %s)", [get_config().CHANNEL, payload])


@pytest.mark.django_db(transaction=True)
async def test_backend_listens_lazily_and_stops_cleanly() -> None:
    backend = PostgresBackend()
    hub = Hub(backend)
    assert backend.connection is None  # nothing happens before the first subscriber
    async with hub.subscribe(["groups"]) as subscription:
        assert backend.connection is not None
        await notify("groups")
        assert await subscription.wait(5)
        assert subscription.consume()[0] is True
    await hub.aclose()
    assert backend.connection is None
    await backend.stop()  # twice is harmless


class FragileHub(Hub):
    """Its first message blows up inside the listener's loop (not a psycopg error)."""

    failed = False

    def dispatch_message(self, message: str) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bug while dispatching")
        super().dispatch_message(message)


@pytest.mark.django_db(transaction=True)
async def test_listener_survives_any_error_and_resyncs(caplog: pytest.LogCaptureFixture) -> None:
    with override_realtime(RECONNECT_DELAY=0.01):
        hub = FragileHub(PostgresBackend())
    before = stats()
    try:
        async with hub.subscribe(["groups"]) as subscription:
            await notify("other")
            # The listener logs, reconnects and resyncs: the stream re-renders.
            assert await subscription.wait(5)
            assert subscription.consume()[0] is True
            assert stats()["listener_reconnects"] == before["listener_reconnects"] + 1
            await notify("groups")
            assert await subscription.wait(5)
    finally:
        await hub.aclose()
    assert "a bug while dispatching" in caplog.text


async def listener_pids_now() -> set[int]:
    """The pids of listener connections to the test database, found by ``application_name``
    (whatever their last query was: the idle probe changes it)."""
    info = listener_conninfo("default") | {"application_name": "realtime-test"}
    async with await psycopg.AsyncConnection.connect(autocommit=True, **info) as conn:
        cursor = await conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE application_name = 'realtime-listener' AND datname = current_database()"
        )
        return {row[0] for row in await cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
async def test_shutdown_stops_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import weakref

    from realtime.relay import registry

    # A registry of its own (hubs and closing tasks), whatever earlier tests left in the
    # process's: CI once found a finished closing task from elsewhere in the set.
    monkeypatch.setattr(registry, "_hubs", weakref.WeakKeyDictionary())
    monkeypatch.setattr(registry, "_closing", set())
    loop = asyncio.get_running_loop()
    hub = registry._hubs[loop] = Hub(PostgresBackend(), loop)
    async with hub.subscribe(["groups"]) as subscription:
        assert hub.backend.connection is not None  # type: ignore[attr-defined]
        pid = hub.backend.connection.info.backend_pid  # type: ignore[attr-defined]
        assert pid in await listener_pids_now()
        registry.close_all_hubs()  # what SIGTERM runs (see realtime.lifecycle)
        assert await subscription.wait(1)
        assert subscription.closed
        [closing] = registry._closing  # Hub.aclose, held until it is done
        for _ in range(100):
            if pid not in await listener_pids_now():
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the listener's connection is still open after shutdown")
    # The server may drop the connection before Hub.aclose returns: wait for it.
    await asyncio.wait_for(closing, 5)
    assert hub.backend.connection is None  # type: ignore[attr-defined]
    assert not registry._closing


class DeafBackend(PostgresBackend):
    """A listener that never hears its test notification (what a transaction pool does)."""

    PROBE_TIMEOUT = 0.3

    async def _send_probe(self, message: str) -> bool:
        return await super()._send_probe(message + "-lost")


@pytest.mark.django_db(transaction=True)
async def test_a_listener_that_hears_nothing_is_reported_loudly_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import logging

    with override_realtime(RECONNECT_DELAY=0.05):
        hub = Hub(DeafBackend())
    before = stats()
    try:
        with caplog.at_level(logging.ERROR, logger="realtime"):
            async with hub.subscribe(["groups"]):
                for _ in range(100):
                    if stats()["listener_misconfigured"] >= before["listener_misconfigured"] + 2:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await hub.aclose()
    after = stats()
    assert after["listener_misconfigured"] >= before["listener_misconfigured"] + 2  # retried
    assert after["listener_connects"] >= before["listener_connects"] + 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert errors
    assert "REALTIME['LISTEN_DATABASE']" in errors[0].getMessage()
    assert "PgBouncer" in errors[0].getMessage()


@pytest.mark.django_db(transaction=True)
async def test_a_healthy_listener_hears_its_probe_and_ignores_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio

    hub = Hub(PostgresBackend())
    before = stats()
    try:
        async with hub.subscribe(["groups"]) as subscription:
            await notify("!probe from another process")  # skipped, not "malformed"
            await notify("groups")
            assert await subscription.wait(5)
            await asyncio.sleep(0.2)
    finally:
        await hub.aclose()
    after = stats()
    assert after["listener_misconfigured"] == before["listener_misconfigured"]
    assert "malformed" not in caplog.text


@pytest.mark.django_db(transaction=True)
async def test_a_probe_that_cannot_be_sent_leaves_the_listener_alone(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from realtime.relay import postgres

    real = postgres.listener_conninfo

    def conninfo(alias: str) -> dict[str, object]:
        unreachable = {"host": "127.0.0.1", "port": 1} if alias == "unreachable" else {}
        return real("default") | unreachable

    monkeypatch.setattr(postgres, "listener_conninfo", conninfo)
    backend = PostgresBackend()
    backend.publish_alias = "unreachable"
    hub = Hub(backend)
    before = stats()
    try:
        async with hub.subscribe(["groups"]) as subscription:
            await notify("groups")
            assert await subscription.wait(5)
    finally:
        await hub.aclose()
    assert "could not send the listener's test notification" in caplog.text
    assert stats()["listener_misconfigured"] == before["listener_misconfigured"]
