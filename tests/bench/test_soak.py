"""``bench/soak.py`` at a tiny size (20 streams x 10 commands/s x 3 s), so it never rots."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT, unmeasured

pytestmark = pytest.mark.slow


def test_short_soak_loses_nothing() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_DB="bench_soak_test")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--streams", "20", "--rate", "10", "--duration", "3"],
        cwd=ROOT,
        env=unmeasured(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert re.search(r"errors:\s+0 ", output), output
    assert re.search(r"lost updates:\s+0\n", output), output
    assert "20 streams, 10 commands/s for 3 s (30 commands)" in output
    assert re.search(r"latency:\s+p50 \d+ ms, p99 \d+ ms", output), output
    assert re.search(r"server RSS:\s+[\d.]+ MiB with streams open, [\d.]+ MiB at the end", output)
