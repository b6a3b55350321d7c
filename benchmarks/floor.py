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

test_true_floor (issue 27) is the machine's own floor, without the suite's choices: the
same pods (every selected case's objects as the suite renders them) applied at once into
as few namespaces as their names allow, nothing observed, each pod followed from its
creation to its sandbox (PodReadyToStartContainers) and to Ready or its refusal, and
every failed sandbox creation counted with the runtime's message. JSON to
$SECCTX_TRUE_FLOOR_OUT:

    python -m pytest benchmarks/floor.py -k true_floor -q -s --secctx-mode offline \
        --cluster-name C --keep-cluster
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
from secctx.kube import SANDBOX_FAILED, PodWatch, Terminal, WaitTimeout, follow
from secctx.oracle import expect
from secctx.run import runner
from secctx.run.plugin import case_params
from secctx.run.scheduler import START_SLOTS


def runnable(suite, config) -> list:
    """The case parameters the suite would start (not those it skips or refuses first)."""
    params = []
    for p in case_params(config):
        try:
            runner.not_to_run(suite, p.case, p.runtime)
        except (pytest.skip.Exception, pytest.fail.Exception):
            continue  # the suite does not start these either
        params.append(p)
    return params


@pytest.mark.every_runtime  # it starts every case itself, under each runtime
def test_floor(secctx_suite, request):
    suite = secctx_suite
    params = runnable(suite, request.config)
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


# A pod has settled when it is Ready, has ended, or a container waits for a reason that is
# an outcome (a refusal, a crash), not a step of starting.
STARTING = {"ContainerCreating", "PodInitializing"}
TRUE_FLOOR_BOUND = 300  # seconds for every pod at once; what is later is reported "late"


def pack(groups: list[set[tuple[str, str]]]) -> list[int]:
    """For each group of (kind, name), the index of the first namespace where none of its
    names is taken (first fit): as few namespaces as the names allow."""
    taken: list[set[tuple[str, str]]] = []
    where = []
    for names in groups:
        i = next((i for i, t in enumerate(taken) if not t & names), len(taken))
        if i == len(taken):
            taken.append(set())
        taken[i] |= names
        where.append(i)
    return where


def settled(pod) -> str | None:
    """The pod's outcome once it has one: Ready, its phase when ended, or the reason a
    container waits with when that is not a step of starting."""
    conditions = {c.type: c.status for c in pod.status.conditions or []}
    if conditions.get("Ready") == "True":
        return "Ready"
    if pod.status.phase in ("Succeeded", "Failed"):
        return f"{pod.status.phase} {pod.status.reason or ''}".strip()
    for st in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
        waiting = st.state and st.state.waiting
        if waiting and waiting.reason and waiting.reason not in STARTING:
            return waiting.reason
        if st.state and st.state.terminated and not st.ready and st.restart_count:
            return "restarted"
    return None


def quantiles(values: list[float]) -> dict:
    if not values:
        return {}
    v = sorted(values)
    at = lambda q: v[min(len(v) - 1, int(q * len(v)))]  # noqa: E731
    return {"p50": round(at(0.5), 2), "p90": round(at(0.9), 2), "max": round(v[-1], 2)}


@pytest.mark.every_runtime
def test_true_floor(secctx_suite, request):
    suite = secctx_suite
    params = runnable(suite, request.config)
    rendered = [runner.prepare_objects(p.case, suite, p.storage, p.runtime) for p in params]
    where = pack([{(o["kind"], o["metadata"]["name"]) for o in objs} for objs in rendered])
    namespaces = [suite.open_namespace(f"secctx-truefloor-{i}") for i in range(max(where) + 1)]
    seen: dict[tuple[str, str], dict] = {}
    failures: dict[tuple[str, str], list[str]] = {}
    refused = []
    try:
        start = time.monotonic()

        def apply(item):
            objs, ns = item
            kube = suite.kube.clone()  # a client per thread, as the scheduler does
            for obj in objs:
                try:
                    kube.apply(obj, ns)
                except Exception as err:  # noqa: BLE001 - a refusal is that case's outcome
                    refused.append(f"{ns}/{obj['kind']}/{obj['metadata']['name']}: "
                                   f"{str(err).splitlines()[0][:200]}")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(apply, [(objs, namespaces[i]) for objs, i in zip(rendered, where)]))
        applied = time.monotonic() - start
        expected = sum(1 if o["kind"] == "Pod" else (o.get("spec", {}).get("replicas") or 1)
                       for objs in rendered for o in objs if o["kind"] in ("Pod", "Deployment"))
        sources = {}
        for ns in namespaces:
            sources[f"pod {ns}"] = (suite.kube.core.list_namespaced_pod, ns, {})
            sources[f"event {ns}"] = (suite.kube.core.list_namespaced_event, ns,
                                      {"field_selector": f"reason={SANDBOX_FAILED}"})
        for source, ev in follow(sources, TRUE_FLOOR_BOUND):
            obj, now = ev["object"], round(time.monotonic() - start, 2)
            if source.startswith("event"):
                key = (obj.metadata.namespace, obj.involved_object.name)
                failures.setdefault(key, []).append((obj.message or "")[:300])
                continue
            rec = seen.setdefault((obj.metadata.namespace, obj.metadata.name), {"seen": now})
            conditions = {c.type: c.status for c in obj.status.conditions or []}
            if conditions.get("PodReadyToStartContainers") == "True":
                rec.setdefault("sandbox", now)
            if (outcome := settled(obj)) and "settled" not in rec:
                rec.update(settled=now, outcome=outcome)
            if len(seen) >= expected - len(refused) and all("settled" in r for r in seen.values()):
                break
    finally:
        for ns in namespaces:
            suite.kube.delete_namespace(ns)
    late = sorted(f"{ns}/{n}" for (ns, n), r in seen.items() if "settled" not in r)
    settle = [r["settled"] for r in seen.values() if "settled" in r]
    result = {
        "cases": len(params), "pods": len(seen), "namespaces": len(namespaces),
        "applied_s": round(applied, 2), "all_settled_s": max(settle, default=None),
        "sandbox_ready_s": quantiles([r["sandbox"] for r in seen.values() if "sandbox" in r]),
        "settled_s": quantiles(settle), "late": late, "refused_by_api": refused,
        "sandbox_failures": sum(len(m) for m in failures.values()),
        "pods_with_sandbox_failures": {f"{ns}/{n}": m for (ns, n), m in failures.items()},
        "outcomes": {o: sum(1 for r in seen.values() if r.get("outcome") == o)
                     for o in sorted({r.get("outcome", "late") for r in seen.values()})},
        "pods_by_settled": sorted(((r.get("settled", -1), f"{ns}/{n}", r.get("sandbox"))
                                   for (ns, n), r in seen.items()), reverse=True),
    }
    if out := os.environ.get("SECCTX_TRUE_FLOOR_OUT"):
        Path(out).write_text(json.dumps(result, indent=1))
    tail = result["pods_by_settled"][:5]
    print(f"\ntrue floor: {len(seen)} pods of {len(params)} cases in {len(namespaces)} "
          f"namespaces, applied in {applied:.1f} s, all settled {result['all_settled_s']} s "
          f"after the first apply; sandbox ready {result['sandbox_ready_s']}, settled "
          f"{result['settled_s']}; {result['sandbox_failures']} failed sandbox creations on "
          f"{len(failures)} pods; {len(late)} late; slowest {tail}")
    for pod, messages in result["pods_with_sandbox_failures"].items():
        print(f"  {pod}: {messages[0]}")
