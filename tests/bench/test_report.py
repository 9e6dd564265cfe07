"""bench.report: the summary reads a repeated fan-out run as one pair of peers per run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report


def result(run: int, peer: str, n: int, p99: float) -> dict[str, object]:
    return {
        "run": run,
        "peer": peer,
        "n": n,
        "p50": p99 / 2,
        "p99": p99,
        "events_per_stream": 10,
        "rss_per_stream": 20480,
    }


def write(folder: Path, name: str, raw: list[dict[str, object]], date: str) -> None:
    (folder / f"{name}.json").write_text(json.dumps({"machine": {"date": date}, "raw": raw}))


def test_a_repeated_run_shows_its_median_run_and_every_runs_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = [
        result(1, "realtime", 1000, 0.060),
        result(1, "stario", 1000, 0.030),  # 2.00
        result(2, "realtime", 1000, 0.040),
        result(2, "stario", 1000, 0.050),  # 0.80
        result(3, "realtime", 1000, 0.033),
        result(3, "stario", 1000, 0.030),  # 1.10, the median
        result(3, "stario", 100, 0.010),  # no realtime run of N=100: no row
    ]
    write(tmp_path, "fanout-peers", raw, "2026-12-03 09:39 UTC")
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    name, rows = report.stario()
    assert name == "fanout-peers"
    assert rows == [
        [
            "1,000",
            "16 ms / 33 ms",
            "15 ms / 30 ms",
            "1.10 (median of 3 runs: 2.00, 0.80, 1.10)",
            "10 / 10",
            "20 / 20 KB",
        ]
    ]


def test_a_single_run_shows_its_ratio_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = [result(1, "realtime", 100, 0.012), result(1, "stario", 100, 0.010)]
    for r in raw:
        del r["run"]  # a run made once carries no run number
    write(tmp_path, "fanout-peers", raw, "2026-12-03 09:39 UTC")
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    _name, rows = report.stario()
    assert rows[0][3] == "1.20"


def test_the_newest_run_with_both_peers_is_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = [result(1, "realtime", 100, 0.020), result(1, "stario", 100, 0.010)]
    newer = [result(1, "realtime", 100, 0.011), result(1, "stario", 100, 0.010)]
    only_one = [result(1, "realtime", 100, 0.050)]
    write(tmp_path, "fanout-peers", older, "2026-12-01 10:00 UTC")
    write(tmp_path, "fanout-floor-ratio", newer, "2026-12-03 09:39 UTC")
    write(tmp_path, "fanout", only_one, "2026-12-04 08:00 UTC")  # newest, but no Stario
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    name, rows = report.stario()
    assert (name, rows[0][3]) == ("fanout-floor-ratio", "1.10")
