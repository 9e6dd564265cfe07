"""Test-only views."""

import asyncio
from collections.abc import AsyncIterator

from django.http import HttpRequest, StreamingHttpResponse


async def ticks(request: HttpRequest) -> StreamingHttpResponse:
    """A bare async SSE stream: one event at once, then one every 100 ms, forever."""

    async def events() -> AsyncIterator[str]:
        n = 0
        while True:
            yield f"event: tick\ndata: {n}\n\n"
            n += 1
            await asyncio.sleep(0.1)

    return StreamingHttpResponse(events(), content_type="text/event-stream")
