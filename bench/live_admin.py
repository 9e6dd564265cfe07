"""The live admin: a changelist of 100 rows watched by 100 staff users; renders per change, and
the time until every viewer has it.

``python -m bench.live_admin --rows 100 --viewers 100 --changes 20``

One server process (bench settings) on a database of its own (``bench_admin``, unless
``BENCH_DB`` is set). ``--rows`` open tickets, and ``--viewers`` staff users with the ticket
permissions (distinct users with equal rights, as a team of agents), each signed in with a session
of their own. Each user opens the ticket changelist's stream with the same query
(``?status__exact=open``); then ``--changes`` saves, one at a time (a bench-only POST that saves
a ticket with a new subject in the server, as a command or the shell would), each waited for on
every stream: per change, the time from the POST until every viewer has received a render showing
it, the renders the server made (``realtime.stats()``) and the bytes each viewer received.

Two ``ModelAdmin`` classes, each in its own server: the demo's ``TicketAdmin`` (a
``LiveModelAdmin``: staff with equal rights share one render per change), and the same admin with
its own ``get_queryset`` (``bench.admin_site``), which renders once per user.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import statistics
import time
from typing import Any

from bench import loadgen
from bench.common import ms, percentile, prepare_database, write_results
from bench.peers import realtime_server
from bench.serve import GC_ENV, TUNED_GC, apply_gc_threshold

QUERY = "?status__exact=open"
#: What each ``ModelAdmin`` is, and its changelist's stream.
VARIANTS = {
    "shared": (
        "TicketAdmin (LiveModelAdmin): one render per query and rights",
        "/admin/tickets/ticket/live/",
    ),
    "per-user": (
        "TicketAdmin with its own get_queryset: one render per user",
        "/bench/admin/tickets/ticket/live/",
    ),
}
_MARKER = re.compile(rb"bench-change-(\d+)")


class Viewer(loadgen.Client):
    """A viewer's stream: each event is recorded with the newest change it shows (-1 for none)
    in place of loadgen's ``<li>`` count."""

    def record(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        newest = max((int(n) for n in _MARKER.findall(data)), default=-1)
        self.arrivals.append((time.perf_counter(), newest, len(data)))
        self.ready.set()


def database() -> str:
    return os.environ.get("BENCH_DB") or "bench_admin"


def _cpu(pid: int) -> float:
    """CPU seconds (user and system) the server process has used."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _render_seconds(stats: dict[str, Any]) -> float:
    """The seconds this server has spent rendering, all stream views together."""
    return float(sum(view["render_seconds"]["sum"] for view in stats["views"].values()))


async def _post_json(session: Any, url: str, data: dict[str, Any]) -> Any:
    async with session.post(url, json=data) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}: {await response.text()}")
        return await response.json()


async def measure(variant: str, rows: int, viewers: int, changes: int) -> dict[str, Any]:
    """One ``ModelAdmin`` (``variant``): a server is started, measured and killed here."""
    path = VARIANTS[variant][1]
    result: dict[str, Any] = {"variant": variant, "rows": rows, "viewers": viewers}
    if changes < 1:
        raise ValueError("measure at least one change")
    with realtime_server({"BENCH_DB": database()}) as server:
        async with loadgen.commands_session() as session:
            setup = await _post_json(
                session, server.url + "/bench/admin-setup/", {"rows": rows, "viewers": viewers}
            )
            cookie = setup["cookie"]
            streams = loadgen.Streams(
                server.url + path + QUERY,
                viewers,
                client=Viewer,
                headers=[{"Cookie": f"{cookie}={key}"} for key in setup["sessions"]],
            )
            try:
                result["open_s"] = await streams.open(60 + viewers / 10)
                gc.collect()
                gc.freeze()  # the load generator's clients are not the server's latency
                if streams.failed:
                    errors = [c.error for c in streams.clients if c.error]
                    raise RuntimeError(
                        f"{streams.failed} of {viewers} streams failed to open: {errors[:1]}"
                    )
                await asyncio.sleep(0.5)
                stats_url = server.url + "/bench/stats/"
                every: list[float] = []  # per change: until the last viewer had it
                median: list[float] = []  # per change: until the median viewer had it
                pooled: list[float] = []  # every viewer of every change
                renders: list[int] = []
                render_seconds: list[float] = []
                cpu: list[float] = []
                kbytes: list[float] = []
                events: list[float] = []
                for k in range(changes):
                    before = await loadgen.get_json(session, stats_url)
                    cpu_before = _cpu(server.pid)
                    marks = streams.marks()
                    pk = setup["tickets"][k % rows]
                    start = time.perf_counter()
                    status = await loadgen.post(
                        session,
                        server.url + "/bench/admin-save/",
                        {"pk": pk, "subject": f"bench-change-{k}"},
                    )
                    if status != 204:
                        raise RuntimeError(f"the save answered {status}")

                    def shows(
                        i: int, c: loadgen.Client, k: int = k, marks: list[int] = marks
                    ) -> bool:
                        return any(a[1] >= k for a in c.arrivals[marks[i] :])

                    # Per user, each render takes its turn: allow half a second per viewer.
                    if not await streams.wait_for(shows, 10 + viewers / 2):
                        raise RuntimeError(f"change {k} did not reach every viewer in time")
                    seen = [
                        next(a[0] for a in c.arrivals[marks[i] :] if a[1] >= k) - start
                        for i, c in enumerate(streams.clients)
                    ]
                    await asyncio.sleep(0.3)  # anything more this change causes, counted too
                    cpu.append(_cpu(server.pid) - cpu_before)
                    after = await loadgen.get_json(session, stats_url)
                    every.append(max(seen))
                    median.append(statistics.median(seen))
                    pooled += seen
                    renders.append(after["renders"] - before["renders"])
                    render_seconds.append(_render_seconds(after) - _render_seconds(before))
                    received = [c.arrivals[marks[i] :] for i, c in enumerate(streams.clients)]
                    events.append(statistics.mean(len(a) for a in received))
                    kbytes.append(statistics.mean(sum(b for *_, b in a) for a in received) / 1024)
            finally:
                await streams.close()
                gc.unfreeze()
    result.update(
        every=every,
        median=median,
        pooled=pooled,
        renders=renders,
        render_seconds=render_seconds,
        cpu=cpu,
        events_per_viewer=events,
        kb_per_viewer=kbytes,
    )
    return result


def row(r: dict[str, Any]) -> list[Any]:
    if "error" in r:
        return [VARIANTS[r["variant"]][0], r["rows"], r["viewers"], *["—"] * 12, r["error"][:120]]
    return [
        VARIANTS[r["variant"]][0],
        r["rows"],
        r["viewers"],
        len(r["every"]),
        f"{r['open_s']:.1f}",
        f"{statistics.mean(r['renders']):.1f} ({min(r['renders'])}-{max(r['renders'])})",
        ms(sum(r["render_seconds"]) / max(1, sum(r["renders"]))),
        ms(statistics.mean(r["cpu"])),
        ms(percentile(r["every"], 50)),
        ms(percentile(r["every"], 99)),
        ms(max(r["every"])),
        ms(percentile(r["pooled"], 50)),
        ms(percentile(r["pooled"], 99)),
        f"{statistics.mean(r['events_per_viewer']):.1f}",
        f"{statistics.mean(r['kb_per_viewer']):.0f}",
        "",
    ]


COLUMNS = [
    "ModelAdmin",
    "rows",
    "staff viewers",
    "saves",
    "open all (s)",
    "renders per change (min-max)",
    "render (ms, mean)",
    "server CPU per change (ms)",
    "every viewer has it: p50 (ms)",
    "p99 (ms)",
    "max (ms)",
    "any viewer (all changes pooled): p50 (ms)",
    "p99 (ms)",
    "events per viewer per change",
    "KB per viewer per change",
    "notes",
]


async def run(
    variants: list[str], rows: int, viewers: int, changes: dict[str, int]
) -> list[dict[str, Any]]:
    results = []
    for variant in variants:
        print(f"live_admin: {variant}, {rows} rows, {viewers} viewers ...", flush=True)
        try:
            r = await measure(variant, rows, viewers, changes[variant])
        except Exception as exc:  # reported in the table, the run goes on
            r = {"variant": variant, "rows": rows, "viewers": viewers, "error": f"{exc}"}
        print({k: v for k, v in r.items() if k not in ("pooled",)}, flush=True)
        results.append(r)
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100, help="open tickets on the changelist")
    parser.add_argument("--viewers", type=int, default=100, help="staff users, one stream each")
    parser.add_argument("--changes", type=int, default=20, help="saves, one at a time")
    parser.add_argument(
        "--per-user-changes",
        type=int,
        default=5,
        help="saves for the per-user ModelAdmin (each costs a render per viewer)",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--gc-threshold",
        default=TUNED_GC,
        help="gc.set_threshold() for the servers and the load generator ('' for the defaults)",
    )
    parser.add_argument("--name", default="live_admin", help="result file name")
    args = parser.parse_args(argv)
    os.environ[GC_ENV] = args.gc_threshold  # inherited by the servers
    thresholds = apply_gc_threshold(args.gc_threshold)
    prepare_database(database())
    changes = {"shared": args.changes, "per-user": min(args.changes, args.per_user_changes)}
    results = asyncio.run(run(args.variants.split(","), args.rows, args.viewers, changes))
    write_results(
        args.name,
        f"Live admin: a changelist of {args.rows} rows with {args.viewers} staff viewers",
        [("Saves, one at a time", COLUMNS, [row(r) for r in results])],
        [
            "One uvicorn process per ModelAdmin; the load generator in another process on the "
            "same machine (it competes for the CPUs: its time is in the numbers).",
            f"Viewers: {args.viewers} distinct staff users with the same ticket permissions, "
            f"each with a session of their own, on the same page query ({QUERY}); the list "
            "shows every row (list_per_page 100).",
            "Each save changes one ticket's subject (a bench-only POST that saves it in the "
            "server process, as a command would; it publishes the ticket's admin topic from "
            "post_save). Latency: from sending that POST until a viewer has parsed a render "
            "showing the new subject; 'every viewer' is the last of them, per change, and its "
            "p50/p99/max are over the changes.",
            "Renders per change: the server's realtime.stats() renders during the change (the "
            "rows and the paginator are one render); render: the wall time of a render on its worker "
            "thread (realtime's render_seconds; renders per user run side by side on 2 CPUs, "
            "so theirs overlap and include waiting); server CPU: the server process's user and "
            "system time from the save's POST to the last viewer's render, plus 0.3 s. Events: SSE events per viewer per change "
            "(the rows' patch, the paginator's patch); KB: received, read uncompressed "
            "(Accept-Encoding: identity, as bench.fanout; bytes.md has what compression saves).",
            f"Garbage collector: thresholds {thresholds} in the servers and the load generator "
            "(as bench.fanout; docs/deploying.md).",
        ],
        raw=results,
    )
    return results


if __name__ == "__main__":
    main()
