"""Progress lines for long builds: timestamped, flushed, on stderr."""
from __future__ import annotations

import sys
import time

_START = time.monotonic()


def step(message: str) -> None:
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)
