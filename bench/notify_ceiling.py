"""NOTIFY's write ceiling: committed transactions per second with and without ``pg_notify``.

``python -m bench.notify_ceiling [--clients 1,8,32,64] [--seconds 3] [--rounds 3] [--burst 20000]``

A command's transaction, as PostgreSQL sees it: two INSERTs (a write-model row and its projection)
and, when it publishes, ``SELECT pg_notify(channel, topic)`` (the statement ``publish()`` runs),
then COMMIT. pgbench (shipped with the embedded PostgreSQL, or the system's) runs it with 1, 8, 32
and 64 concurrent writers for a few seconds each, three rounds with the variants interleaved
(medians reported), in these variants:

- **no notify**: the transaction without ``pg_notify``;
- **notify**: with it: a transaction that has notified takes one server-wide lock at commit and
  holds it through the commit's WAL flush, so publishing commits are serialized;
- **notify, synchronous_commit=off**: the same, without waiting for the flush (the lock is held
  for less time; a crash can lose the last commits, not corrupt anything);
- **10 commands per transaction, one notify**: publish per batch (the rate is reported in
  commands, ten per transaction).

While they run, one listener (as a realtime process's, reading at once) counts the notifications
it receives: every committed publishing transaction must arrive. Then a burst of notifying
transactions runs while another session that LISTENs sits in an open transaction (a stuck or slow
listener: PostgreSQL cannot discard a notification before every listening session has read it),
with ``pg_notification_queue_usage()`` sampled every 0.1 s, and again after that session ends.
Same burst with only the prompt listener, for contrast.

The embedded PostgreSQL keeps its data on this machine's disk with ``fsync`` on: the flush time,
and so the notify ceiling, is this disk's. Results in bench/results/notify_ceiling.{md,json}.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench.common import BENCH_DB, conninfo, prepare_database, write_results

CLIENTS = (1, 8, 32, 64)
SECONDS = 3
ROUNDS = 3
BURST = 20000
CHANNEL = "bench_notify_ceiling"
TOPIC = "tickets"
WRITES = "bench_ceiling_writes"
READS = "bench_ceiling_reads"
BATCH = 10

_INSERTS = f"""INSERT INTO {WRITES} (name) VALUES ('cmd-' || :n);
INSERT INTO {READS} (name, n) VALUES ('cmd-' || :n, :n);
"""
_NOTIFY = f"SELECT pg_notify('{CHANNEL}', '{TOPIC}');\n"
SCRIPTS = {
    "plain": "\\set n random(1, 1000000000)\nBEGIN;\n" + _INSERTS + "COMMIT;\n",
    "notify": "\\set n random(1, 1000000000)\nBEGIN;\n" + _INSERTS + _NOTIFY + "COMMIT;\n",
    "batch": "\\set n random(1, 1000000000)\nBEGIN;\n"
    + "".join(_INSERTS.replace(":n", f"(:n + {k})") for k in range(BATCH))
    + _NOTIFY
    + "COMMIT;\n",
}
#: (label, script, PGOPTIONS, commands per transaction)
VARIANTS: tuple[tuple[str, str, str, int], ...] = (
    ("no notify", "plain", "", 1),
    ("notify", "notify", "", 1),
    ("notify, synchronous_commit=off", "notify", "-c synchronous_commit=off", 1),
    (f"{BATCH} commands per transaction, one notify", "batch", "", BATCH),
)


def pgbench_path() -> str:
    """The embedded PostgreSQL's pgbench (same version as the server), else one on PATH."""
    try:
        from pgserver.postgres_server import POSTGRES_BIN_PATH

        candidate = Path(POSTGRES_BIN_PATH) / "pgbench"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("pgbench")
    if found is None:
        raise SystemExit(
            "pgbench not found: install the embedded PostgreSQL (pip install -e '.[embedded]') "
            "or PostgreSQL's client tools (Debian: postgresql-client)"
        )
    return found


def _sql(statement: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo(BENCH_DB), autocommit=True) as conn:
        cursor = conn.execute(statement, args or None)
        return cursor.fetchall() if cursor.description else []


def setup_tables() -> None:
    for table, columns in ((WRITES, "name text NOT NULL"), (READS, "name text, n bigint")):
        _sql(f"DROP TABLE IF EXISTS {table}")
        _sql(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, {columns})")


def drop_tables() -> None:
    for table in (WRITES, READS):
        _sql(f"DROP TABLE IF EXISTS {table}")


def settings() -> dict[str, str]:
    names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
    names += ("max_notify_queue_pages", "max_connections")
    out = {}
    for name in names:
        try:
            out[name] = str(_sql(f"SHOW {name}")[0][0])
        except psycopg.Error:
            out[name] = "n/a"
    return out


def run_pgbench(
    script: str, clients: int, *, seconds: float = 0, transactions: int = 0, options: str = ""
) -> dict[str, Any]:
    """Run one pgbench; return tps, average latency, transactions and failures."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(SCRIPTS[script])
    try:
        argv = [pgbench_path(), "-n", "-M", "prepared", "-c", str(clients)]
        argv += ["-j", str(min(clients, 4)), "-f", f.name]
        argv += ["-T", str(int(seconds))] if seconds else ["-t", str(transactions)]
        argv.append(conninfo(BENCH_DB))
        env = dict(os.environ)
        if options:
            env["PGOPTIONS"] = options
        completed = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=max(seconds, 60) + 120
        )
    finally:
        os.unlink(f.name)
    out = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise RuntimeError(f"pgbench failed ({completed.returncode}): {out[-1500:]}")

    def number(pattern: str) -> float | None:
        match = re.search(pattern, out)
        return float(match.group(1)) if match else None

    return {
        "tps": number(r"tps = ([\d.]+)"),
        "latency_ms": number(r"latency average = ([\d.]+) ms"),
        "transactions": int(number(r"number of transactions actually processed: (\d+)") or 0),
        "failed": int(number(r"number of failed transactions: (\d+)") or 0),
    }


class Listener:
    """A LISTEN connection that reads every notification at once (as realtime's listener does)."""

    def __init__(self) -> None:
        self.received = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(conninfo(BENCH_DB), autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._ready.set()
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=0.2):
                    self.received += 1

    def __enter__(self) -> Listener:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)  # the last notifications of the run
        self._stop.set()
        self._thread.join(10)


@contextmanager
def stuck_listener() -> Iterator[psycopg.Connection[Any]]:
    """A session that LISTENs, then sits in an open transaction without reading."""
    with psycopg.connect(conninfo(BENCH_DB)) as conn:
        conn.autocommit = True
        conn.execute(f"LISTEN {CHANNEL}")
        conn.autocommit = False
        conn.execute("SELECT 1")  # opens the transaction: notifications wait until it ends
        yield conn


class QueueSampler:
    """``pg_notification_queue_usage()`` every ``interval`` seconds, in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        with psycopg.connect(conninfo(BENCH_DB), autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute("SELECT pg_notification_queue_usage()").fetchone()
                self.samples.append((time.monotonic() - self._t0, float(row[0]) if row else 0.0))
                self._stop.wait(self.interval)

    @property
    def peak(self) -> float:
        return max((usage for _, usage in self.samples), default=0.0)

    def last(self) -> float:
        return self.samples[-1][1] if self.samples else 0.0

    def __enter__(self) -> QueueSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def throughput(clients: tuple[int, ...], seconds: float, rounds: int) -> list[dict[str, Any]]:
    """Every variant at every writer count, ``rounds`` times, interleaved (a neighbour's burst of
    disk or CPU on a shared machine then lands on all variants alike); medians reported."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for k in range(rounds):
        for c in clients:
            for label, script, options, _ in VARIANTS:
                _sql(f"TRUNCATE {WRITES}, {READS}")
                with Listener() as listener:
                    r = run_pgbench(script, c, seconds=seconds, options=options)
                r["received"] = listener.received
                runs.setdefault((label, c), []).append(r)
                print(
                    f"notify_ceiling: round {k + 1}/{rounds}, {label}, {c} writers: "
                    f"{r['tps']:.0f} tx/s, {r['latency_ms']} ms, received {listener.received}",
                    flush=True,
                )
    results = []
    for label, _, _, per_tx in VARIANTS:
        for c in clients:
            each = runs[(label, c)]
            tps = [r["tps"] or 0.0 for r in each]
            results.append(
                {
                    "variant": label,
                    "clients": c,
                    "per_tx": per_tx,
                    "tps": statistics.median(tps),
                    "tps_runs": tps,
                    "commands_per_s": statistics.median(tps) * per_tx,
                    "latency_ms": statistics.median(r["latency_ms"] or 0.0 for r in each),
                    "transactions": sum(r["transactions"] for r in each),
                    "received": sum(r["received"] for r in each),
                    "failed": sum(r["failed"] for r in each),
                }
            )
    return results


def burst(count: int, stuck: bool, queue_bytes: int) -> dict[str, Any]:
    """``count`` notifying transactions (8 writers) with or without a stuck listener."""
    clients = 8
    per_client = max(1, count // clients)
    result: dict[str, Any] = {"stuck_listener": stuck, "transactions": per_client * clients}
    with Listener() as listener, QueueSampler() as sampler:
        time.sleep(0.3)
        if stuck:
            with stuck_listener() as conn:
                t0 = time.monotonic()
                r = run_pgbench("notify", clients, transactions=per_client)
                result["seconds"] = time.monotonic() - t0
                time.sleep(0.5)
                result["peak_usage"] = sampler.peak
                conn.commit()  # the stuck session ends its transaction: now it can read
                released = time.monotonic()
                delivered = sum(1 for _ in conn.notifies(timeout=10, stop_after=r["transactions"]))
                result["stuck_delivered"] = delivered
                result["drain_s"] = time.monotonic() - released
            # The queue's tail moves on once every listener has read past it.
            deadline = time.monotonic() + 10
            while sampler.last() > 0 and time.monotonic() < deadline:
                time.sleep(0.1)
            result["usage_after"] = sampler.last()
        else:
            t0 = time.monotonic()
            r = run_pgbench("notify", clients, transactions=per_client)
            result["seconds"] = time.monotonic() - t0
            time.sleep(0.5)
            result["peak_usage"] = sampler.peak
            result["usage_after"] = sampler.last()
    result["tps"] = r["tps"]
    result["prompt_received"] = listener.received
    result["samples"] = sampler.samples
    if result["peak_usage"]:
        result["bytes_per_notification"] = result["peak_usage"] * queue_bytes / r["transactions"]
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default=",".join(map(str, CLIENTS)))
    parser.add_argument("--seconds", type=float, default=SECONDS, help="per pgbench run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="runs of each, interleaved")
    parser.add_argument("--burst", type=int, default=BURST, help="notifications in the burst")
    parser.add_argument("--name", default="notify_ceiling", help="result file name")
    args = parser.parse_args(argv)
    clients = tuple(int(c) for c in args.clients.split(","))
    prepare_database()
    facts = settings()
    queue_bytes = int(facts.get("max_notify_queue_pages", "1048576")) * 8192
    setup_tables()
    try:
        rates = throughput(clients, args.seconds, args.rounds)
        bursts = [burst(args.burst, stuck, queue_bytes) for stuck in (False, True)]
    finally:
        drop_tables()
    raw = {"settings": facts, "throughput": rates, "bursts": bursts, "pgbench": pgbench_path()}
    write_results(args.name, "NOTIFY's write ceiling", tables(rates, bursts), notes(facts), raw)
    return raw


def tables(
    rates: list[dict[str, Any]], bursts: list[dict[str, Any]]
) -> list[tuple[str, list[str], list[list[Any]]]]:
    clients = sorted({r["clients"] for r in rates})
    by = {(r["variant"], r["clients"]): r for r in rates}
    rows = []
    for label, *_ in VARIANTS:
        cells = []
        for c in clients:
            r = by.get((label, c))
            if r is None or not r["tps"]:
                cells.append("—")
                continue
            low, high = min(r["tps_runs"]) * r["per_tx"], max(r["tps_runs"]) * r["per_tx"]
            cells.append(
                f"{r['commands_per_s']:,.0f} ({low:,.0f}-{high:,.0f}; {r['latency_ms']:.1f} ms)"
            )
        rows.append([label, *cells])
    checks = [
        [
            r["variant"],
            r["clients"],
            r["transactions"],
            r["received"] if r["variant"] != "no notify" else "—",
            r["failed"],
        ]
        for r in rates
    ]
    burst_rows = [
        [
            "a session LISTENs inside an open transaction" if b["stuck_listener"] else "none",
            f"{b['transactions']:,}",
            f"{b['tps']:,.0f}",
            f"{100 * b['peak_usage']:.4f} %",
            f"{b['bytes_per_notification']:.0f}" if b.get("bytes_per_notification") else "—",
            f"{100 * b['usage_after']:.4f} %",
            f"{b['drain_s']:.2f} s ({b['stuck_delivered']:,} delivered)"
            if b["stuck_listener"]
            else "—",
        ]
        for b in bursts
    ]
    return [
        (
            "Commands per second: median of the rounds (lowest-highest; median of the average "
            "latency per transaction), by concurrent writers",
            ["transaction", *(f"{c} writers" for c in clients)],
            rows,
        ),
        (
            "Every published commit reached the prompt listener",
            ["variant", "writers", "transactions", "notifications received", "failed"],
            checks,
        ),
        (
            "The notification queue under a burst of notifying transactions (8 writers)",
            [
                "stuck listener",
                "notifications",
                "tx/s",
                "peak pg_notification_queue_usage()",
                "bytes per notification (est.)",
                "usage after",
                "stuck session, once its transaction ends: reads all in",
            ],
            burst_rows,
        ),
    ]


def notes(facts: dict[str, str]) -> list[str]:
    return [
        "PostgreSQL: " + ", ".join(f"{k} {v}" for k, v in facts.items()),
        "Each transaction: BEGIN; two INSERTs (write model, projection); "
        f"SELECT pg_notify('{CHANNEL}', '{TOPIC}') in the notify variants; COMMIT. pgbench -M "
        "prepared, -j min(writers, 4), on the same 2-CPU machine as the server (the client "
        "competes for CPU).",
        "The batch row counts commands (10 per transaction), not transactions.",
        "Queue size = max_notify_queue_pages x 8 kB; bytes per notification = peak usage x queue "
        "size / notifications (an estimate: the queue is counted in whole pages).",
        "Timings on a shared machine drift (up to 2x between runs); compare rows of one run.",
    ]


if __name__ == "__main__":
    main()
