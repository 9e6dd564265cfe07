"""Commands: POST -> 204 latency (p50/p99) and commands per second for one server process.

``python -m bench.commands --count 2000``

The command is the test project's ``AddGroup`` (validate a form, insert a row, ``publish`` inside
the transaction), posted as Datastar does (JSON signals, CSRF cookie + header). First one at a
time (latency), then with bounded concurrency (throughput). No stream is open.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench import loadgen
from bench.common import ms, percentile, prepare_database, write_results
from bench.peers import PEERS, realtime_server, realtime_workers_server

FULL_COUNT = 2000
CONCURRENCY = (1, 16)


CEILING = "ceiling: a Django view returning 204, no database"

#: (label, extra server environment, path posted to: None for the command, worker processes)
VARIANTS: tuple[tuple[str, dict[str, str], str | None, int], ...] = (
    ("demo settings", {}, None, 1),
    ("synchronous_commit=off", {"BENCH_PG_OPTIONS": "-c synchronous_commit=off"}, None, 1),
    # The peer for this target: what Django's ASGI handler costs before any command code runs.
    (CEILING, {}, "/bench/noop/", 1),
    # What realtime.handler costs a command before its own work (validation included).
    ("a command that writes nothing", {}, "/bench/noop-command/", 1),
    # Does throughput grow with processes? (uvicorn --workers 2 behind one port)
    ("demo settings, 2 workers", {}, None, 2),
    (f"{CEILING}, 2 workers", {}, "/bench/noop/", 2),
)


async def measure(count: int) -> list[dict[str, Any]]:
    results = []
    for label, env, path, workers in VARIANTS:
        results += await _measure(count, label, env, path, workers)
    return results


async def _measure(
    count: int, label: str, env: dict[str, str], path: str | None, workers: int = 1
) -> list[dict[str, Any]]:
    peer = PEERS["realtime"]
    command = path or peer.command
    results = []
    server_cm = realtime_workers_server(workers, env) if workers > 1 else realtime_server(env)
    with server_cm as server:
        async with loadgen.commands_session() as session:
            await loadgen.post(session, server.url + peer.reset)
            for k in range(20):  # warm up
                await loadgen.post(session, server.url + peer.command, {"name": f"warm-{k}"})
            for concurrency in CONCURRENCY:
                latencies: list[float] = []
                statuses: dict[int, int] = {}
                queue: asyncio.Queue[int] = asyncio.Queue()
                for k in range(count):
                    queue.put_nowait(k)

                async def worker(
                    c: int = concurrency,
                    queue: asyncio.Queue[int] = queue,
                    latencies: list[float] = latencies,
                    statuses: dict[int, int] = statuses,
                ) -> None:
                    while not queue.empty():
                        k = queue.get_nowait()
                        start = time.perf_counter()
                        status = await loadgen.post(
                            session, server.url + command, {"name": f"c{c}-{k}"}
                        )
                        latencies.append(time.perf_counter() - start)
                        statuses[status] = statuses.get(status, 0) + 1

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                elapsed = time.perf_counter() - start
                results.append(
                    {
                        "variant": label,
                        "workers": workers,
                        "concurrency": concurrency,
                        "count": count,
                        "statuses": statuses,
                        "p50": percentile(latencies, 50),
                        "p99": percentile(latencies, 99),
                        "per_s": count / elapsed,
                    }
                )
                print(results[-1], flush=True)
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", "--n", type=int, default=FULL_COUNT, help="commands per level")
    parser.add_argument("--name", default="commands")
    args = parser.parse_args(argv)
    prepare_database()
    results = asyncio.run(measure(args.count))
    rows = [
        [
            r["variant"],
            r["concurrency"],
            r["count"],
            ms(r["p50"]),
            ms(r["p99"]),
            f"{r['per_s']:.0f}",
            r["statuses"],
        ]
        for r in results
    ]
    write_results(
        args.name,
        "Commands: POST -> 204 on one process",
        [
            (
                "",
                [
                    "variant",
                    "concurrency",
                    "commands",
                    "p50 (ms)",
                    "p99 (ms)",
                    "commands/s",
                    "statuses",
                ],
                rows,
            )
        ],
        [
            "One uvicorn process (two for the '2 workers' rows: uvicorn --workers 2 behind one port), the client in another process on the same 2-CPU machine.",
            "Each command validates a form, inserts a row and publishes inside the transaction (pg_notify).",
            "Targets: p50 <= 5 ms, >= 500 commands/s per process.",
            "The ceiling row posts to a Django view that returns 204 at once, through the same middleware (sessions, CSRF, auth, messages): Django's ASGI handler alone, the most any command could reach here.",
            "Profile (py-spy, concurrency 16): Django's ASGI handler gives every request a new thread (asgiref's ThreadSensitiveContext: the request's synchronous middleware and view run on it, then it is shut down) and the event loop waits for each new thread to start, which under load means waiting for the GIL; the rest is PostgreSQL: the pool's health check before lending a connection (one round trip, kept so a PostgreSQL restart costs no 500), the INSERT, and the COMMIT's WAL flush (the 'synchronous_commit=off' row shows its share: a durability trade-off, not a recommendation).",
        ],
        raw=results,
    )
    return results


if __name__ == "__main__":
    main()
