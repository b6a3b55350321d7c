"""I/O-bound build steps beside CPU-bound ones: debootstrap (the mirror and the disk)
runs while Go compiles (both cores), so a cold build waits for the longer, not the sum."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

from ..core import run_command


@contextmanager
def beside(step: Callable[[], object], name: str) -> Iterator[Future]:
    """Run `step` in a thread of its own while the body runs. Its error is raised when
    the body asks for its result (future.result()); if the body fails (or is
    interrupted), the step's running commands are killed so that nothing runs on, and
    the body's error is the one raised."""
    started = threading.Event()
    ident: list[int] = []

    def run() -> object:
        ident.append(threading.get_ident())
        started.set()
        return step()

    pool = ThreadPoolExecutor(1, thread_name_prefix=name)
    future = pool.submit(run)
    try:
        yield future
        future.result()  # the body did not ask: its error is still raised
    except BaseException:
        if started.wait(5) and ident:
            future.cancel()
            run_command.stop_thread_commands(ident[0])
        raise
    finally:
        pool.shutdown(wait=True)
