"""Fan-out: N open streams, single commands -> time until every stream has the patch; a burst.

``python -m bench.fanout --n 100 --n 1000 [--peers realtime,realtime-2workers,stario,naive,floor]
[--repeat K]``

Per peer and N: open N streams (wait for every initial render), record server RSS before and
after, send 5 commands one at a time and time each one's arrival on every stream (p50/p99/max from
the POST, over all of them), then send 100 commands in 1 s and time until every stream shows the last state, with the events each
stream received and the renders the server performed (from ``realtime.stats()``; summed over the
worker processes for ``realtime-2workers``, read from each worker's own stats port, as is RSS).
PostgreSQL connections to the bench database are sampled throughout; the maximum is reported
(of all of them, and of each kind: the listeners, the rest).

With ``--repeat K`` the whole run (every N, every peer) is made K times in a row: the p99 of five
commands is their slowest, and this 2-CPU machine's own pace moves by up to 2x between runs, so a
ratio between two systems is given for each run (same run, same client) and as their median.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
import traceback
from contextlib import suppress
from typing import Any

from bench import loadgen
from bench.common import (
    ROOT,
    Server,
    ms,
    percentile,
    pg_connections,
    prepare_database,
    write_results,
)
from bench.peers import PEERS, Peer
from bench.serve import GC_ENV, TUNED_GC, apply_gc_threshold

DEFAULT_PEERS = (
    "realtime",
    "realtime-default-gc",
    "realtime-2workers",
    "stario",
    "naive",
    "naive-listen",
    "floor",
    "eventstream",
    "channels",
)

FULL_SIZES = (50, 100, 1000, 5000, 10000)
#: Largest N a full run gives each peer that cannot go further in bounded time, and why
#: (``--max peer=N`` to change).
FULL_CAPS: dict[str, tuple[int, str]] = {
    # Channels renders (and opens a database connection) per consumer per message: at N=1000 it
    # exhausted PostgreSQL's max_connections (100) in a trial run, which also refuses every other
    # client of that database server (on a shared machine: other people's tests).
    "channels": (100, "at N=1000 it exhausted PostgreSQL max_connections in a trial run"),
    # One connection per stream: PostgreSQL's max_connections (100 here) is the ceiling.
    "naive-listen": (
        100,
        "one PostgreSQL connection per stream: max_connections (100) is the limit",
    ),
    # Renders once per stream per wake: at N=5000 one command took ~1 minute (measured).
    "naive": (1000, "at N=5000 one command took ~1 minute to reach every stream (bounded time)"),
    # One OS thread per open stream; at N=5000 its streams did not all open in 155 s (measured).
    "eventstream": (
        1000,
        "at N=5000 not every stream opened within the time limit (one OS thread per stream)",
    ),
}
BURST = 100
HERE = str(ROOT / "bench")
#: Single commands per N, one at a time (a single one can miss, or catch, a rare pause).
SINGLES = 5


async def _sample_pg(peak: dict[str, int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            now = await asyncio.to_thread(pg_connections)
        except Exception:  # a sample lost to a busy database is not a result
            now = {}
        # Each kind's own peak (a listener that connects after the busiest sample still counts).
        for kind, count in [*now.items(), ("total", sum(now.values()))]:
            peak[kind] = max(peak.get(kind, 0), count)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


#: Counters summed over the workers of a server with several (``realtime-2workers``).
SUMMED = ("renders", "notifications_received", "open_streams", "rss", "listening", "events_sent")


async def server_stats(session: Any, server: Server, peer: Peer) -> dict[str, Any] | None:
    """The peer's counters: from its stats URL, or summed over its workers' stats ports."""
    if not peer.stats:
        return None
    workers = server.workers()
    if not workers:
        data: dict[str, Any] = await loadgen.get_json(session, server.url + peer.stats)
        return data
    each = [await loadgen.get_json(session, f"http://127.0.0.1:{port}/") for _, port in workers]
    total: dict[str, Any] = {key: sum(w.get(key) or 0 for w in each) for key in SUMMED}
    total["workers"] = [{key: w.get(key) for key in ("pid", *SUMMED)} for w in each]
    return total


async def measure(
    peer: Peer, n: int, *, burst: int = BURST, singles: int = SINGLES, scale: float = 1.0
) -> dict[str, Any]:
    """One peer at one N; returns the numbers (a server is started and killed here)."""
    result: dict[str, Any] = {"peer": peer.name, "n": n}
    with peer.start() as server:
        async with loadgen.commands_session() as session:
            status = await loadgen.post(session, server.url + peer.reset)
            if status != 204:
                raise RuntimeError(f"{peer.name}: reset answered {status}")
            stats0 = await server_stats(session, server, peer)
            rss0 = server.rss()
            peak: dict[str, int] = {}
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_pg(peak, stop))
            streams = loadgen.Streams(peer.stream_url(server), n)
            try:
                result["open_s"] = await streams.open(seconds=(30 + n / 40) * scale)
                gc.collect()
                gc.freeze()  # the load generator's N clients are not the server's latency
                result["failed"] = streams.failed
                # The first event's size, so peers' bytes can be compared (same rows, same HTML).
                first = next((c.arrivals[0] for c in streams.clients if c.arrivals), None)
                result["first_event_bytes"] = first[2] if first else None
                await asyncio.sleep(0.5)
                rss1 = server.rss()
                result["rss_per_stream"] = (rss1 - rss0) / max(1, n - streams.failed)
                result["rss0"], result["rss1"] = rss0, rss1
                if streams.failed == n:
                    raise RuntimeError(f"no stream opened: {streams.clients[0].error}")

                # Single commands, one at a time: each one's arrival on every stream.
                lat: list[float] = []
                received = []
                slowest = []  # each command's slowest stream: is one command the tail?
                for k in range(singles):
                    marks = streams.marks()
                    t0 = time.perf_counter()
                    status = await loadgen.post(
                        session, server.url + peer.command, {"name": f"single-{k}"}
                    )
                    result["post_status"] = status
                    await streams.wait_for(
                        lambda i, c, marks=marks: len(c.arrivals) > marks[i], (10 + n / 100) * scale
                    )
                    got = [
                        c.arrivals[marks[i]][0] - t0
                        for i, c in enumerate(streams.clients)
                        if len(c.arrivals) > marks[i]
                    ]
                    received.append(len(got))
                    slowest.append(max(got, default=None))
                    lat += got
                    await asyncio.sleep(0.5)
                result["received"] = min(received)
                result["p50"], result["p99"] = percentile(lat, 50), percentile(lat, 99)
                result["max"] = max(lat) if lat else None
                result["singles_max"] = slowest

                # A burst: BURST commands in one second.
                if burst:
                    stats1 = await server_stats(session, server, peer)
                    marks = streams.marks()
                    expected = [
                        (c.arrivals[-1][1] if c.arrivals else 0) + burst for c in streams.clients
                    ]
                    t0 = time.perf_counter()

                    wait = (20 + n / 20) * scale

                    async def one(k: int) -> int:
                        await asyncio.sleep(k / burst)
                        # A peer that sends every event to every stream (floor, Stario) keeps
                        # its loop, and this client's, busy for seconds per command at large N:
                        # a command's answer may take longer than the session's 30 s.
                        return await loadgen.post(
                            session,
                            server.url + peer.command,
                            {"name": f"burst-{k:03d}"},
                            seconds=wait,
                        )

                    statuses = await asyncio.gather(*(one(k) for k in range(burst)))
                    result["burst_ok"] = sum(1 for s in statuses if s == 204)

                    def converged(i: int, c: loadgen.Client) -> bool:
                        return any(a[1] >= expected[i] for a in c.arrivals[marks[i] :])

                    done = await streams.wait_for(converged, wait)
                    times = [
                        next((a[0] for a in c.arrivals[marks[i] :] if a[1] >= expected[i]), None)
                        for i, c in enumerate(streams.clients)
                    ]
                    reached = [t - t0 for t in times if t is not None]
                    result["burst_converged"] = len(reached)
                    result["burst_converge_s"] = max(reached) if done and reached else None
                    await asyncio.sleep(0.3)
                    result["events_per_stream"] = statistics.mean(
                        len(c.arrivals) - marks[i] for i, c in enumerate(streams.clients)
                    )
                    stats2 = await server_stats(session, server, peer)
                    if stats1 is not None and stats2 is not None:
                        result["burst_renders"] = stats2["renders"] - stats1["renders"]
                        result["burst_notifications"] = (
                            stats2["notifications_received"] - stats1["notifications_received"]
                        )
                        result["stats"] = stats2
                if stats0 is not None:
                    result["stats0"] = stats0
            finally:
                stop.set()
                await sampler
                result["pg_peak"] = peak
                errors = [c.error for c in streams.clients if c.error]
                result["errors"] = len(errors)
                result["first_error"] = errors[0] if errors else None
                await streams.close()
                gc.unfreeze()
                if errors or result.get("failed"):
                    result["server_log"] = server.log_tail(5)
    return result


def row(r: dict[str, Any]) -> list[Any]:
    if "error" in r and "p50" not in r:
        return [r["peer"], r["n"], *["—"] * 10, f"failed: {r['error'][:80]}"]
    pg = r.get("pg_peak", {})
    listeners = pg.get("realtime-listener", 0) + pg.get("naive-listener", 0)
    events = r.get("events_per_stream")
    converge = r.get("burst_converge_s")
    renders = r.get("burst_renders")
    note = [f"run {r['run']}"] if r.get("run") else []
    if r.get("failed"):
        note.append(f"{r['failed']} streams failed to open")
    if r.get("received", r["n"]) < r["n"] - r.get("failed", 0):
        note.append(f"only {r['received']} got the patch")
    if r.get("burst_converged") is not None and r.get("burst_converged", 0) < r["n"] - r.get(
        "failed", 0
    ):
        note.append(f"burst: {r['burst_converged']} converged in time")
    slowest = [t for t in r.get("singles_max") or [] if t is not None]
    if len(slowest) > 2 and max(slowest) > 2 * statistics.median(slowest):
        each = ", ".join(ms(t) for t in slowest)
        note.append(f"one command is the tail: slowest stream of each, {each} ms")
    split = [w.get("open_streams", 0) for w in r.get("stats", {}).get("workers", [])]
    if split:
        note.append("streams per worker: " + " + ".join(map(str, split)))
    return [
        r["peer"],
        r["n"],
        f"{r['open_s']:.1f}",
        ms(r.get("p50")),
        ms(r.get("p99")),
        ms(r.get("max")),
        "—" if converge is None else f"{converge:.2f}",
        "—" if events is None else f"{events:.1f}",
        "—" if renders is None else renders,
        f"{r['rss_per_stream'] / 1024:.1f}",
        f"{pg.get('total', 0)} ({listeners} listener)"
        if r["peer"].startswith(("realtime", "naive"))
        else pg.get("total", 0),
        "; ".join(note),
    ]


COLUMNS = [
    "peer",
    "N",
    "open all (s)",
    f"{SINGLES} single cmds: p50 (ms)",
    "p99 (ms)",
    "max (ms)",
    f"burst {BURST} cmd/1 s: converge (s)",
    "events/stream",
    "renders (server)",
    "RSS/stream (KB)",
    "PG conns (peak)",
    "notes",
]


def chart(results: list[dict[str, Any]]) -> Any:
    def draw(ax: Any) -> None:
        for name in PEERS:
            by_n: dict[int, list[float]] = {}
            for r in results:
                if r["peer"] == name and r.get("p99"):
                    by_n.setdefault(r["n"], []).append(r["p99"] * 1000)
            if by_n:  # the median of the runs at each N
                xs, ys = zip(
                    *sorted((n, statistics.median(p99s)) for n, p99s in by_n.items()), strict=True
                )
                ax.plot(xs, ys, marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("open streams (N)")
        ax.set_ylabel("single commands: p99 until every stream has it (ms)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()

    return draw


def same_run_pairs(
    results: list[dict[str, Any]], a: str, b: str
) -> dict[int, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Per N, peer ``a``'s and peer ``b``'s results of each run that has both (same run, same
    client), in run order."""
    by = {(r.get("run", 1), r["peer"], r["n"]): r for r in results if r.get("p99")}
    pairs: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for (run, peer, n), first in sorted(by.items()):
        second = by.get((run, b, n))
        if peer == a and second is not None:
            pairs.setdefault(n, []).append((first, second))
    return pairs


def p99_ratios(results: list[dict[str, Any]]) -> dict[tuple[str, int], list[float]]:
    """realtime's p99 over each other peer's, per (peer, N): one ratio per run (same run)."""
    return {
        (other, n): [ours["p99"] / theirs["p99"] for ours, theirs in pairs]
        for other in DEFAULT_PEERS[1:]
        for n, pairs in same_run_pairs(results, "realtime", other).items()
    }


def ratios(results: list[dict[str, Any]]) -> list[str]:
    """realtime's p99 against each other peer's, per N: of each run, and their median."""
    notes = []
    found = p99_ratios(results)
    for (other, n), values in sorted(found.items(), key=lambda item: (item[0][1], item[0][0])):
        each = ", ".join(f"{v:.2f}" for v in values)
        line = f"N={n}: realtime p99 / {other} p99 = {each}"
        if len(values) > 1:
            line += f" (median {statistics.median(values):.2f}, {len(values)} runs)"
        notes.append(line)
    return notes


async def run(
    sizes: list[int],
    peers: list[str],
    *,
    burst: int,
    singles: int,
    caps: dict[str, int],
    scale: float,
) -> list[dict[str, Any]]:
    results = []
    for n in sizes:
        for name in peers:
            peer = PEERS[name]
            if n > caps.get(name, n):
                why = FULL_CAPS[name][1] if name in FULL_CAPS else "--max"
                error = f"skipped: N > {caps[name]} for {name}: {why}"
                results.append({"peer": name, "n": n, "error": error})
                continue
            reason = peer.prepare() if peer.prepare else None
            if reason:
                results.append({"peer": name, "n": n, "error": reason})
                continue
            print(f"fanout: {name} N={n} ...", flush=True)
            try:
                r = await measure(peer, n, burst=burst, singles=singles, scale=scale)
            except Exception as exc:  # reported in the table, the run goes on
                r = {"peer": name, "n": n, "error": f"{type(exc).__name__}: {exc}"}
                frames = traceback.extract_tb(exc.__traceback__)
                r["where"] = [
                    f"{f.name}:{f.lineno} {f.line}" for f in frames if f.filename.startswith(HERE)
                ]
            print({k: v for k, v in r.items() if k not in ("stats", "stats0")}, flush=True)
            results.append(r)
    return results


def parse_caps(values: list[str]) -> dict[str, int]:
    caps = {name: cap for name, (cap, _) in FULL_CAPS.items()}
    for value in values:
        name, _, n = value.partition("=")
        caps[name] = int(n)
    return caps


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="open streams (repeatable)")
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS))
    parser.add_argument("--burst", type=int, default=BURST)
    parser.add_argument("--singles", type=int, default=SINGLES, help="single commands per N")
    parser.add_argument(
        "--max", action="append", default=[], metavar="PEER=N", help="largest N for a peer"
    )
    parser.add_argument(
        "--gc-threshold",
        default=TUNED_GC,
        help="gc.set_threshold() for every server and the load generator ('' for the defaults)",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every timeout")
    parser.add_argument(
        "--repeat", type=int, default=1, help="make the whole run this many times (ratios per run)"
    )
    parser.add_argument("--name", default="fanout", help="result file name")
    args = parser.parse_args(argv)
    sizes = args.n or list(FULL_SIZES)
    os.environ[GC_ENV] = args.gc_threshold  # inherited by every server the run starts
    thresholds = apply_gc_threshold(args.gc_threshold)
    prepare_database()
    results = []
    for repeat in range(1, args.repeat + 1):
        if args.repeat > 1:
            print(f"fanout: run {repeat} of {args.repeat}", flush=True)
        made = asyncio.run(
            run(
                sizes,
                args.peers.split(","),
                burst=args.burst,
                singles=args.singles,
                caps=parse_caps(args.max),
                scale=args.scale,
            )
        )
        if args.repeat > 1:
            for r in made:
                r["run"] = repeat
        results += made
    notes = [f"{name}: {PEERS[name].description}" for name in args.peers.split(",")]
    notes += [
        f"Latency: {SINGLES} single commands per N, one at a time, each timed from the moment its POST is sent until the patch is parsed on each stream, by one client process (asyncio + aiohttp) on the same 2-CPU machine as the server: the client competes for CPU, so large-N numbers include client time.",
        "Streams are read uncompressed (Accept-Encoding: identity) so every peer sends the same bytes; see bytes.md for compression.",
        "PG conns: peak connections to the bench database during the run (sampled every 0.25 s); 'listener' is realtime's one LISTEN connection; the rest are render/request threads (CONN_MAX_AGE=0).",
        f"Garbage collector: every server and the load generator run with gc thresholds {thresholds} (Python's default is (700, 10, 10)), except realtime-default-gc; the load generator also freezes its heap (gc.freeze) once its streams are open, so its own collections do not count as server latency. Why: docs/deploying.md.",
        *ratios(results),
    ]
    write_results(
        args.name,
        "Fan-out: one command to N open streams",
        [("", COLUMNS, [row(r) for r in results])],
        notes,
        raw=results,
        chart=chart(results),
    )
    return results


if __name__ == "__main__":
    main()
