"""The floor: a bare ASGI app (no Django) that writes one pre-rendered patch to every open stream.

``GET /stream`` opens an SSE stream (the current patch at once); ``POST /publish`` renders the
patch once (a list one item longer, as the groups stream would show) and writes it to every
stream; ``GET /stats`` gives the open stream count. Nothing can fan out faster than this.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

streams: set[asyncio.Queue[bytes | None]] = set()
state = {"items": 0, "patch": b""}


def _render() -> bytes:
    items = (
        "".join(f"<li>floor-{i}</li>" for i in range(state["items"]))
        or '<li class="empty">none</li>'
    )  # type: ignore[call-overload]
    return (
        f'event: datastar-patch-elements\ndata: elements <ul id="groups">{items}</ul>\n\n'.encode()
    )


state["patch"] = _render()


async def _body(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/stream" and method == "GET":
        await _stream(receive, send)
    elif path == "/publish" and method == "POST":
        await _body(receive)
        state["items"] += 1  # type: ignore[operator]
        state["patch"] = patch = _render()
        for queue in streams:
            queue.put_nowait(patch)  # type: ignore[arg-type]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/reset" and method == "POST":
        await _body(receive)
        state["items"], state["patch"] = 0, _render()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    else:
        body = json.dumps({"open_streams": len(streams)}).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _stream(receive: Any, send: Any) -> None:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    queue.put_nowait(state["patch"])  # type: ignore[arg-type]
    streams.add(queue)

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        queue.put_nowait(None)

    watcher = asyncio.create_task(watch_disconnect())
    try:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while (chunk := await queue.get()) is not None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except OSError:
        pass
    finally:
        streams.discard(queue)
        watcher.cancel()
