"""The physical floor (issue 11): how long the cluster takes to start the pods of the
selected recipe cases, as fast as it can, with nothing observed or judged.

Run by benchmarks.run on the ready cluster, like the suite:

    python -m pytest benchmarks/floor.py -q --secctx-mode offline --cluster-name C --keep-cluster

It sets the session up as the suite does (secctx.run.session), then creates a
namespace for every case and applies its objects there, START_SLOTS cases starting at
once as in the scheduler (all 68 at once thrash 2 cores: some then miss their 60 s bound
and the "floor" is slower than the suite), and waits, with the scheduler's one pod watch,
until each reached the outcome its case expects (a case the API server refuses counts
at once). The seconds from the first namespace
to the last outcome, the number of cases and of those that did not reach their
outcome within the suite's bound, go to $SECCTX_FLOOR_OUT (JSON).
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from secctx import report
from secctx.kube import PodWatch, Terminal, WaitTimeout
from secctx.oracle import expect
from secctx.run import runner
from secctx.run.plugin import case_params
from secctx.run.scheduler import START_SLOTS


@pytest.mark.every_runtime  # it starts every case itself, under each runtime
def test_floor(secctx_suite, request):
    suite = secctx_suite
    params = []
    for p in case_params(request.config):
        try:
            runner.not_to_run(suite, p.case, p.runtime)
        except (pytest.skip.Exception, pytest.fail.Exception):
            continue  # the suite does not start these either
        params.append(p)
    pods = PodWatch(suite.kube.clone()).start()
    namespaces = []

    def start_and_await(p):
        local = suite.kube.clone()  # a client per thread, as the scheduler does
        s = dataclasses.replace(suite, kube=local)
        ns = s.open_namespace(f"secctx-floor-{p.case.name}")  # as the scheduler: timed
        namespaces.append(ns)
        late = None
        with report.recording(report.Recording()):  # no Allure test in a thread
            outcome, _ = expect.outcome_for(p.case, suite.env.under(p.runtime))
            applied = runner.apply(s, p.case, ns,
                                   runner.prepare_objects(p.case, s, p.storage, p.runtime))
            try:
                runner.await_outcome(s, p.case, applied, outcome, waits=pods)
            except Terminal:
                pass  # an outcome the case did not expect is still an outcome reached
            except WaitTimeout:
                late = p.id  # counted: the floor then includes the bound
        # Gone at once, as the suite's cases are: pods that stay hold the node's CPU
        # requests, and later cases' pods then wait unschedulable ("Insufficient cpu").
        s.kube.delete_namespace(ns)
        return time.monotonic(), late

    try:
        start = time.monotonic()
        with ThreadPoolExecutor(START_SLOTS) as pool:
            ends = list(pool.map(start_and_await, params))
        seconds = max((end for end, _ in ends), default=start) - start
        late = sorted(t for _, t in ends if t)
        timed_out = len(late)
    finally:
        pods.stop()
        for ns in namespaces:
            suite.kube.delete_namespace(ns)
    out = os.environ.get("SECCTX_FLOOR_OUT")
    if out:
        Path(out).write_text(json.dumps({"seconds": round(seconds, 3), "cases": len(params),
                                         "timed_out": timed_out, "late": late}))
    print(f"\nfloor: {len(params)} cases' pods at their outcome {seconds:.1f} s after the first "
          f"namespace ({timed_out} not within their bound{': ' if late else ''}{', '.join(late)})")
