"""Whether the run was asked to stop (SIGINT/SIGTERM), for the code that must carry it.

The kubernetes client's websocket exec catches KeyboardInterrupt and raises
ApiException(status=0, reason='signal 15') instead (kubernetes/stream/ws_client.py
websocket_call), so a case interrupted inside an exec would fail as one test and the
run would go on. The exec turns it back into KeyboardInterrupt when a stop was asked for."""
from __future__ import annotations

import threading

_requested = threading.Event()


def request() -> None:
    """Called by the signal handler (secctx/run/signals.py) before it raises."""
    _requested.set()


def requested() -> bool:
    return _requested.is_set()


def carry(err: BaseException) -> None:
    """Raise KeyboardInterrupt in place of `err` if a stop was asked for: the client
    swallowed the interrupt and gave back its text as the error."""
    if _requested.is_set():
        raise KeyboardInterrupt(f"stop requested (the client reported: {err})") from err
