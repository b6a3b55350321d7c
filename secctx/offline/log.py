"""Progress lines for long steps: timestamped, flushed, on stderr, or, inside a
pytest run, straight to the terminal (the plugin sets a sink that bypasses
pytest's capture: a cold run builds for many minutes inside a session fixture,
and a person must see it is alive)."""
from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable

_START = time.monotonic()
_sink: Callable[[str], None] | None = None
HEARTBEAT = 25.0  # seconds between "still ..." lines of a long step: a line at least every 30 s


def set_sink(sink: Callable[[str], None] | None) -> None:
    global _sink
    _sink = sink


def step(message: str) -> None:
    line = f"[{time.monotonic() - _START:7.1f}s] {message}"
    if _sink is not None:
        try:
            _sink(line)
            return
        except Exception:  # the terminal went away: the line still goes somewhere
            pass
    print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def heartbeat(what: str, every: float = HEARTBEAT):
    """Say "still <what>" every `every` seconds until the block ends."""
    done = threading.Event()
    start = time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            step(f"  ... still {what} ({time.monotonic() - start:.0f}s)")

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
