"""Presence: join/leave latency to 1,000 watching streams, and database writes while tabs churn.

``python -m bench.presence --n 1000``

One server process (bench settings). ``n`` anonymous streams watch a room (they are present
nowhere: they only watch ``presence.rooms.bench``, sharing one render). Then, ``--rounds`` times,
the load generator opens one present tab (``?who=ann``) and measures the time until every watcher
has received a render showing it (join), closes it and measures the time until every watcher has
received a render without it (leave): p50/p99 over the rounds, for the median and the last
watcher. Last, ``n`` present tabs churn for ``--seconds`` (in a room of their own, showing
nothing of it, while the watchers stay open): each connects, stays 1-5 s, leaves and comes back;
the table gives joins and leaves per second achieved, presence transactions per
second (batches, heartbeats, sweeps: the tracker's count) and rows written per second
(``pg_stat_user_tables``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

import aiohttp

from bench import loadgen
from bench.common import conninfo, ms, percentile, prepare_database, write_results
from bench.peers import realtime_server

ROOM = "/test/rooms/bench/"
#: Present in a room of their own, showing nothing of it (what presence costs to write).
CHURN = "/bench/present/churn/"


async def _present_tab(session: aiohttp.ClientSession, url: str, opened: asyncio.Event) -> None:
    """One present tab: open until cancelled (its first event sets ``opened``)."""
    headers = {"Accept": "text/event-stream", "Datastar-Request": "true"}
    async with session.get(url, headers=headers) as response:
        while True:
            chunk = await response.content.readany()
            if not chunk:
                return
            opened.set()


def _all_saw(marks: list[int], li: int) -> Any:
    """Predicate: every watcher received, after its mark, a render with ``li`` names."""
    return lambda i, c: any(n == li for _, n, _ in c.arrivals[marks[i] :])


def _times(watchers: loadgen.Streams, since: list[int], li: int, start: float) -> list[float]:
    """When each watcher first got a render with ``li`` names after its mark, from ``start``."""
    times = []
    for client, mark in zip(watchers.clients, since, strict=True):
        arrived = next((t for t, n, _ in client.arrivals[mark:] if n == li), None)
        if arrived is not None:
            times.append(arrived - start)
    return times


def _row_writes() -> int:
    import psycopg

    from bench.common import BENCH_DB

    with psycopg.connect(conninfo(BENCH_DB), autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables "
            "WHERE relname LIKE 'realtime_presence_%'"
        ).fetchone()
    return int(row[0]) if row else 0


async def measure(n: int, rounds: int, seconds: float) -> dict[str, Any]:
    with realtime_server() as server:
        watchers = loadgen.Streams(server.url + ROOM, n)
        async with loadgen.commands_session() as session:
            try:
                opened_in = await watchers.open(120)
                if watchers.failed:
                    raise RuntimeError(f"{watchers.failed} watchers failed to open")
                joins: list[tuple[float, float]] = []
                leaves: list[tuple[float, float]] = []
                for k in range(rounds):
                    marks = watchers.marks()
                    opened = asyncio.Event()
                    start = time.perf_counter()
                    tab = asyncio.create_task(
                        _present_tab(session, f"{server.url}{ROOM}?who=ann{k}", opened)
                    )
                    if not await watchers.wait_for(_all_saw(marks, 1), 10):
                        raise RuntimeError("a join did not reach every watcher in 10 s")
                    seen = _times(watchers, marks, 1, start)
                    joins.append((statistics.median(seen), max(seen)))
                    marks = watchers.marks()
                    start = time.perf_counter()
                    tab.cancel()
                    await asyncio.gather(tab, return_exceptions=True)
                    if not await watchers.wait_for(_all_saw(marks, 0), 10):
                        raise RuntimeError("a leave did not reach every watcher in 10 s")
                    seen = _times(watchers, marks, 0, start)
                    leaves.append((statistics.median(seen), max(seen)))
                    await asyncio.sleep(0.2)
                churn = await _churn(server.url, session, n, seconds)
            finally:
                await watchers.close()
    return {
        "n": n,
        "opened_in": opened_in,
        "join_median": [j[0] for j in joins],
        "join_last": [j[1] for j in joins],
        "leave_median": [v[0] for v in leaves],
        "leave_last": [v[1] for v in leaves],
        **churn,
    }


async def _churn(
    base: str, session: aiohttp.ClientSession, n: int, seconds: float
) -> dict[str, Any]:
    """``n`` present tabs connecting, staying 1-5 s and leaving, for ``seconds``."""
    stats_url = base + "/bench/stats/"
    before = await loadgen.get_json(session, stats_url)
    rows_before = await asyncio.to_thread(_row_writes)
    cycles = [0]
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as tabs:

        async def tab(i: int) -> None:
            await asyncio.sleep(random.uniform(0, 2))
            while time.perf_counter() < stop:
                opened = asyncio.Event()
                task = asyncio.create_task(_present_tab(tabs, f"{base}{CHURN}?who=u{i}", opened))
                try:
                    await asyncio.wait_for(opened.wait(), 30)
                    await asyncio.sleep(random.uniform(1, 5))
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                cycles[0] += 1

        start = time.perf_counter()
        await asyncio.gather(*(tab(i) for i in range(n)), return_exceptions=True)
        elapsed = time.perf_counter() - start
    await asyncio.sleep(2.5)  # the last leaves are written, the statistics collector catches up
    after = await loadgen.get_json(session, stats_url)
    rows_after = await asyncio.to_thread(_row_writes)
    return {
        "churn_seconds": elapsed,
        "churn_cycles": cycles[0],
        "presence_writes": after["presence_writes"] - before["presence_writes"],
        "rows_written": rows_after - rows_before,
        "churn_renders": after.get("renders", 0) - before.get("renders", 0),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="watching streams, and churning tabs")
    parser.add_argument("--rounds", type=int, default=20, help="joins and leaves measured")
    parser.add_argument("--seconds", type=float, default=20.0, help="churn duration")
    parser.add_argument("--name", default="presence")
    args = parser.parse_args(argv)
    prepare_database()
    r = asyncio.run(measure(args.n, args.rounds, args.seconds))
    per_s = r["churn_seconds"]
    rows = [
        [
            f"join reaches {r['n']} watchers",
            ms(percentile(r["join_median"], 50)),
            ms(percentile(r["join_median"], 99)),
            ms(percentile(r["join_last"], 50)),
            ms(percentile(r["join_last"], 99)),
        ],
        [
            f"leave reaches {r['n']} watchers",
            ms(percentile(r["leave_median"], 50)),
            ms(percentile(r["leave_median"], 99)),
            ms(percentile(r["leave_last"], 50)),
            ms(percentile(r["leave_last"], 99)),
        ],
    ]
    churn = [
        [
            r["n"],
            f"{r['churn_cycles'] / per_s:.0f}",
            f"{r['presence_writes'] / per_s:.1f}",
            f"{r['rows_written'] / per_s:.0f}",
            f"{2 * r['churn_cycles'] / max(1, r['presence_writes']):.0f}",
        ]
    ]
    write_results(
        args.name,
        "Presence: join/leave to 1,000 watchers, writes while tabs churn",
        [
            (
                f"Latency over {args.rounds} rounds (ms)",
                [
                    "what",
                    "median watcher p50",
                    "median watcher p99",
                    "last watcher p50",
                    "last watcher p99",
                ],
                rows,
            ),
            (
                f"{r['n']} present tabs churning for {per_s:.0f} s (each stays 1-5 s)",
                [
                    "tabs",
                    "joins (and leaves) /s",
                    "presence transactions /s",
                    "rows written /s",
                    "joins + leaves per transaction",
                ],
                churn,
            ),
        ],
        [
            "One uvicorn process; the load generator in another process on the same machine.",
            "Join: from the present tab's GET to each watcher's render showing it (through the "
            "batch of PRESENCE_FLUSH_INTERVAL = 50 ms, the transaction, NOTIFY, one shared render "
            "and the fan-out). Leave: from closing the tab's connection.",
            "Presence transactions: the tracker's batches (joins and leaves of 50 ms in one "
            "transaction), heartbeats (one per process every 2 s) and sweeps that changed rows; "
            "rows written: inserts, updates and deletes on the presence tables.",
            "The churning tabs are present in a room of their own and render nothing of it, so the "
            "churn measures what presence costs to write (each tab's connect still goes through "
            "the full request path); what showing it costs is the latency table's fan-out.",
        ],
        raw=r,
    )
    return r


if __name__ == "__main__":
    main()
