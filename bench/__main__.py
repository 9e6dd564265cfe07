"""``python -m bench`` (``make bench``): every benchmark at full size; results in bench/results/."""

from __future__ import annotations

import sys
import time

from bench import bytes as bytes_bench
from bench import commands, connect, fanout, live_admin, notify_ceiling, presence


def main() -> None:
    start = time.monotonic()
    fanout.main([])
    commands.main([])
    bytes_bench.main([])
    presence.main([])
    live_admin.main([])
    connect.main([])
    notify_ceiling.main([])
    from bench.report import main as report

    report([])
    print(
        f"bench: done in {time.monotonic() - start:.0f} s; results in bench/results/",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
