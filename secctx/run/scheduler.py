"""Start every case, then observe: the recipe cases of a run, worked on together.

As soon as the session's cluster is set up (the first test that uses it), the
scheduler starts every recipe case selected for this process (after `-k`; on an
xdist worker, those queued to it so far), while the other tests run: each in
its own namespace, all applied at once, followed by one pod watch
(kube.PodWatch). A case is observed and judged as soon as it reaches its
outcome, at most `concurrency` at a time; its steps and attachments are
recorded (report.Recording) and its test replays them and raises what the
case raised. With concurrency 1 nothing starts early: each case runs in its own
test's thread, from apply to verdict, so `--pdb`, breakpoints and tracebacks
land in the test (the same _work, recorded and replayed the same way).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .. import report
from ..core import timeouts, timing
from ..kube import PodWatch
from ..offline import log
from . import runner
from .session import Suite

# Cases observed at once. On 2 cores the whole suite took 116 s at 1 and 80 s at 4 (benchmark
# medians), 95 s at 2 (a 20-run soak on a kept cluster, no flake). But on a fresh cluster a
# default-storage claim's pod stayed Pending with no event for 60 s while other cases ran
# beside it, at 4 (session 4) and at 2 (session 5, clean-clone CI): 1 by default until the
# wait follows the claim's provisioning (see the closing notes).
DEFAULT_CONCURRENCY = 1
SCHEDULED_CONCURRENCY = 4  # the scheduler's setting in the benchmark: execs load the cores
# Pods being started at once (apply to outcome). More at once only queue in the kubelet
# (2 cores here) until each wait's 60 s bound runs out, and on cgroup v1 runc fails to
# freeze busy containers' cgroups more often (a transient error, kube.TRANSIENT_RUN_ERRORS).
START_SLOTS = 4
MAX_THREADS = 64  # cases in flight at once beyond that wait for a thread (a bound)


@dataclass
class Job:
    """One recipe-case test: its parameter (plugin.CaseParam), the test's node id, and
    the namespace prefix its test would have had."""
    param: object
    nodeid: str
    prefix: str


@dataclass
class Result:
    recording: report.Recording
    error: BaseException | None  # what the test raises: a failed check, a timeout, a skip
    namespace: str | None
    kept: bool  # the namespace stays (--secctx-keep-on-failure)
    seconds: float

    @property
    def checks(self) -> list:
        """The verdict's checks (empty if the case ended before its verdict)."""
        return self.recording.checks

    def replay(self) -> None:
        """Into the calling test: its steps and attachments, then its outcome."""
        self.recording.replay()
        if self.error is not None:
            raise self.error


class Scheduler:
    def __init__(self, suite: Suite, concurrency: int = DEFAULT_CONCURRENCY, keep_on_failure: bool = False,
                 upcoming: Callable[[], list[Job]] = list):
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.suite = suite
        self.concurrency = concurrency
        self.keep_on_failure = keep_on_failure
        self.upcoming = upcoming  # the jobs this process will run (selected, queued)
        self._watch_kube = suite.kube.clone()  # never execs: safe to share between waits
        self.pods = PodWatch(self._watch_kube).start()
        self.inline = concurrency == 1  # each case in its test's own thread
        self._pool = None if self.inline else ThreadPoolExecutor(
            MAX_THREADS, thread_name_prefix="secctx-case")
        self._start = threading.BoundedSemaphore(1 if self.inline else START_SLOTS)
        self._observe = threading.BoundedSemaphore(concurrency)
        self._futures: dict[str, Future] = {}
        self._ran: dict[str, Result] = {}  # inline: each case's result, by test id
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = threading.Event()

    def start(self, *jobs: Job) -> None:
        """Start every upcoming job (and `jobs`) not started yet; inline, none."""
        if self.inline:
            return
        with self._lock:
            new = 0
            for job in [*self.upcoming(), *jobs]:
                if job.nodeid not in self._futures:
                    self._futures[job.nodeid] = self._pool.submit(self._work, job)
                    new += 1
        if new:
            log.step(f"scheduler: {new} recipe case(s) started ({len(self._futures)} in "
                     f"all), at most {START_SLOTS if self.concurrency > 1 else 1} starting pods "
                     f"and {self.concurrency} observing at once")

    def result(self, job: Job, timeout: float = timeouts.CASE_BACKSTOP) -> Result:
        """The job's result, starting it (and every upcoming job) if need be. Bounded:
        a case's own waits are bounded, this is the backstop. Inline, the case runs
        here, in the caller's thread."""
        if self.inline:
            if job.nodeid not in self._ran:
                if self._closed.is_set():
                    raise RuntimeError("the run stopped before this case started")
                self._ran[job.nodeid] = self._work(job)
            return self._ran[job.nodeid]
        self.start(job)
        future = self._futures[job.nodeid]
        if future.done():
            return future.result()
        done = sum(f.done() for f in self._futures.values())
        with log.heartbeat(f"waiting for case {job.param.id} ({done} of {len(self._futures)} "
                           "cases done)"):
            return future.result(timeout)

    def close(self) -> None:
        """Cancel what has not started, stop the watch, wait for what runs (each
        of its waits ends at once once the watch stopped)."""
        self._closed.set()
        self.pods.stop()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _suite(self) -> Suite:
        """This thread's view of the suite: a client of its own (kube.Kube.clone)."""
        if not hasattr(self._local, "suite"):
            self._local.suite = dataclasses.replace(self.suite, kube=self.suite.kube.clone())
        return self._local.suite

    def _work(self, job: Job) -> Result:
        param, rec, error, namespace, kept = job.param, report.Recording(), None, None, False
        start = time.monotonic()
        suite = self._suite()
        with report.recording(rec):
            try:
                if self._closed.is_set():
                    raise RuntimeError("the run stopped before this case started")
                runner.not_to_run(suite, param.case, param.runtime, param.node)
                namespace = suite.open_namespace(job.prefix)
                runner.judge(suite, runner.CaseRun(
                    param.case, namespace, param.storage, param.id, param.runtime, param.node,
                    waits=self.pods, starting=self._start, observing=self._observe))
            except BaseException as err:  # noqa: BLE001 - the test raises it
                error = err
            if namespace:
                kept = error is not None and self.keep_on_failure
                if kept:
                    self.suite.kept_namespaces.add(namespace)
                else:
                    with timing.phase(job.nodeid, "cleanup"):
                        suite.kube.delete_namespace(namespace)
        return Result(rec, error, namespace, kept, time.monotonic() - start)
