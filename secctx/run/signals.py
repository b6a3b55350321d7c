"""The suite's signal policy: SIGTERM unwinds like Ctrl-C, and clean-up is not cut short."""
from __future__ import annotations

import contextlib
import signal
import threading

import pytest

from ..core import interrupts


def terminate_like_interrupt() -> None:
    """CI stops jobs with SIGTERM: turn it into the same clean unwinding as Ctrl-C,
    so fixtures delete namespaces and the cluster."""
    def _stop(signum, frame):
        interrupts.request()
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)  # Ctrl-C: the same, and noted for the exec


@contextlib.contextmanager
def cleanup_first(what: str):
    """Clean-up that a signal must not cut short (it would leave objects behind).

    SIGINT/SIGTERM arriving meanwhile are noted, not raised; once the clean-up
    (bounded) is done the run stops with exit code 2. SIGKILL still aborts it,
    and the next run removes what is left by label."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        pytest.exit(f"{signal.Signals(received[0]).name} came while {what}: the clean-up "
                    "finished first, then the run stopped", returncode=pytest.ExitCode.INTERRUPTED)
