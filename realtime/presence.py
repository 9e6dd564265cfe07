"""Presence: who else is on a topic right now, across every process, through PostgreSQL.

Contract:

- A stream is *present* on the topics its view declares (:attr:`StreamView.presence_topics
  <realtime.StreamView.presence_topics>`), as a user id, a display name and a state
  (``viewing``), from the moment it opens until it ends. The same user in two tabs is one
  :class:`Presence` (with ``tabs == 2``).
- :func:`present` and :func:`present_by_topic` read it, from any process (views, commands, the
  shell). Each change publishes ``presence.<topic>`` in the transaction that writes it: a stream
  that shows presence watches that topic (or ``presence.tickets.*``) and re-renders as for any
  other state, with shared renders intact.
- :func:`set_state` changes the state of a command's own tab (``typing``), optionally for a few
  seconds: the owning process puts it back (and publishes) within about a second after it lapses;
  reads never show a lapsed state.
- A stream that ends leaves within ``PRESENCE_FLUSH_INTERVAL`` (50 ms) of its ``finally``. A
  process that dies without ending its streams (``kill -9``, a lost host) stops beating: reads
  ignore its entries once ``PRESENCE_TTL`` (6 s) has passed, and the next heartbeat of any other
  process deletes them and publishes their topics, so watchers see them gone within
  ``PRESENCE_TTL + PRESENCE_HEARTBEAT`` (8 s by default). Every time is the database's clock.
- Cost: each process has one presence task on its hub's event loop and one database connection
  (on its own thread). Joins and leaves are gathered for ``PRESENCE_FLUSH_INTERVAL`` and written
  in one transaction with one publish per changed topic, so a thousand tabs connecting at once
  cost a few transactions, and a join costs the same however many streams watch. A process
  writes its heartbeat (one row) every ``PRESENCE_HEARTBEAT`` seconds, never one per stream.
- Private by design: nothing here answers HTTP. Presence reaches a browser only through the
  views that render it, which decide what to show (names to agents, "an agent" to customers).

It is *not* a CRDT or a replicated in-memory map (docs/concepts.md, "Presence", compares it with
Phoenix Presence): PostgreSQL is the one source of truth, and a read is a query.

Threading: a :class:`Tracker`'s methods run on its hub's event loop; its database work runs on its
own single thread. :func:`present`, :func:`present_by_topic` and :func:`set_state` are synchronous
ORM code (call them from a view, a command's handler, a stream's ``get_context_data``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import close_old_connections, connections, transaction

from realtime.conf import get_config
from realtime.relay.publish import publish
from realtime.relay.topics import validate_topic

if TYPE_CHECKING:
    from realtime.relay.hub import Hub

logger = logging.getLogger("realtime")

#: Prefix of the topics published when a topic's presence changes (``presence.tickets.42``).
PREFIX = "presence."
#: Seconds between the owning process's checks for lapsed states.
SWEEP_INTERVAL = 1.0
#: Longest state name, display name (longer ones are cut) and user id.
MAX_STATE, MAX_NAME, MAX_USER_ID = 32, 150, 64

_ENTRY = "realtime_presence_entry"
_PROCESS = "realtime_presence_process"


@dataclass(frozen=True)
class Presence:
    """One user present on a topic (over all their tabs)."""

    user_id: str
    name: str
    #: A state other than the streams' resting one (``typing`` over ``viewing``) wins across tabs.
    state: str
    #: How many streams (tabs) of this user are present.
    tabs: int
    #: When the user's earliest present stream joined.
    since: datetime


@dataclass(frozen=True)
class Member:
    """Who one stream is, and its resting state (see ``StreamView.get_presence``)."""

    user_id: str
    name: str
    state: str = "viewing"


def presence_topic(topic: str) -> str:
    """The topic published when ``topic``'s presence changes (``presence.<topic>``)."""
    return validate_topic(PREFIX + topic)


def tab_digest(tab: str) -> str:
    """What an entry stores of its tab id: a digest (the id itself is a capability)."""
    return hashlib.sha256(f"realtime.presence:{tab}".encode()).hexdigest()


# Reading ------------------------------------------------------------------------------------


def present(topic: str, *, using: str | None = None) -> list[Presence]:
    """Who is present on ``topic`` now, in the order they joined."""
    return present_by_topic([topic], using=using)[topic]


def present_by_topic(
    topics: Iterable[str], *, using: str | None = None
) -> dict[str, list[Presence]]:
    """:func:`present` for many topics in one query: every topic asked for is a key."""
    wanted = sorted({validate_topic(t) for t in topics})
    found: dict[str, list[Presence]] = {topic: [] for topic in wanted}
    if not wanted:
        return found
    config = get_config()
    with connections[using or config.DATABASE].cursor() as cursor:
        cursor.execute(
            f"SELECT e.topic, e.user_id, e.name, "
            "CASE WHEN e.state_expires_at IS NULL OR e.state_expires_at > now() "
            "THEN e.state ELSE e.base_state END, e.base_state, e.joined_at "
            f"FROM {_ENTRY} e JOIN {_PROCESS} p ON p.id = e.process "
            "WHERE e.topic = ANY(%s) AND p.last_seen > now() - %s * interval '1 second' "
            "ORDER BY e.topic, e.joined_at, e.id",
            [wanted, config.PRESENCE_TTL],
        )
        rows = cursor.fetchall()
    users: dict[tuple[str, str], Presence] = {}
    for topic, user_id, name, state, base_state, joined_at in rows:
        before = users.get((topic, user_id))
        if before is None:
            users[(topic, user_id)] = Presence(user_id, name, state, 1, joined_at)
            continue
        # The non-resting state wins: one tab typing makes the user typing.
        busy = state if state != base_state else before.state
        users[(topic, user_id)] = Presence(
            user_id, before.name, busy, before.tabs + 1, before.since
        )
    for (topic, _), presence in users.items():
        found[topic].append(presence)
    return found


# Changing a tab's state ------------------------------------------------------------------------


def set_state(
    tab: str | None,
    state: str | None,
    *,
    expires_in: float | None = None,
    topic: str | None = None,
    using: str | None = None,
) -> int:
    """Set the presence state of tab ``tab``'s streams (``None``: back to their resting state).

    Pass the tab id a command verified (``self.tab`` in a :class:`~realtime.CommandView`): a tab
    can change only its own presence. With ``expires_in`` the state lapses after that many
    seconds (a ``typing`` that ends by itself); ``topic`` limits the change to one topic. Runs in
    the caller's transaction and publishes, in it, the topics whose visible state changed (the
    same state with its expiry extended wakes no one). Returns how many entries were written (0
    without a tab, for a tab that is not present, or when nothing changes).
    """
    if not tab:
        return 0
    if state is not None and (not isinstance(state, str) or not 0 < len(state) <= MAX_STATE):
        raise ValueError(f"A presence state is a name of 1 to {MAX_STATE} characters.")
    alias = using or get_config().DATABASE
    where = "tab = %s"
    params: list[Any] = [tab_digest(tab)]
    if topic is not None:
        where += " AND topic = %s"
        params.append(validate_topic(topic))
    # Writes only what changes (clearing a resting tab writes nothing), and publishes only the
    # topics whose visible state changed (a typing tab extending its expiry wakes no one).
    sql = (
        f"WITH old AS (SELECT id, CASE WHEN state_expires_at IS NULL OR state_expires_at > now() "
        f"THEN state ELSE base_state END AS shown FROM {_ENTRY} WHERE {where} FOR UPDATE) "
        f"UPDATE {_ENTRY} e SET state = COALESCE(%s, e.base_state), state_expires_at = "
        "CASE WHEN %s::float8 IS NULL THEN NULL ELSE now() + %s::float8 * interval '1 second' END "
        "FROM old WHERE e.id = old.id AND (e.state IS DISTINCT FROM COALESCE(%s, e.base_state) "
        "OR e.state_expires_at IS NOT NULL OR %s::float8 IS NOT NULL) "
        "RETURNING e.topic, old.shown IS DISTINCT FROM e.state"
    )
    params += [state, expires_in, expires_in, state, expires_in]
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        _publish([topic for topic, changed in rows if changed], alias)
    return len(rows)


def _publish(topics: Iterable[str], alias: str) -> None:
    for topic in sorted(set(topics)):
        publish(presence_topic(topic), using=alias)


# The per-process tracker ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    key: str
    topic: str
    tab: str
    member: Member


class Tracker:
    """One process's (one hub's) presence: queued joins and leaves, heartbeat, reaping, sweeping.

    Get it with ``hub.attached(Tracker)``. :meth:`join` and :meth:`leave` are cheap, synchronous
    and never touch the database: the tracker's task writes them in batches.
    """

    def __init__(self) -> None:
        self.process_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(4)}"
        self._joins: dict[str, list[_Row]] = {}
        self._leaves: set[str] = set()
        #: Entries written, by stream key: written again if this process was taken for dead.
        self._live: dict[str, list[_Row]] = {}
        self._registered = False
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        #: The hub closed: joins and leaves are ignored from now on.
        self._stopped = False
        self._executor: ThreadPoolExecutor | None = None
        #: Transactions that wrote something (batches, heartbeats, sweeps that changed a row):
        #: for tests and the benchmark.
        self.writes = 0
        self.hooked = False

    @property
    def streams(self) -> int:
        """Streams of this process present (written or queued)."""
        return len(self._live) + len(self._joins)

    def join(self, topics: Sequence[str], member: Member, tab: str | None) -> str:
        """Queue a stream's entries; return its key, for :meth:`leave`."""
        key = secrets.token_hex(16)
        if not topics or self._stopped:
            return key
        digest = tab_digest(tab) if tab else ""
        member = Member(
            str(member.user_id)[:MAX_USER_ID], member.name[:MAX_NAME], member.state[:MAX_STATE]
        )
        self._joins[key] = [_Row(key, validate_topic(t), digest, member) for t in topics]
        self._kick()
        return key

    def leave(self, key: str) -> None:
        """Queue the removal of a stream's entries (a join not yet written is just forgotten)."""
        if self._joins.pop(key, None) is None and not self._stopped:
            self._leaves.add(key)
            self._kick()

    def close(self) -> None:
        """Remove every entry of this process at once and stop (the hub closed: the server is
        shutting down). The removal is queued on the tracker's thread, behind any batch being
        written, so it completes even if the event loop ends first (the interpreter waits for
        that thread before it exits)."""
        self._stopped = True
        task, executor = self._task, self._executor
        self._task, self._executor = None, None
        if task is None or executor is None:
            return
        task.cancel()
        executor.submit(_fresh, self._depart)
        executor.submit(connections.close_all)
        executor.shutdown(wait=False)

    def _kick(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="realtime-presence")
            self._task = asyncio.create_task(self._run(), name="realtime-presence")
        assert self._wake is not None
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        config = get_config()
        loop = asyncio.get_running_loop()
        beat_at = sweep_at = loop.time()
        failures = 0
        while True:
            timeout = max(0.0, min(beat_at, sweep_at) - loop.time())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
                # Gather: the joins and leaves of the next moment go in the same batch.
                await asyncio.sleep(config.PRESENCE_FLUSH_INTERVAL)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                if self._joins or self._leaves:
                    await self._flush()
                if not (self._live or self._joins or self._leaves):
                    break  # nothing present: the last batch removed this process too
                now = loop.time()
                if now >= beat_at:
                    await self._db(self._heartbeat)
                    beat_at = now + config.PRESENCE_HEARTBEAT
                if now >= sweep_at:
                    await self._db(self._sweep)
                    sweep_at = now + SWEEP_INTERVAL
                failures = 0
            except Exception:
                failures += 1
                delay = min(0.1 * 2**failures, config.PRESENCE_HEARTBEAT)
                logger.warning(
                    "realtime: presence could not be written; retrying in %.1fs",
                    delay,
                    exc_info=True,
                )
                await asyncio.sleep(delay)
                self._wake.set()
        # Idle: no connection is held, and the next join starts again, registering
        # this process anew.
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.submit(connections.close_all)
            executor.shutdown(wait=False)
        self._task, self._registered = None, False
        self._live.clear()

    async def _db(self, fn: Callable[[], None]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, _fresh, fn)

    async def _flush(self) -> None:
        joins, leaves = self._joins, self._leaves
        self._joins, self._leaves = {}, set()
        last = not joins and not (self._live.keys() - leaves)
        try:
            await self._db(lambda: self._write(joins, leaves, last=last))
        except BaseException:
            # Put the batch back (a leave queued meanwhile cancels its join on the next try).
            for key, rows in joins.items():
                if key in self._leaves:
                    self._leaves.discard(key)
                else:
                    self._joins.setdefault(key, rows)
            self._leaves |= leaves
            raise
        self._live.update(joins)
        for key in leaves:
            self._live.pop(key, None)

    def _write(self, joins: dict[str, list[_Row]], leaves: set[str], *, last: bool) -> None:
        """One transaction: this process's row (the first time), new entries, gone entries, and
        one publish per changed topic; with ``last`` (nothing stays present) the process's row
        goes too, and its heartbeat stops. Runs on the tracker's thread."""
        alias = get_config().DATABASE
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            if not self._registered:
                self._register(cursor)
            topics = self._insert(cursor, [row for rows in joins.values() for row in rows])
            if leaves:
                cursor.execute(
                    f"DELETE FROM {_ENTRY} WHERE key = ANY(%s) RETURNING topic", [sorted(leaves)]
                )
                topics += [row[0] for row in cursor.fetchall()]
            if last:
                cursor.execute(f"DELETE FROM {_PROCESS} WHERE id = %s", [self.process_id])
            _publish(topics, alias)
        self.writes += 1
        self._registered = not last

    def _register(self, cursor: Any) -> None:
        cursor.execute(
            f"INSERT INTO {_PROCESS} (id, last_seen) VALUES (%s, now()) "
            "ON CONFLICT (id) DO UPDATE SET last_seen = now()",
            [self.process_id],
        )

    def _insert(self, cursor: Any, rows: list[_Row]) -> list[str]:
        if not rows:
            return []
        cursor.execute(
            f"INSERT INTO {_ENTRY} (key, process, topic, tab, user_id, name, state, base_state, "
            "joined_at) SELECT k, %s, t, tb, u, n, s, s, now() FROM unnest("
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[]"
            ") AS x(k, t, tb, u, n, s)",
            [
                self.process_id,
                [r.key for r in rows],
                [r.topic for r in rows],
                [r.tab for r in rows],
                [r.member.user_id for r in rows],
                [r.member.name for r in rows],
                [r.member.state for r in rows],
            ],
        )
        return [r.topic for r in rows]

    def _heartbeat(self) -> None:
        """This process is alive (one row); processes that stopped beating are removed."""
        config = get_config()
        alias = config.DATABASE
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(
                f"UPDATE {_PROCESS} SET last_seen = now() WHERE id = %s", [self.process_id]
            )
            topics: list[str] = []
            if cursor.rowcount == 0 and self._registered:
                # Taken for dead (paused for longer than the TTL) and reaped: come back whole.
                logger.warning("realtime: this process's presence was reaped; writing it again")
                self._register(cursor)
                cursor.execute(
                    f"DELETE FROM {_ENTRY} WHERE process = %s RETURNING topic", [self.process_id]
                )
                topics += [row[0] for row in cursor.fetchall()]
                topics += self._insert(cursor, [r for rows in self._live.values() for r in rows])
            # DELETE ... RETURNING: when several processes reap at once, each row goes to one.
            cursor.execute(
                f"WITH dead AS (DELETE FROM {_PROCESS} "
                "WHERE last_seen < now() - %s * interval '1 second' RETURNING id) "
                f"DELETE FROM {_ENTRY} WHERE process IN (SELECT id FROM dead) RETURNING topic",
                [config.PRESENCE_TTL],
            )
            topics += [row[0] for row in cursor.fetchall()]
            _publish(topics, alias)
        self.writes += 1

    def _sweep(self) -> None:
        """Put this process's lapsed states back, and tell their watchers."""
        if not self._live:
            return
        alias = get_config().DATABASE
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(
                f"UPDATE {_ENTRY} SET state = base_state, state_expires_at = NULL "
                "WHERE process = %s AND state_expires_at <= now() RETURNING topic",
                [self.process_id],
            )
            topics = [row[0] for row in cursor.fetchall()]
            _publish(topics, alias)
        if topics:
            self.writes += 1

    def _depart(self) -> None:
        """Delete this process and its entries (a clean shutdown leaves at once). Failing, it
        only logs: the entries go when the process's heartbeat is past ``PRESENCE_TTL``."""
        alias = get_config().DATABASE
        try:
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute(f"DELETE FROM {_PROCESS} WHERE id = %s", [self.process_id])
                cursor.execute(
                    f"DELETE FROM {_ENTRY} WHERE process = %s RETURNING topic", [self.process_id]
                )
                _publish([row[0] for row in cursor.fetchall()], alias)
        except Exception:
            logger.warning("realtime: presence could not be removed at shutdown", exc_info=True)
        self._live.clear()


def hub_tracker(hub: Hub) -> Tracker:
    """The presence tracker of ``hub``'s process, made on first use; it leaves when the hub
    closes (server shutdown)."""
    tracker = hub.attached(Tracker)
    if not tracker.hooked:
        tracker.hooked = True
        hub.on_close(tracker.close)
    return tracker


def _fresh(fn: Callable[[], None]) -> None:
    close_old_connections()
    fn()
