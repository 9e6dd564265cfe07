"""Each benchmark script at a tiny size (N = 20), so the benchmarks never rot.

The scripts run as subprocesses (they start and kill their own servers) on a database of their own
and write their results to a temporary directory. The Channels peer runs only with
``BENCH_SMOKE_CHANNELS=1``, the django-eventstream peer only with ``BENCH_SMOKE_EVENTSTREAM=1`` and
the Stario peer only with ``BENCH_SMOKE_STARIO=1`` (each creates its virtualenv,
``bench/.venv-channels``, ``bench/.venv-eventstream`` or ``bench/.venv-stario``, on first use,
which needs the network and minutes; Stario also needs Python 3.12 or newer).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, unmeasured

pytestmark = pytest.mark.slow


def run_bench(tmp_path: Path, *args: str) -> None:
    env = {"BENCH_RESULTS": str(tmp_path), "BENCH_DB": "bench_smoke"}
    completed = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**_environ(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]


def _environ() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["PYTHONPATH"] = str(ROOT)
    return unmeasured(env)


def test_fanout(tmp_path: Path) -> None:
    peers = "realtime,realtime-default-gc,realtime-2workers,naive,naive-listen,floor"
    if os.environ.get("BENCH_SMOKE_CHANNELS") == "1":
        # Opt-in: needs bench/.venv-channels, and its per-consumer database connections can hit
        # max_connections on a PostgreSQL shared with other test runs.
        peers += ",channels"
    if os.environ.get("BENCH_SMOKE_EVENTSTREAM") == "1":
        # Opt-in: needs bench/.venv-eventstream (created on first use).
        peers += ",eventstream"
    if os.environ.get("BENCH_SMOKE_STARIO") == "1":
        # Opt-in: needs bench/.venv-stario (created on first use, Python >= 3.12).
        peers += ",stario"
    run_bench(
        tmp_path, "bench.fanout", "--n", "20", "--burst", "10", "--singles", "2", "--peers", peers
    )
    results = json.loads((tmp_path / "fanout.json").read_text())["raw"]
    assert {r["peer"] for r in results} == set(peers.split(","))
    for r in results:
        assert "error" not in r, r
        assert r["received"] == 20, r
        assert r["burst_converged"] == 20, r
    ours = next(r for r in results if r["peer"] == "realtime")
    # The counters move: one shared render per wake, fewer renders than notifications.
    assert 0 < ours["burst_renders"] <= ours["burst_notifications"] == 10
    assert ours["pg_peak"].get("realtime-listener") == 1
    # The naive design: a LISTEN connection and a render per stream and notification.
    naive = next(r for r in results if r["peer"] == "naive-listen")
    assert naive["pg_peak"].get("naive-listener") == 20
    assert naive["burst_renders"] == 20 * 10  # 20 streams, 10 commands
    # Two uvicorn workers behind one port: a LISTEN connection each, the streams split between
    # them, every notification reaching both, the counters summed over both.
    two = next(r for r in results if r["peer"] == "realtime-2workers")
    workers = two["stats"]["workers"]
    assert len({w["pid"] for w in workers}) == 2
    assert sum(w["open_streams"] for w in workers) == two["stats"]["open_streams"] == 20
    # The kernel picks the worker of each connection: now and then all 20 land on one, whose
    # listener is then the only one (a process listens once it has a stream).
    holding = sum(1 for w in workers if w["open_streams"])
    assert two["pg_peak"].get("realtime-listener") == holding
    assert two["burst_notifications"] == holding * 10
    assert 0 < two["burst_renders"] <= two["burst_notifications"]
    if "stario" in peers:
        # Stario: one read and render per command, handed to every stream by its Relay; the
        # same bytes as realtime's stream for the same rows.
        theirs = next(r for r in results if r["peer"] == "stario")
        assert theirs["burst_renders"] == theirs["burst_notifications"] == 10
        assert theirs["first_event_bytes"] == ours["first_event_bytes"]
    if "eventstream" in peers:
        # django-eventstream: one render and one send_event per command.
        theirs = next(r for r in results if r["peer"] == "eventstream")
        assert theirs["burst_renders"] == theirs["burst_notifications"] == 10
    assert (tmp_path / "fanout.md").read_text().startswith("# Fan-out")
    assert (tmp_path / "fanout.png").stat().st_size > 0


def test_commands(tmp_path: Path) -> None:
    run_bench(tmp_path, "bench.commands", "--count", "20")
    results = json.loads((tmp_path / "commands.json").read_text())["raw"]
    assert all(r["statuses"] == {"204": 20} for r in results), results


def test_bytes(tmp_path: Path) -> None:
    run_bench(tmp_path, "bench.bytes", "--n", "20", "--updates", "5")
    sent = json.loads((tmp_path / "bytes.json").read_text())["raw"]["bytes"]
    raw = sent.pop("identity (raw)")
    assert len(sent) == 4
    for label, size in sent.items():
        assert 0 < size < raw, label


def test_presence(tmp_path: Path) -> None:
    run_bench(tmp_path, "bench.presence", "--n", "20", "--rounds", "2", "--seconds", "3")
    result = json.loads((tmp_path / "presence.json").read_text())["raw"]
    assert len(result["join_last"]) == len(result["leave_last"]) == 2
    assert result["churn_cycles"] > 0
    # Batched: fewer presence transactions than joins and leaves.
    assert 0 < result["presence_writes"] < 2 * result["churn_cycles"]


def test_live_admin(tmp_path: Path) -> None:
    run_bench(tmp_path, "bench.live_admin", "--rows", "10", "--viewers", "5", "--changes", "3")
    results = {
        r["variant"]: r for r in json.loads((tmp_path / "live_admin.json").read_text())["raw"]
    }
    for r in results.values():
        assert "error" not in r, r
        assert len(r["every"]) == 3, r  # every change reached every viewer
    # Staff with equal rights share one render per change; per user, one render each.
    assert results["shared"]["renders"] == [1, 1, 1]
    assert results["per-user"]["renders"] == [5, 5, 5]
    assert (tmp_path / "live_admin.md").read_text().startswith("# Live admin")


def test_connect(tmp_path: Path) -> None:
    run_bench(
        tmp_path, "bench.connect", "--n", "20", "--peers", "floor,realtime", "--restart", "20"
    )
    results = json.loads((tmp_path / "connect.json").read_text())["raw"]
    assert {r["peer"] for r in results["burst"]} == {"floor", "realtime"}
    for r in results["burst"]:
        assert "error" not in r, r
        assert r["full_state"] == 20, r  # every first render is the full state
    [restart] = results["restart"]
    assert "error" not in restart, restart
    # Every tab came back with a fresh render that shows what was written while it was away,
    # and then got the command sent while the others were reconnecting.
    assert restart["back"] == restart["converged"] == 20, restart
    assert restart["stale"] == 0, restart
    assert (tmp_path / "connect.md").read_text().startswith("# Reconnect storms")


def test_notify_ceiling(tmp_path: Path) -> None:
    run_bench(
        tmp_path,
        "bench.notify_ceiling",
        *("--clients", "1,2", "--seconds", "1", "--rounds", "1", "--burst", "200"),
    )
    raw = json.loads((tmp_path / "notify_ceiling.json").read_text())["raw"]
    rates = raw["throughput"]
    assert len(rates) == 4 * 2  # variants x writer counts
    for r in rates:
        assert r["tps"] > 0, r
        assert r["failed"] == 0, r
        if r["variant"] != "no notify":
            # Every committed publishing transaction reached the listener.
            assert r["received"] == r["transactions"], r
    prompt, stuck = raw["bursts"]
    assert not prompt["stuck_listener"]
    assert stuck["stuck_listener"]
    # The stuck session holds the queue until its transaction ends, then reads every one.
    assert stuck["peak_usage"] > 0
    assert stuck["stuck_delivered"] == stuck["transactions"] == 200
    assert (tmp_path / "notify_ceiling.md").read_text().startswith("# NOTIFY")


def test_fanout_repeated_gives_the_floor_ratio_of_each_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_bench(
        tmp_path,
        "bench.fanout",
        *("--n", "20", "--burst", "0", "--singles", "2", "--peers", "floor,realtime"),
        *("--repeat", "2", "--name", "fanout-floor-ratio"),
    )
    results = json.loads((tmp_path / "fanout-floor-ratio.json").read_text())["raw"]
    assert sorted((r["run"], r["peer"]) for r in results) == [
        (1, "floor"),
        (1, "realtime"),
        (2, "floor"),
        (2, "realtime"),
    ]
    table = (tmp_path / "fanout-floor-ratio.md").read_text()
    assert "N=20: realtime p99 / floor p99 = " in table
    assert "(median " in table
    assert "run 2" in table
    # The report's #17 target reads the ratio of each run.
    from bench import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    by = {(r["run"], r["peer"]): r["p99"] for r in results}
    expected = [by[run, "realtime"] / by[run, "floor"] for run in (1, 2)]
    name, pairs = report._pair("realtime", "floor", sizes=(20,))
    assert name == "fanout-floor-ratio"
    assert {n: [r["p99"] / f["p99"] for r, f in runs] for n, runs in pairs.items()} == {
        20: expected
    }
