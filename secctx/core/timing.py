"""Per-test phase timings (apply->ready, observation, cleanup) for the benchmark.

Written as JSON lines to $SECCTX_TIMINGS_DIR/<worker>.jsonl when that
variable is set; otherwise a no-op.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path


@contextlib.contextmanager
def phase(test: str, name: str):
    start = time.monotonic()
    try:
        yield
    finally:
        record(test, name, time.monotonic() - start)


def record(test: str, name: str, seconds: float) -> None:
    out = os.environ.get("SECCTX_TIMINGS_DIR")
    if not out:
        return
    path = Path(out) / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps({"test": test, "phase": name, "seconds": round(seconds, 3)}) + "\n")
