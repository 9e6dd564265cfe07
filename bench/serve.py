"""Serve an ASGI app with uvicorn after raising this process's open-file limit.

``python -m bench.serve module:app --port 8123``. Runnable by any virtualenv that has uvicorn
(the Channels peer runs it from ``bench/.venv-channels``).
"""

from __future__ import annotations

import argparse
import gc
import os
import resource

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
    args = parser.parse_args()
    raise_nofile()
    apply_gc_threshold()
    import uvicorn

    uvicorn.run(
        args.app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        lifespan="off",
        backlog=4096,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
