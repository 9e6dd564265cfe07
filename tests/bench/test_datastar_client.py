"""bench.datastar_client: the retry schedule is the bundled Datastar client's."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench import datastar_client
from bench.datastar_client import RetryOptions, Tab


def test_options_are_read_from_the_tag_with_the_bundles_defaults() -> None:
    options = RetryOptions.parse("@get('/s/', {retry: 'always', retryMaxWait: 4000})")
    assert options == RetryOptions(retry="always", max_wait=4000.0)
    assert RetryOptions.parse("@get('/s/')") == RetryOptions()  # 1000 ms, x2, 30 s, 10 errors


def test_the_checkouts_tag_is_what_the_tabs_use() -> None:
    options = datastar_client.stream_options()
    assert options.retry == "always"
    assert options.max_wait == 4000.0


class _Refused:
    """A session whose every request fails as a refused connection does."""

    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError


async def test_network_errors_back_off_to_the_max_wait_and_give_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(datastar_client.asyncio, "sleep", sleep)
    tab = Tab("http://x/", RetryOptions(retry="always", max_wait=4000.0, max_count=6))
    await asyncio.wait_for(tab.run(_Refused()), 1)  # type: ignore[arg-type]
    # As the bundle's catch: wait p, then p = min(p * 2, max); the 6th error in a row ends it.
    assert waits == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert tab.gave_up
    assert tab.errors == 6
