"""Summarise bench/results/*.json against the targets of the benchmarks issue (summary.md)."""

from __future__ import annotations

import json
import statistics
from typing import Any

from bench.commands import CEILING
from bench.common import RESULTS, markdown_table, percentile
from bench.fanout import same_run_pairs

Run = dict[str, Any]
#: Two peers' results of one fan-out run (same run, same client), one pair per run.
Pairs = list[tuple[Run, Run]]


def _load(name: str) -> Any:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**missed**")


def targets() -> list[list[str]]:
    rows: list[list[str]] = []
    fan = _load("fanout")
    runs = [r for r in (fan or {}).get("raw", []) if r.get("p99")]
    ours = {r["n"]: r for r in runs if r["peer"] == "realtime"}
    if ours:
        top = max(ours)
        r = ours[top]
        kb = r["rss_per_stream"] / 1024
        ok = top >= 10000 and kb <= 50
        rows.append(
            [
                "≥ 10,000 streams per process at ≤ 50 KB RSS each",
                f"{top:,} streams held (largest N run), {kb:.0f} KB each",
                _verdict(ok),
            ]
        )
    rows += floor_ratio_targets()
    for n, limit in ((1000, 0.1), (10000, 1.0)):
        r = ours.get(n)
        got = f"p99 {r['p99'] * 1000:.0f} ms" if r else "N not run"
        rows.append(
            [
                f"a command reaches {n:,} streams, p99 ≤ {limit * 1000:.0f} ms (5 commands, one at a time)",
                got,
                _verdict(r["p99"] <= limit if r else None),
            ]
        )
    if ours:
        r = ours[max(ours)]
        if "burst_renders" in r:
            ok = r["burst_renders"] <= r["burst_notifications"]
            rows.append(
                [
                    "renders per notification = distinct views (1 here), not subscribers",
                    f"{r['burst_renders']} renders for {r['burst_notifications']} notifications to {r['n']:,} streams (burst; coalesced)",
                    _verdict(ok),
                ]
            )
    cmd = _load("commands")
    if cmd:
        default = [r for r in cmd["raw"] if r.get("variant", "demo settings") == "demo settings"]
        one = next(r for r in default if r["concurrency"] == 1)
        best = max(r["per_s"] for r in default)
        rows.append(
            ["POST→204 p50 ≤ 5 ms", f"{one['p50'] * 1000:.1f} ms", _verdict(one["p50"] <= 0.005)]
        )
        rows.append(["≥ 500 commands/s per process", f"{best:.0f}/s", _verdict(best >= 500)])
        rows += command_ratio_targets(cmd["raw"])
    by = _load("bytes")
    if by:
        sent, memory = by["raw"]["bytes"], by["raw"]["memory"]
        raw = sent["identity (raw)"] or 1
        both = [
            e
            for e in sent
            if not e.startswith("identity")
            and sent[e] / raw <= 0.05
            and memory[e]["rss_per_stream"] <= 50 * 1024
        ]
        desc = ", ".join(
            f"{e} {100 * sent[e] / raw:.1f} % / {memory[e]['rss_per_stream'] / 1024:.0f} KB"
            for e in sent
        )
        rows.append(
            ["compressed ≤ 5 % of raw **and** ≤ 50 KB RSS per stream", desc, _verdict(bool(both))]
        )
    theirs = {r["n"]: r for r in runs if r["peer"] == "channels"}
    common = sorted(set(theirs) & set(ours))
    if common:
        n = common[-1]
        r = theirs[n]
        ratio = r["p99"] / ours[n]["p99"]
        reached = f"{r['received']} of {n} Channels streams got the patch"
        rows.append(
            [
                "≥ 10x faster fan-out than Channels + channels-postgres",
                f"{ratio:.1f}x at N={n} (p99; {reached}; larger N not run, see fanout.md)",
                _verdict(ratio >= 10),
            ]
        )
    else:
        rows.append(
            [
                "≥ 10x faster fan-out than Channels + channels-postgres",
                "no N where both delivered the patch",
                _verdict(None),
            ]
        )
    rows += live_admin_targets()
    rows += storm_targets()
    default_gc = {r["n"]: r for r in runs if r["peer"] == "realtime-default-gc"}
    if 10000 in default_gc:
        r = default_gc[10000]
        rows.append(
            [
                "(context) the 10,000-stream p99 with Python's default GC thresholds",
                f"p99 {r['p99'] * 1000:.0f} ms (the rows above: gc.set_threshold as in docs/deploying.md)",
                "—",
            ]
        )
    return rows


def floor_ratio_targets() -> list[list[str]]:
    """Fan-out p99 against the floor's in the same run (#17), from the newest fan-out run that has
    both; of each run and their median when it was repeated (``bench.fanout --repeat``)."""
    name, pairs = _pair("realtime", "floor", sizes=(1000, 10000))
    rows = []
    for n, runs in sorted(pairs.items()):
        values = [ours["p99"] / floor["p99"] for ours, floor in runs]
        median = statistics.median(values)
        each = ", ".join(f"{v:.2f}x" for v in values)
        measured = (
            f"{median:.2f}x; {name}.md"
            if len(values) == 1
            else (f"median {median:.2f}x of {len(values)} runs ({each}); {name}.md")
        )
        rows.append(
            [
                f"fan-out p99 within 1.25x of the floor at N = {n:,} (same run)",
                measured,
                _verdict(median <= 1.25),
            ]
        )
    return rows


def command_ratio_targets(raw: list[dict[str, Any]]) -> list[list[str]]:
    """Commands against Django's own 204 ceiling (one at a time), and 1 against 2 workers."""
    by = {(r["variant"], r["concurrency"]): r for r in raw}
    rows: list[list[str]] = []
    ours, ceiling = by.get(("demo settings", 1)), by.get((CEILING, 1))
    if ours and ceiling:
        ratio = ours["p50"] / ceiling["p50"]
        rows.append(
            [
                "POST→204 p50 within 1.2x of Django's own 204 ceiling (same middleware)",
                f"{ratio:.2f}x ({ours['p50'] * 1000:.1f} / {ceiling['p50'] * 1000:.1f} ms)",
                _verdict(ratio <= 1.2),
            ]
        )
    one = max((r["per_s"] for (v, _), r in by.items() if v == "demo settings"), default=None)
    two = max(
        (r["per_s"] for (v, _), r in by.items() if v == "demo settings, 2 workers"), default=None
    )
    if one and two:
        rows.append(
            [
                "command throughput grows with worker processes",
                f"{one:.0f}/s with 1, {two:.0f}/s with 2 (client on the same 2 CPUs)",
                _verdict(two > one),
            ]
        )
    return rows


def live_admin_targets() -> list[list[str]]:
    """The live admin (#18): staff with equal rights share one render per change, and a change
    reaches every viewer of the changelist within the issue's second."""
    result = _load("live_admin")
    shared = next(
        (r for r in (result or {}).get("raw", []) if r["variant"] == "shared" and "every" in r),
        None,
    )
    what = "a live changelist: staff with equal rights share one render per change"
    when = "a change reaches every viewer of a live changelist, p99 ≤ 1 s"
    if shared is None:
        return [[what, "not run", _verdict(None)], [when, "not run", _verdict(None)]]
    size = f"{shared['rows']} rows, {shared['viewers']} staff viewers"
    per_change = sum(shared["renders"]) / len(shared["renders"])
    per_user = next(
        (r for r in result["raw"] if r["variant"] == "per-user" and "renders" in r), None
    )
    theirs = (
        f"; {sum(per_user['renders']) / len(per_user['renders']):.0f} when it renders per user"
        if per_user
        else ""
    )
    p99 = percentile(shared["every"], 99) or 0.0
    return [
        [what, f"{per_change:.1f} renders per change ({size}){theirs}", _verdict(per_change <= 1)],
        [when, f"p99 {p99 * 1000:.0f} ms ({size})", _verdict(p99 <= 1.0)],
    ]


def storm_targets() -> list[list[str]]:
    """The reconnect-storm targets (issue #20), from connect.json."""
    data = _load("connect")
    if not data:
        return [["reconnect storms (bench.connect)", "not run", _verdict(None)]]
    raw = data["raw"]
    rows: list[list[str]] = []
    bursts = [r for r in raw.get("burst", []) if r.get("opens_per_s") and not r.get("users")]
    floor = {r["n"]: r for r in bursts if r["peer"] == "floor"}
    for n in (1000, 10000):
        ours = [r for r in bursts if r["peer"] == "realtime" and r["n"] == n]
        if not ours:
            rows.append([f"≥ 1,000 stream opens/s at N = {n:,}", "N not run", _verdict(None)])
            continue
        worst = min(r["opens_per_s"] for r in ours)
        against = f" (floor {floor[n]['opens_per_s']:,.0f}/s)" if n in floor else ""
        rows.append(
            [
                f"≥ 1,000 stream opens/s at N = {n:,} (all at once, first render included)",
                f"{worst:,.0f}/s, the slowest of {len(ours)} run(s){against}",
                _verdict(worst >= 1000),
            ]
        )
    ours = [r for r in bursts if r["peer"] == "realtime"]
    if ours:
        top = max(r["n"] for r in ours)
        kb = max(r["rss_per_stream"] for r in ours if r["n"] == top) / 1024
        rows.append(
            [
                "RSS per open stream ≤ 25 KB",
                f"{kb:.1f} KB at N = {top:,} (all at once; the largest of its runs)",
                _verdict(kb <= 25),
            ]
        )
    restarts = [
        r
        for r in raw.get("restart", [])
        if r["peer"] == "realtime" and r["n"] >= 10000 and not r.get("delay_s") and "error" not in r
    ]
    if restarts:
        live = [r.get("all_live_s") for r in restarts]
        ok = all(t is not None and t <= 15 for t in live) and not any(r["stale"] for r in restarts)
        shown = ", ".join("not all" if t is None else f"{t:.1f} s" for t in live)
        rows.append(
            [
                "a restart under 10,000 tabs: every tab live again (fresh render) within 15 s",
                f"{shown} from SIGTERM; stale first renders: {sum(r['stale'] for r in restarts)}",
                _verdict(ok),
            ]
        )
    else:
        rows.append(
            ["a restart under 10,000 tabs: all live within 15 s", "not run", _verdict(None)]
        )
    return rows


#: Fan-out result files: ``make bench``'s, the peers' run (Stario, two workers), and a repeated
#: run against the floor (``--repeat``, for #17's ratio). A comparison of two peers takes both
#: from one file, the newest that has both.
FANOUT_FILES = ("fanout", "fanout-peers", "fanout-floor-ratio")


def _newest_first(names: tuple[str, ...]) -> list[str]:
    """The result files of ``names`` that exist, the most recently measured first."""
    dated = [(data["machine"]["date"], name) for name in names if (data := _load(name))]
    return [name for _, name in sorted(dated, reverse=True)]


def _pair(
    a: str, b: str, files: tuple[str, ...] = FANOUT_FILES, sizes: tuple[int, ...] | None = None
) -> tuple[str, dict[int, Pairs]]:
    """``(file, {N: [(a's run, b's run), ...]})`` from the newest fan-out file that has both (at
    an N of ``sizes``, if given): one pair per run of a repeated ``bench.fanout`` (same run, same
    client)."""
    for name in _newest_first(files):
        pairs = same_run_pairs((_load(name) or {}).get("raw", []), a, b)
        if sizes is not None:
            pairs = {n: runs for n, runs in pairs.items() if n in sizes}
        if pairs:
            return name, pairs
    return "", {}


def _median_pair(pairs: Pairs) -> tuple[Run, Run, str]:
    """The run whose p99 ratio (first over second) is the median, and that ratio as text (with
    every run's when repeated)."""
    ranked = sorted(pairs, key=lambda pair: pair[0]["p99"] / pair[1]["p99"])
    first, second = ranked[(len(ranked) - 1) // 2]
    ratio = f"{first['p99'] / second['p99']:.2f}"
    if len(pairs) > 1:
        each = ", ".join(f"{r['p99'] / s['p99']:.2f}" for r, s in pairs)
        ratio += f" (median of {len(pairs)} runs: {each})"
    return first, second, ratio


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def stario() -> tuple[str, list[list[str]]]:
    """Per N: this project against Stario (one process each); the median run when repeated."""
    name, pairs = _pair("realtime", "stario")
    rows = []
    for n, runs in sorted(pairs.items()):
        r, s, ratio = _median_pair(runs)
        rows.append(
            [
                f"{n:,}",
                f"{_ms(r['p50'])} / {_ms(r['p99'])}",
                f"{_ms(s['p50'])} / {_ms(s['p99'])}",
                ratio,
                f"{r.get('events_per_stream', 0):.0f} / {s.get('events_per_stream', 0):.0f}",
                f"{r['rss_per_stream'] / 1024:.0f} / {s['rss_per_stream'] / 1024:.0f} KB",
            ]
        )
    return name, rows


def workers() -> tuple[str, list[list[str]]]:
    """Per N: this project in one process against two uvicorn workers behind one port; the
    median run when repeated."""
    name, pairs = _pair("realtime", "realtime-2workers")
    rows = []
    for n, runs in sorted(pairs.items()):
        r, t, ratio = _median_pair(runs)
        split = " + ".join(str(w["open_streams"]) for w in t.get("stats", {}).get("workers", []))
        listeners = [x["pg_peak"].get("realtime-listener", 0) for x in (r, t)]
        rows.append(
            [
                f"{n:,}",
                f"{_ms(r['p99'])} / {_ms(t['p99'])}",
                ratio,
                f"{r.get('burst_renders', '—')} / {t.get('burst_renders', '—')}",
                f"{listeners[0]} / {listeners[1]}",
                f"{r['rss1'] / 2**20:.0f} / {t['rss1'] / 2**20:.0f} MB",
                split or "—",
            ]
        )
    return name, rows


def notify() -> list[list[str]]:
    """Per writer count: commits per second with and without pg_notify."""
    data = _load("notify_ceiling")
    if not data:
        return []
    by = {(r["variant"], r["clients"]): r for r in data["raw"]["throughput"]}
    rows = []
    for c in sorted({c for _, c in by}):
        plain, notified = by.get(("no notify", c)), by.get(("notify", c))
        if plain and notified and plain["tps"] and notified["tps"]:
            rows.append(
                [
                    str(c),
                    f"{plain['tps']:,.0f}",
                    f"{notified['tps']:,.0f}",
                    f"{notified['tps'] / plain['tps']:.2f}",
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> str:
    text = markdown_table(["target", "measured", "verdict"], targets())
    parts = ["# Targets", "", text, ""]
    source, rows = stario()
    if rows:
        columns = [
            "N",
            "realtime p50 / p99",
            "Stario p50 / p99",
            "realtime p99 / Stario p99",
            "burst: events per stream (realtime / Stario)",
            "RSS per stream",
        ]
        parts += [f"## realtime and Stario, one process each ({source}.md)", ""]
        parts += [markdown_table(columns, rows), ""]
    source, rows = workers()
    if rows:
        columns = [
            "N",
            "p99: 1 process / 2 workers",
            "p99 ratio (1 process / 2 workers)",
            "burst renders (summed)",
            "LISTEN connections",
            "RSS (workers summed)",
            "streams per worker",
        ]
        parts += [f"## One process and two uvicorn workers ({source}.md)", ""]
        parts += [markdown_table(columns, rows), ""]
    if rows := notify():
        columns = ["writers", "tx/s without notify", "tx/s with pg_notify", "ratio"]
        parts += [
            "## NOTIFY's write ceiling (notify_ceiling.md)",
            "",
            markdown_table(columns, rows),
        ]
        parts.append("")
    summary = "\n".join(parts)
    (RESULTS / "summary.md").write_text(summary)
    print(summary)
    return text


if __name__ == "__main__":
    main()
