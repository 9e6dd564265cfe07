"""realtime.transport: finding and aborting uvicorn's connection for a request's scope."""

from __future__ import annotations

import asyncio
from typing import Any

from realtime.transport import abort_connection


class Transport:
    def __init__(self) -> None:
        self.aborted = False

    def abort(self) -> None:
        self.aborted = True


class RequestResponseCycle:
    """The shape of uvicorn's: a ``scope``, a ``transport`` and a ``run_asgi`` coroutine."""

    def __init__(self, scope: dict[str, Any], transport: object) -> None:
        self.scope = scope
        self.transport = transport
        self.release = asyncio.Event()

    async def run_asgi(self) -> None:
        await self.release.wait()


async def running(cycle: RequestResponseCycle) -> asyncio.Task[None]:
    task = asyncio.create_task(cycle.run_asgi())
    await asyncio.sleep(0)
    return task


async def test_aborts_the_connection_of_the_scope() -> None:
    scope: dict[str, Any] = {"type": "http"}
    other = RequestResponseCycle({"type": "http"}, Transport())
    mine = RequestResponseCycle(scope, Transport())
    tasks = [await running(other), await running(mine)]
    assert abort_connection(scope)
    assert mine.transport.aborted  # type: ignore[attr-defined]
    assert not other.transport.aborted  # type: ignore[attr-defined]
    for cycle in (other, mine):
        cycle.release.set()
    await asyncio.gather(*tasks)


async def test_nothing_found_nothing_done() -> None:
    assert not abort_connection(None)
    assert not abort_connection({"type": "http"})  # no server task holds this scope
    someone_else = RequestResponseCycle({"type": "http"}, Transport())
    elsewhere = await running(someone_else)
    assert not abort_connection({"type": "http"})  # a server task, for another request
    assert not someone_else.transport.aborted  # type: ignore[attr-defined]
    someone_else.release.set()
    await elsewhere
    scope: dict[str, Any] = {"type": "http"}
    cycle = RequestResponseCycle(scope, transport=object())  # a transport without abort()
    task = await running(cycle)
    assert not abort_connection(scope)
    cycle.release.set()
    await task
