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
from bench.peers import PEERS, realtime_server

FULL_COUNT = 2000
CONCURRENCY = (1, 16)


#: (label, extra server environment)
VARIANTS = (
    ("demo settings", {}),
    ("synchronous_commit=off", {"BENCH_PG_OPTIONS": "-c synchronous_commit=off"}),
)


async def measure(count: int) -> list[dict[str, Any]]:
    results = []
    for label, env in VARIANTS:
        results += await _measure(count, label, env)
    return results


async def _measure(count: int, label: str, env: dict[str, str]) -> list[dict[str, Any]]:
    peer = PEERS["realtime"]
    results = []
    with realtime_server(env) as server:
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
                            session, server.url + peer.command, {"name": f"c{c}-{k}"}
                        )
                        latencies.append(time.perf_counter() - start)
                        statuses[status] = statuses.get(status, 0) + 1

                start = time.perf_counter()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                elapsed = time.perf_counter() - start
                results.append(
                    {
                        "variant": label,
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
                    "database",
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
            "One uvicorn process, the client in another process on the same 2-CPU machine.",
            "Each command validates a form, inserts a row and publishes inside the transaction (pg_notify).",
            "Targets: p50 <= 5 ms, >= 500 commands/s per process.",
            "Profile (py-spy, concurrency 1): ~70 % of a command's server time waits on PostgreSQL: a new connection per command (CONN_MAX_AGE=0 in the demo settings; under ASGI each request runs in its own thread, so persistent connections do not help, a pool would) and the COMMIT's WAL flush; the 'synchronous_commit=off' row shows the flush's share (a durability trade-off, not a recommendation).",
        ],
        raw=results,
    )
    return results


if __name__ == "__main__":
    main()
