"""Shared-window gzip: valid gzip, decodable event by event, tiny per update, shared among streams."""

from __future__ import annotations

import gzip
import http.client
import json
import time
import zlib

import pytest
from django.contrib.auth.models import Group
from django.test import RequestFactory

from realtime.encoding import WINDOW, BlockCache, GzipStream, accepts_gzip
from realtime.testing import LiveServer, parse_sse, post_command

HEARTBEAT = b": keep-alive\n\n"


def render(n: int, changed: int) -> bytes:
    rows = "".join(
        f"<li id='t{i}'>Ticket {i}{' (changed)' if i == changed else ''}: printer on fire</li>"
        for i in range(n)
    )
    return f"event: datastar-patch-elements\ndata: elements <ul id='list'>{rows}</ul>\n\n".encode()


def test_every_event_decodes_on_arrival_and_the_whole_is_valid_gzip() -> None:
    stream = GzipStream(BlockCache())
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    raw = out = b""
    for k in range(10):
        for piece, shared in (
            (render(200, k), True),
            (HEARTBEAT, True),
            (b"event: x\ndata: y\n\n", False),
        ):
            chunk = stream.encode(piece, shared=shared)
            assert decoder.decompress(chunk) == piece
            raw, out = raw + piece, out + chunk
    out += stream.finish()
    assert gzip.decompress(out) == raw


def test_updates_cost_a_few_percent_of_their_raw_size() -> None:
    stream = GzipStream(BlockCache())
    first = stream.encode(render(300, -1), shared=True)
    updates = [render(300, k) for k in range(50)]
    sent = sum(len(stream.encode(r, shared=True)) for r in updates)
    assert len(first) < len(updates[0]) / 5
    assert sent < 0.05 * sum(map(len, updates))


def test_streams_in_the_same_state_share_compressed_blocks() -> None:
    cache = BlockCache()
    streams = [GzipStream(cache) for _ in range(100)]
    renders = [render(100, k) for k in range(3)]
    outputs = [[s.encode(r, shared=True) for r in renders] for s in streams]
    assert all(o == outputs[0] for o in outputs)
    assert cache.misses == 3
    assert cache.hits == 297


def test_large_events_and_empty_streams() -> None:
    stream = GzipStream(BlockCache())
    big = b"data: " + b"x" * (3 * WINDOW) + b"\n\n"
    out = stream.encode(big) + stream.encode(HEARTBEAT) + stream.finish()
    assert gzip.decompress(out) == big + HEARTBEAT
    assert gzip.decompress(GzipStream(BlockCache()).finish()) == b""


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("br", False),
        ("", False),
        ("*", True),
        ("gzip;q=x", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    request = RequestFactory().get("/", headers={"accept-encoding": header} if header else {})
    assert accepts_gzip(request) is expected


@pytest.mark.django_db(transaction=True)
def test_live_stream_arrives_compressed_event_by_event() -> None:
    with LiveServer() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        path = "/test/groups/stream/?datastar=" + json.dumps({})
        connection.request(
            "GET", path, headers={"Accept-Encoding": "gzip, br", "Datastar-Request": "true"}
        )
        response = connection.getresponse()
        try:
            assert response.getheader("Content-Encoding") == "gzip"
            decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)

            def next_patch(deadline: float) -> str:
                text = b""
                while time.monotonic() < deadline:
                    text += decoder.decompress(response.read1(65536))
                    events = [e for e in parse_sse(text) if e.event == "datastar-patch-elements"]
                    if events:
                        return events[-1].elements
                raise TimeoutError

            assert "none" in next_patch(time.monotonic() + 5)
            assert post_command(f"{server.url}/test/groups/add/", {"name": "gamma"}).status == 204
            assert "gamma" in next_patch(time.monotonic() + 5)
            assert Group.objects.filter(name="gamma").exists()
        finally:
            connection.close()


def test_the_block_cache_keeps_only_the_latest_entries() -> None:
    cache = BlockCache(size=2)
    base, blocks = b"x" * 100, [f"<p>{n}</p>".encode() for n in range(3)]
    first = [cache.compress(base, b"", data) for data in blocks]
    assert (cache.hits, cache.misses) == (0, 3)
    assert cache.compress(base, b"", blocks[2]) == first[2]  # still cached
    assert cache.compress(base, b"", blocks[0]) == first[0]  # evicted: compressed again
    assert (cache.hits, cache.misses) == (1, 4)
