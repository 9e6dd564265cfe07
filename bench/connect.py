"""Reconnect storms: N tabs open their streams at once, and a server restarts under N open tabs.

``python -m bench.connect --n 1000 --n 10000 [--peers floor,realtime] [--rounds 2]
[--restart 10000] [--restart-peers realtime]``

Every tab is a :class:`bench.datastar_client.Tab`: the Datastar client's fetch-and-retry loop
(mirrored from the bundled datastar.js, with the retry options the checkout's
``{% realtime_page %}`` tag writes), all in one asyncio process on the machine the server runs on.

**Burst** (per peer and N, a fresh server, warmed by one stream): 5 groups are written, then N tabs
open their stream at once; the time until every tab has its first render (checked to show the 5
groups: the full state), opens per second, each tab's time to its render (p50, p99), the server's
CPU time per open and its RSS per open stream.

**Restart** (per peer, N tabs live on one process): the server gets SIGTERM (as a deploy or
``systemctl restart`` sends it) and exits; a group is written while it is down (a change no tab may
miss); the same server starts again on the same port. The tabs reconnect as the client does. Timed
from the SIGTERM: the old server's exit, the new one accepting, the first and the last tab with a
fresh render (one showing that group); a command sent once a tenth of the tabs are back must reach
every tab too. The floor has no database and is not restarted.

``realtime-before`` runs another checkout (``BENCH_BEFORE=/path``) in the same run: before/after
figures from one invocation. ``--rounds`` repeats every measurement, alternating the peers' order.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

import psutil

from bench import datastar_client
from bench.common import (
    BENCH_DB,
    ROOT,
    conninfo,
    percentile,
    prepare_database,
    server_env,
    write_results,
)
from bench.datastar_client import RetryOptions, Tab
from bench.loadgen import commands_session, get_json, post
from bench.peers import PEERS, Peer, before_root
from bench.serve import GC_ENV, TUNED_GC, apply_gc_threshold, raise_nofile

FULL_SIZES = (1000, 10000)
#: Groups written before the tabs open: a first render must show them all (the full state).
SEEDED = 5
#: Tabs' signals, as the Datastar client sends them with the stream's GET (none here).
SIGNALS = "?datastar=%7B%7D"
RESTART_PEERS = ("realtime",)


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _options(peer: Peer, override: str = "") -> RetryOptions:
    """The retry options the peer's tag writes, with ``override`` (``--retry-options``: a what-if,
    e.g. ``retryMaxWait: 30000``) over them."""
    root = before_root() if peer.name == "realtime-before" else None
    options = datastar_client.stream_options(root) if root else datastar_client.stream_options()
    return RetryOptions.parse(override, options) if override else options


async def _seed(peer: Peer, url: str, names: list[str]) -> None:
    async with commands_session() as session:
        status = await post(session, url + peer.reset)
        if status != 204:
            raise RuntimeError(f"{peer.name}: reset answered {status}")
        for name in names:
            status = await post(session, url + peer.command, {"name": name})
            if status != 204:
                raise RuntimeError(f"{peer.name}: a command answered {status}")


async def _stats(peer: Peer, url: str) -> dict[str, Any] | None:
    if not peer.stats:
        return None
    async with commands_session() as session:
        data: dict[str, Any] = await get_json(session, url + peer.stats)
        return data


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


async def _open_tabs(
    tabs: list[Tab], session: Any, seconds: float, tasks: list[asyncio.Task[None]]
) -> tuple[float, float, bool]:
    """Start every tab at once (into ``tasks``); wait until each has a render; return (start,
    seconds until the last render, whether every tab has one)."""
    start = time.perf_counter()
    tasks += [asyncio.create_task(tab.run(session)) for tab in tabs]
    waits = [asyncio.create_task(tab.first.wait()) for tab in tabs]
    _, pending = await asyncio.wait(waits, timeout=seconds)
    for wait in pending:
        wait.cancel()
    ends = [tab.renders[0].at for tab in tabs if tab.renders]
    return start, (max(ends) if ends else time.perf_counter()) - start, not pending


async def _stop(tasks: list[asyncio.Task[None]], session: Any) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()


#: The stream signed-in tabs open (LoginRequiredMixin; its render key holds the user).
SIGNED_IN_STREAM = "/test/groups/private/"


def _sessions(n: int, users: int) -> list[str]:
    """``n`` session keys of ``users`` users, written by ``bench.sessions``."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.sessions", "--n", str(n), "--users", str(users)],
        cwd=ROOT,
        env=server_env("bench.settings"),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    keys: list[str] = json.loads(completed.stdout)
    return keys


async def burst(peer: Peer, n: int, users: int = 0) -> dict[str, Any]:
    """One burst of ``n`` tabs on a fresh server of ``peer``; with ``users``, the tabs are
    signed in, ``n / users`` per user (each open loads its session and user; each user's first
    render is its own)."""
    result: dict[str, Any] = {"peer": peer.name, "n": n, "load_before": _load(), "users": users}
    options = _options(peer) if peer.name != "floor" else RetryOptions(retry="always")
    keys = _sessions(n + 1, users) if users else []
    with peer.start() as server:
        await _seed(peer, server.url, [f"seed-{i:02d}" for i in range(SEEDED)])
        url = server.url + (SIGNED_IN_STREAM if users else peer.stream) + SIGNALS

        def tab(i: int) -> Tab:
            return Tab(url, options, cookies={"sessionid": keys[i]} if users else None)

        warm, tasks = datastar_client.session(), []
        _, _, ok = await _open_tabs([tab(n)], warm, 30, tasks)
        await _stop(tasks, warm)
        if not ok:
            raise RuntimeError(f"{peer.name}: the warm-up stream did not open")
        await asyncio.sleep(0.5)
        rss0, cpu0 = server.rss(), _cpu(server.pid)
        tabs = [tab(i) for i in range(n)]
        stats0 = await _stats(peer, server.url)
        session, tasks = datastar_client.session(), []
        try:
            start, seconds, ok = await _open_tabs(tabs, session, 60 + n / 50, tasks)
            cpu1 = _cpu(server.pid)
            gc.collect()
            gc.freeze()  # the load generator's tabs are not the server's cost
            await asyncio.sleep(0.5)
            rss1 = server.rss()
            stats1 = await _stats(peer, server.url)
            if stats0 and stats1:
                result["renders"] = stats1["renders"] - stats0["renders"]
            opened = [t for t in tabs if t.renders]
            times = [t.renders[0].at - start for t in opened]
            result.update(
                open_s=seconds if ok else None,
                opened=len(opened),
                opens_per_s=len(opened) / seconds if ok else None,
                full_state=sum(1 for t in opened if t.renders[0].items == SEEDED),
                errors=sum(t.errors for t in tabs),
                first_error=next((t.last_error for t in tabs if t.last_error), None),
                cpu_ms_per_open=(cpu1 - cpu0) * 1000 / max(1, len(opened)),
                rss_per_stream=(rss1 - rss0) / max(1, len(opened)),
                rss0=rss0,
                rss1=rss1,
                tab_p50=percentile(times, 50),
                tab_p99=percentile(times, 99),
            )
        finally:
            await _stop(tasks, session)
            gc.unfreeze()
            if result.get("opened", n) < n:
                result["server_log"] = server.log_tail(5)
    result["load_after"] = _load()
    return result


async def _command(peer: Peer, url: str, name: str) -> int | str:
    """Send one command (a group named ``name``); its status, or why it failed."""
    try:
        async with commands_session() as session:
            return await post(session, url + peer.command, {"name": name})
    except Exception as exc:  # an overloaded server may not answer in time: reported
        return f"{type(exc).__name__}: {exc}"


def _insert_group(name: str) -> None:
    import psycopg

    with psycopg.connect(conninfo(BENCH_DB), autocommit=True) as conn:
        conn.execute("INSERT INTO auth_group (name) VALUES (%s)", [name])


async def restart(peer: Peer, n: int, delay: float = 0.0, override: str = "") -> dict[str, Any]:
    """``n`` tabs live on ``peer``; the server restarts under them (see the module docstring)."""
    result: dict[str, Any] = {"peer": peer.name, "n": n, "load_before": _load()}
    options = _options(peer, override)
    result["options"] = dataclasses.asdict(options)
    result["override"] = override
    tabs: list[Tab] = []
    tasks: list[asyncio.Task[None]] = []
    session = datastar_client.session()
    with ExitStack() as stack:
        old = stack.enter_context(peer.start())
        await _seed(peer, old.url, [f"seed-{i:02d}" for i in range(SEEDED)])
        url = old.url + peer.stream + SIGNALS
        tabs = [Tab(url, options) for _ in range(n)]
        try:
            _, seconds, ok = await _open_tabs(tabs, session, 60 + n / 50, tasks)
            result["open_s"] = seconds
            if not ok:
                raise RuntimeError(f"only {sum(1 for t in tabs if t.renders)} of {n} tabs opened")
            gc.collect()
            gc.freeze()
            await asyncio.sleep(1.0)
            marks = [len(t.renders) for t in tabs]
            connections = [t.connections for t in tabs]
            attempts = [t.attempts for t in tabs]

            t0 = time.perf_counter()
            result["stop_s"] = await asyncio.to_thread(old.stop)
            _insert_group("while-down")  # committed while every tab is away
            if delay:  # a slower deploy: the new server starts this much later
                await asyncio.sleep(delay)
            result["delay_s"] = delay
            new = await asyncio.to_thread(stack.enter_context, peer.start(port=old.port))
            result["start_s"] = time.perf_counter() - t0
            deadline = t0 + 120

            def fresh(i: int, tab: Tab) -> Any:
                return next(
                    (r for r in tab.renders[marks[i] :] if r.connection > connections[i]), None
                )

            # A command once a tenth of the tabs are back: it must reach every tab too.
            sent_command = False
            while time.perf_counter() < deadline:
                back = sum(1 for i, t in enumerate(tabs) if fresh(i, t))
                if not sent_command and back >= n / 10:
                    sent_command = True
                    result["command_at_s"] = time.perf_counter() - t0
                    command = asyncio.create_task(_command(peer, new.url, "during-storm"))
                converged = sum(1 for t in tabs if t.renders and t.renders[-1].items == SEEDED + 2)
                if back == n and converged == n:
                    break
                await asyncio.sleep(0.05)
            if sent_command:
                result["command_status"] = await command
            firsts = [fresh(i, t) for i, t in enumerate(tabs)]
            times = sorted(r.at - t0 for r in firsts if r is not None)
            converge = [
                next((r.at - t0 for r in t.renders[marks[i] :] if r.items == SEEDED + 2), None)
                for i, t in enumerate(tabs)
            ]
            result.update(
                back=len(times),
                first_live_s=times[0] if times else None,
                all_live_s=times[-1] if len(times) == n else None,
                live_p50=percentile(times, 50),
                live_p99=percentile(times, 99),
                stale=sum(1 for r in firsts if r is not None and r.items < SEEDED + 1),
                converged=sum(1 for c in converge if c is not None),
                all_converged_s=max(c for c in converge if c is not None)
                if all(c is not None for c in converge)
                else None,
                attempts_mean=statistics.mean(
                    t.attempts - a for t, a in zip(tabs, attempts, strict=True)
                ),
                attempts_max=max(t.attempts - a for t, a in zip(tabs, attempts, strict=True)),
                errors=sum(t.errors for t in tabs),
                gave_up=sum(1 for t in tabs if t.gave_up),
                first_error=next((t.last_error for t in tabs if t.last_error), None),
            )
            if result["back"] < n:
                result["server_log"] = new.log_tail(5)
        finally:
            await _stop(tasks, session)
            gc.unfreeze()
    result["load_after"] = _load()
    return result


def _f(value: Any, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


BURST_COLUMNS = [
    "peer",
    "N",
    "tabs",
    "open all (s)",
    "opens/s",
    "tab p50 (s)",
    "tab p99 (s)",
    "server CPU/open (ms)",
    "RSS/stream (KB)",
    "full first render",
    "renders (server)",
    "load avg before",
]


def _tabs(r: dict[str, Any]) -> str:
    users = r.get("users")
    return f"signed in, {r['n'] // users} per user" if users else "anonymous"


def burst_row(r: dict[str, Any]) -> list[Any]:
    if "error" in r:
        return [r["peer"], r["n"], _tabs(r), *["—"] * 8, f"failed: {r['error'][:80]}"]
    return [
        r["peer"],
        r["n"],
        _tabs(r),
        _f(r.get("open_s")),
        _f(r.get("opens_per_s"), 0),
        _f(r.get("tab_p50")),
        _f(r.get("tab_p99")),
        _f(r.get("cpu_ms_per_open"), 3),
        _f(r["rss_per_stream"] / 1024, 1),
        f"{r['full_state']} of {r['n']}",
        r.get("renders", "—"),
        r["load_before"],
    ]


RESTART_COLUMNS = [
    "peer",
    "N",
    "extra boot delay (s)",
    "old server exits (s)",
    "new server accepts (s)",
    "first tab live (s)",
    "all tabs live (s)",
    "tabs live p50 / p99 (s)",
    "stale first renders",
    "command reached",
    "requests per tab (mean / max)",
    "retry options",
    "load avg before",
]


def restart_row(r: dict[str, Any]) -> list[Any]:
    if "error" in r:
        return [r["peer"], r["n"], *["—"] * 10, f"failed: {r['error'][:80]}"]
    o = r.get("options", {})
    return [
        r["peer"],
        r["n"],
        _f(r.get("delay_s"), 1),
        _f(r.get("stop_s")),
        _f(r.get("start_s")),
        _f(r.get("first_live_s")),
        _f(r.get("all_live_s")) if r.get("all_live_s") else f"{r.get('back')} of {r['n']} back",
        f"{_f(r.get('live_p50'))} / {_f(r.get('live_p99'))}",
        r.get("stale"),
        f"{r.get('converged')} of {r['n']}",
        f"{r.get('attempts_mean', 0):.1f} / {r.get('attempts_max')}",
        (
            f"interval {o.get('interval'):.0f} ms, x{o.get('scaler')}, max {o.get('max_wait'):.0f} ms"
            + (" (what-if)" if r.get("override") else " (the tag's)")
        )
        if o
        else "—",
        r["load_before"],
    ]


async def run(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    bursts: list[dict[str, Any]] = []
    restarts: list[dict[str, Any]] = []
    peers = [p for p in args.peers.split(",") if p]
    for round_ in range(args.rounds):
        order = peers if round_ % 2 == 0 else peers[::-1]
        for n in args.n or FULL_SIZES:
            for name in order:
                bursts.append(await _measure(burst, name, n, round_, "burst"))
                if args.signed_in and name != "floor":
                    signed_in = functools.partial(burst, users=max(1, n // args.signed_in))
                    bursts.append(await _measure(signed_in, name, n, round_, "signed-in burst"))
        for n in [n for n in args.restart if n > 0]:
            for delay in args.restart_delay or [0.0]:
                for name in [p for p in args.restart_peers.split(",") if p]:
                    for override in args.retry_options or [""]:
                        run_restart = functools.partial(restart, delay=delay, override=override)
                        restarts.append(await _measure(run_restart, name, n, round_, "restart"))
    return bursts, restarts


async def _measure(fn: Any, name: str, n: int, round_: int, what: str) -> dict[str, Any]:
    peer = PEERS[name]
    reason = peer.prepare() if peer.prepare else None
    if reason:
        return {"peer": name, "n": n, "round": round_, "error": reason}
    print(f"connect: {what} {name} N={n} (round {round_ + 1}) ...", flush=True)
    try:
        r = await fn(peer, n)
    except Exception as exc:  # reported in the table, the run goes on
        r = {"peer": name, "n": n, "error": f"{type(exc).__name__}: {exc}"}
        r["users"] = getattr(fn, "keywords", {}).get("users", 0)
    r["round"] = round_
    print({k: v for k, v in r.items() if k != "server_log"}, flush=True)
    return r


def main(argv: list[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="tabs in a burst (repeatable)")
    parser.add_argument("--peers", default="floor,realtime")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every measurement")
    parser.add_argument(
        "--restart",
        type=int,
        action="append",
        default=None,
        help="tabs for the restart (repeatable; 0: none; default 10000 unless --n is given)",
    )
    parser.add_argument("--restart-peers", default=",".join(RESTART_PEERS))
    parser.add_argument(
        "--signed-in",
        type=int,
        default=0,
        metavar="TABS",
        help="also a burst of signed-in tabs, TABS per user (their own session each; 0: none)",
    )
    parser.add_argument(
        "--restart-delay",
        type=float,
        action="append",
        help="seconds between the old server's exit and the new one's start (a slower deploy; "
        "repeatable; default 0)",
    )
    parser.add_argument(
        "--retry-options",
        action="append",
        help="what-if retry options over the tag's, e.g. 'retryMaxWait: 30000' (repeatable: each "
        "is a restart of its own; '' is the tag's)",
    )
    parser.add_argument("--gc-threshold", default=TUNED_GC)
    parser.add_argument("--name", default="connect", help="result file name")
    args = parser.parse_args(argv)
    if args.restart is None:
        args.restart = [] if args.n else [10000]
    os.environ[GC_ENV] = args.gc_threshold
    thresholds = apply_gc_threshold(args.gc_threshold)
    raise_nofile()
    prepare_database()
    bursts, restarts = asyncio.run(run(args))
    notes = [f"{name}: {PEERS[name].description}" for name in args.peers.split(",")]
    notes += [
        "Tabs: bench/datastar_client.py, the Datastar client's fetch-and-retry loop mirrored from the bundled datastar.js (v1.0.1), with the retry options the checkout's {% realtime_page %} tag writes; all tabs in one asyncio process (aiohttp) on the same 2-CPU machine as the server, so they compete with it for CPU.",
        f"Burst: a fresh server per row, warmed by one stream; {SEEDED} groups written first; every tab starts at once; 'open all' ends when the last tab has its first render; 'full first render' counts the first renders that show all {SEEDED} groups. Server CPU is the server process's user+system time over the burst; RSS per stream is measured 0.5 s after the last open.",
        "Restart: SIGTERM to the server, which ends its streams and exits; a group is INSERTed while it is down; the same server starts on the same port. 'Tabs live' counts a tab back at its first render on a new connection; 'stale first renders' are those that did not show the group written while the server was down (must be 0); 'command reached' counts the tabs that showed a command sent once a tenth of them were back.",
        f"Garbage collector: servers and the load generator run with gc thresholds {thresholds} (see docs/deploying.md).",
        "Load average (1/5/15 min) is the machine's, shared with other work: compare rows of one run.",
    ]
    tables = [
        ("Burst: N tabs open their streams at once", BURST_COLUMNS, [burst_row(r) for r in bursts])
    ]
    if restarts:
        tables.append(
            ("Restart under N open tabs", RESTART_COLUMNS, [restart_row(r) for r in restarts])
        )
    write_results(
        args.name,
        "Reconnect storms: opening streams, and a restart under open tabs",
        tables,
        notes,
        raw={"burst": bursts, "restart": restarts},
    )
    return bursts, restarts


if __name__ == "__main__":
    main()
