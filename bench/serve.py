"""Serve an ASGI app with uvicorn after raising this process's open-file limit.

``python -m bench.serve module:app --port 8123 [--workers N]``. Runnable by any virtualenv that
has uvicorn (the Channels peer runs it from ``bench/.venv-channels``). With ``--workers`` > 1,
uvicorn's own supervisor runs N worker processes behind the one port, as ``uvicorn --workers N``
does; the app is then ``bench.workers:application`` (see there).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
from typing import Any

#: Garbage-collector thresholds for every server the bench starts (and for the load generator),
#: as ``gc.set_threshold`` arguments, e.g. ``"50000,20"``; empty for Python's defaults. See
#: docs/deploying.md ("Ten thousand streams in one process") for why.
GC_ENV = "BENCH_GC_THRESHOLD"
TUNED_GC = "50000,20"


def apply_gc_threshold(value: str | None = None) -> tuple[int, ...]:
    """Apply ``value`` (default: ``$BENCH_GC_THRESHOLD``) to this process; return the thresholds."""
    value = os.environ.get(GC_ENV, "") if value is None else value
    if value.strip():
        gc.set_threshold(*(int(part) for part in value.split(",")))
    return gc.get_threshold()


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    raise_nofile()
    apply_gc_threshold()
    import uvicorn

    several: dict[str, Any] = {}
    if args.workers > 1:
        several = {
            "workers": args.workers,
            # Each worker's lifespan opens its stats port (bench.workers); Django has none.
            "lifespan": "on",
            # The supervisor kills a worker that does not answer its ping in time (5 s by
            # default): a slow worker is reported by the bench, not restarted mid-run.
            "timeout_worker_healthcheck": 60,
        }
    uvicorn.run(
        args.app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        backlog=4096,
        timeout_graceful_shutdown=1,
        **{"lifespan": "off", **several},
    )


if __name__ == "__main__":
    main()
