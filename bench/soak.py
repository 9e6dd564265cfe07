"""Soak: N open streams while commands arrive at R per second for T seconds; nothing may be lost.

``python -m bench.soak --streams 500 --rate 20 --duration 30`` (the defaults)

A uvicorn subprocess serves the test project's live list of groups (``/test/groups/stream/``) on a
database of its own (``BENCH_DB``, default ``bench_soak``, created and migrated here). This process
opens N streams (aiohttp), then posts ``/test/groups/add/`` at R commands per second for T
seconds, each adding one uniquely named group, and finally waits (at most ``--settle`` seconds)
for every stream to show the committed state. It prints:

- **errors**: commands not answered 204, streams that failed to open or broke (must be 0);
- **lost updates**: streams whose last render is not the database's final state (must be 0);
- **latency**: per (command, stream), from sending the command to the first render on that
  stream holding at least that many groups (groups are only added, one per command, sent in
  order), p50 / p99 / max;
- server RSS when the streams are open and at the end, renders and notifications.

Exits 1 when there are errors or lost updates, so CI can run a short version
(``tests/bench/test_soak.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("BENCH_DB", "bench_soak")

from bench import loadgen
from bench.common import conninfo, percentile, prepare_database, serve

STREAM = "/test/groups/stream/"
ADD = "/test/groups/add/"
NAME = re.compile(rb"<li>(.*?)</li>")


@dataclass
class SoakClient(loadgen.Client):
    """A stream client that also keeps its last event, to compare it with the database."""

    last: bytes = b""
    broke: list[str] = field(default_factory=list)

    def record(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        if b"datastar-patch-elements" in data:
            self.last = data
        super().record(data)


@dataclass
class Result:
    streams: int
    rate: float
    duration: float
    commands: int = 0
    command_errors: list[str] = field(default_factory=list)
    stream_errors: list[str] = field(default_factory=list)
    lost: int = 0
    latencies: list[float] = field(default_factory=list)
    rss_start: int = 0
    rss_end: int = 0
    opened_in: float = 0.0
    settled_in: float | None = None
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return len(self.command_errors) + len(self.stream_errors)

    def report(self) -> str:
        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value * 1000:.0f} ms"

        lat = self.latencies
        lines = [
            f"soak: {self.streams} streams, {self.rate:g} commands/s for {self.duration:g} s"
            f" ({self.commands} commands)",
            f"  errors:        {self.errors}"
            f" (commands {len(self.command_errors)}, streams {len(self.stream_errors)})",
            f"  lost updates:  {self.lost}",
            f"  latency:       p50 {ms(percentile(lat, 50))}, p99 {ms(percentile(lat, 99))},"
            f" max {ms(max(lat) if lat else None)} ({len(lat)} command x stream deliveries)",
            f"  converged:     {ms(self.settled_in)} after the last command",
            f"  server RSS:    {self.rss_start / 2**20:.1f} MiB with streams open,"
            f" {self.rss_end / 2**20:.1f} MiB at the end"
            f" ({(self.rss_end - self.rss_start) / 2**20:+.1f} MiB)",
            f"  streams open:  all {self.streams} in {ms(self.opened_in)}",
        ]
        if self.server:
            lines.append(
                "  server:        "
                + ", ".join(f"{k} {self.server[k]}" for k in sorted(self.server))
            )
        for error in (self.command_errors + self.stream_errors)[:10]:
            lines.append(f"  ! {error}")
        return "\n".join(lines)


def committed_names() -> set[bytes]:
    import psycopg

    with psycopg.connect(conninfo(os.environ["BENCH_DB"]), autocommit=True) as conn:
        return {row[0].encode() for row in conn.execute("SELECT name FROM auth_group")}


def _latencies(sent: list[float], clients: list[SoakClient], start_count: int) -> list[float]:
    """For each command i and stream: first arrival holding >= start_count + i + 1 rows."""
    out: list[float] = []
    for client in clients:
        arrivals = client.arrivals
        j = 0
        for i, at in enumerate(sent):
            need = start_count + i + 1
            while j < len(arrivals) and arrivals[j][1] < need:
                j += 1
            if j == len(arrivals):
                break
            out.append(max(0.0, arrivals[j][0] - at))
    return out


async def soak(streams: int, rate: float, duration: float, settle: float) -> Result:
    result = Result(streams, rate, duration)
    with serve("soak", "config.asgi:application", settings="bench.settings") as server:
        async with loadgen.commands_session() as session:
            status = await loadgen.post(session, server.url + "/bench/reset/")
            if status != 204:
                raise RuntimeError(f"reset answered {status}")
            group = loadgen.Streams(server.url + STREAM, streams)
            group.clients = [SoakClient() for _ in range(streams)]
            try:
                result.opened_in = await group.open(seconds=120)
                unopened = {i for i, c in enumerate(group.clients) if c.error or not c.arrivals}
                for i in sorted(unopened):
                    error = group.clients[i].error
                    result.stream_errors.append(f"stream {i} did not open: {error}")
                result.rss_start = server.rss()
                before = await loadgen.get_json(session, server.url + "/bench/stats/")

                sent: list[float] = []
                tasks: list[asyncio.Task[None]] = []

                async def command(i: int) -> None:
                    try:
                        code = await loadgen.post(session, server.url + ADD, {"name": f"s{i:07d}"})
                        if code != 204:
                            result.command_errors.append(f"command {i} answered {code}")
                    except Exception as exc:
                        result.command_errors.append(f"command {i}: {type(exc).__name__}: {exc}")

                total = max(1, round(rate * duration))
                started = time.perf_counter()
                for i in range(total):
                    delay = started + i / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    sent.append(time.perf_counter())
                    tasks.append(asyncio.create_task(command(i)))
                await asyncio.gather(*tasks)
                result.commands = total
                last_sent = time.perf_counter()

                final = await asyncio.to_thread(committed_names)
                want = len(final)
                await group.wait_for(
                    lambda _i, c: bool(c.arrivals) and c.arrivals[-1][1] == want, settle
                )
                settled = [c for c in group.clients if c.arrivals and c.arrivals[-1][1] == want]
                if len(settled) == len(group.clients):
                    result.settled_in = time.perf_counter() - last_sent
                for i, client in enumerate(group.clients):
                    if client.error and i not in unopened:
                        result.stream_errors.append(f"stream {i} broke: {client.error}")
                    shown = set(NAME.findall(client.last))
                    if shown != final:
                        result.lost += 1
                result.latencies = _latencies(sent, group.clients, start_count=0)
                after = await loadgen.get_json(session, server.url + "/bench/stats/")
                result.rss_end = server.rss()
                for key in ("renders", "renders_shared", "notifications_received", "resyncs"):
                    if key in after:
                        result.server[key] = after[key] - before.get(key, 0)
                result.server["open_streams"] = after.get("open_streams")
            finally:
                await group.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", "-n", type=int, default=500, help="open streams (500)")
    parser.add_argument("--rate", "-r", type=float, default=20.0, help="commands per second (20)")
    parser.add_argument("--duration", "-t", type=float, default=30.0, help="seconds (30)")
    parser.add_argument(
        "--settle", type=float, default=15.0, help="max seconds to converge at the end (15)"
    )
    args = parser.parse_args(argv)
    if args.streams < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--streams, --rate and --duration must be positive")
    prepare_database()
    result = asyncio.run(soak(args.streams, args.rate, args.duration, args.settle))
    print(result.report())
    return 1 if result.errors or result.lost else 0


if __name__ == "__main__":
    sys.exit(main())
