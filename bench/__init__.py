"""Benchmarks: this project side by side with its peers, measured in the same run.

Run everything with ``python -m bench`` (``make bench``), or one script alone, e.g.
``python -m bench.fanout --n 1000``. Each script starts its servers as uvicorn subprocesses on
loopback (each in its own process group, killed on exit), drives them from this process with
asyncio + aiohttp, and writes a Markdown table (and a PNG chart) to ``bench/results/``.
"""
