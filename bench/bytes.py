"""Bytes on the wire and the memory they cost: 100 fat-morph updates, per response encoding.

``python -m bench.bytes --n 200``

A fat morph re-sends a whole table (``bench/fat/``: one row per group, ~60 rows growing to ~160)
on every change. One stream per encoding (identity, gzip, br, zstd, chosen by Accept-Encoding
and compressed by django-http-compression's middleware) reads 100 updates; the bytes each
received are compared with the uncompressed one. Then, per encoding, a fresh server holds N
streams through a few updates and its RSS growth per stream is reported.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bench import loadgen
from bench.common import Server, prepare_database, write_results
from bench.peers import PEERS, realtime_server

#: (label, REALTIME["STREAM_COMPRESSION"], Accept-Encoding)
VARIANTS = (
    ("identity (raw)", "gzip", "identity"),
    ("gzip, shared window (realtime default)", "gzip", "gzip"),
    ("gzip, middleware (compressor per stream)", "middleware", "gzip"),
    ("br, middleware (compressor per stream)", "middleware", "br"),
    ("zstd, middleware (compressor per stream)", "middleware", "zstd"),
)
RAW = VARIANTS[0][0]
STREAM = "/bench/fat/"
SEED = 60


async def _seed(session: Any, server: Server, count: int) -> None:
    peer = PEERS["realtime"]
    await loadgen.post(session, server.url + peer.reset)
    for k in range(count):
        await loadgen.post(session, server.url + peer.command, {"name": f"seed-{k:03d}"})


async def wire_bytes(updates: int, mode: str) -> dict[str, int]:
    """Bytes each Accept-Encoding received over ``updates`` updates, with STREAM_COMPRESSION=mode."""
    peer = PEERS["realtime"]
    encodings = ["identity", *(e for _, m, e in VARIANTS if m == mode and e != "identity")]
    with realtime_server({"BENCH_STREAM_COMPRESSION": mode}) as server:
        async with loadgen.commands_session() as session:
            await _seed(session, server, SEED)
            streams = {
                enc: loadgen.Streams(server.url + STREAM, 1, encoding=enc) for enc in encodings
            }
            try:
                for s in streams.values():
                    await s.open(seconds=30)
                await asyncio.sleep(0.3)
                start = {enc: s.clients[0].wire_bytes for enc, s in streams.items()}
                plain = streams["identity"]
                for k in range(updates):
                    mark = plain.marks()
                    await loadgen.post(
                        session, server.url + peer.command, {"name": f"update-{k:03d}"}
                    )
                    await plain.wait_for(lambda i, c, m=mark: len(c.arrivals) > m[i], 10)
                await asyncio.sleep(1.0)
                return {enc: s.clients[0].wire_bytes - start[enc] for enc, s in streams.items()}
            finally:
                for s in streams.values():
                    await s.close()


async def rss_per_stream(mode: str, encoding: str, n: int) -> dict[str, Any]:
    peer = PEERS["realtime"]
    with realtime_server({"BENCH_STREAM_COMPRESSION": mode}) as server:
        async with loadgen.commands_session() as session:
            await _seed(session, server, SEED)
            # Warm up the code paths (and the encoder's module) with one stream first.
            warm = loadgen.Streams(server.url + STREAM, 1, encoding=encoding)
            await warm.open(seconds=30)
            await warm.close()
            await asyncio.sleep(0.3)
            rss0 = server.rss()
            streams = loadgen.Streams(server.url + STREAM, n, encoding=encoding)
            try:
                await streams.open(seconds=60 + n / 20)
                for k in range(5):
                    await loadgen.post(
                        session, server.url + peer.command, {"name": f"{encoding}-{k}"}
                    )
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)
                rss1 = server.rss()
                ok = n - streams.failed
                return {
                    "encoding": encoding,
                    "n": n,
                    "failed": streams.failed,
                    "rss_per_stream": (rss1 - rss0) / max(1, ok),
                }
            finally:
                await streams.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="streams held per encoding for RSS")
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--name", default="bytes")
    args = parser.parse_args(argv)
    prepare_database()
    sent: dict[str, int] = {}
    for mode in ("gzip", "middleware"):
        by_encoding = asyncio.run(wire_bytes(args.updates, mode))
        for label, m, enc in VARIANTS:
            if m == mode and label not in sent:
                sent[label] = by_encoding[enc]
    memory = {label: asyncio.run(rss_per_stream(m, enc, args.n)) for label, m, enc in VARIANTS}
    raw = sent[RAW] or 1
    rows = [
        [
            enc,
            f"{sent[enc]:,}",
            f"{100 * sent[enc] / raw:.2f} %",
            f"{memory[enc]['rss_per_stream'] / 1024:.1f}",
            "yes"
            if sent[enc] / raw <= 0.05 and memory[enc]["rss_per_stream"] <= 50 * 1024
            else "no",
        ]
        for enc, _, _ in VARIANTS
    ]
    write_results(
        args.name,
        f"Bytes: {args.updates} fat-morph updates, per encoding",
        [
            (
                "",
                [
                    "encoding",
                    "bytes on the wire",
                    "of raw",
                    f"RSS/stream (KB, {args.n} streams)",
                    "<= 5 % and <= 50 KB",
                ],
                rows,
            )
        ],
        [
            f"Workload: bench/fat/ (a StreamView rendering a {SEED}..{SEED + args.updates}-row table, re-sent whole on each change); the tickets desk was not used: it needs staff login and was still being built when this ran.",
            "'shared window' is realtime's own gzip (STREAM_COMPRESSION='gzip', the default: no compressor kept per stream, compressed blocks shared per distinct state); 'middleware' is STREAM_COMPRESSION='middleware', where django-http-compression keeps one compressor per response (gzip level 6, brotli quality 4, zstd level 3).",
            "RSS/stream: server RSS growth / open streams, after 5 updates, on a fresh server per encoding (includes the stream's own cost, ~the identity row).",
        ],
        raw={"bytes": sent, "memory": memory},
        chart=_chart(sent, memory),
    )
    return {"bytes": sent, "memory": memory}


def _chart(sent: dict[str, int], memory: dict[str, Any]) -> Any:
    def draw(ax: Any) -> None:
        labels = [label for label, _, _ in VARIANTS]
        raw = sent[RAW] or 1
        xs = [100 * sent[e] / raw for e in labels]
        ys = [memory[e]["rss_per_stream"] / 1024 for e in labels]
        ax.scatter(xs, ys)
        for e, x, y in zip(labels, xs, ys, strict=True):
            ax.annotate(e.split(" (")[0], (x, y), fontsize=8)
        ax.axvline(5, ls="--", c="grey")
        ax.axhline(50, ls="--", c="grey")
        ax.set_xscale("log")
        ax.set_xlabel("bytes on the wire (% of raw)")
        ax.set_ylabel("server RSS per stream (KB)")
        ax.grid(True, alpha=0.3)

    return draw


if __name__ == "__main__":
    main()
