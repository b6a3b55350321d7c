"""One case from manifest to verdict: apply, await the outcome, collect, judge.

The scheduler (secctx/run/scheduler.py) calls `judge` for every recipe case; tests
that write their own pods call `start_pod` and `sh`. Every step is recorded in
the report with its inputs and outputs.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from kubernetes.client import V1Pod
from kubernetes.client.rest import ApiException
from kubernetes.utils import FailToCreateError

from .. import observe, report, verdict
from ..cases import Case, Outcome, Status
from ..core import podspec, timeouts, timing
from ..kube import SANDBOX_FAILED, ExecResult, PodWaits, Terminal, describe_pod, format_events
from ..observe import Applied
from ..oracle import expect
from ..oracle.nodefacts import DEFAULT_NODE_KIND, DEFAULT_RUNTIME, NODE_KIND_LABEL
from .session import LOCAL_CLASS, Suite


@dataclass(frozen=True)
class CaseRun:
    """One run of a case: where and under what it runs, and the scheduler's shared
    waits and slots (None: the client's own waits, no bound on what runs at once)."""
    case: Case
    namespace: str
    storage: str | None  # the storage parameter (`local`, `default`), None without claims
    timing_id: str       # the test's case id, for timings and the observation document
    runtime: str = DEFAULT_RUNTIME       # RuntimeClass name, `default` for none
    node_kind: str = DEFAULT_NODE_KIND   # the cluster's own nodes, or vm-<lsm>
    waits: PodWaits | None = None        # the scheduler's PodWatch: every case's pods at once
    starting: threading.BoundedSemaphore | None = None   # cases starting pods at once
    observing: threading.BoundedSemaphore | None = None  # cases observed at once


def judge(suite: Suite, job: CaseRun) -> None:
    """A case from manifest to verdict (what its test asserts): run it under its runtime on
    a node of its kind, compare what it showed with what Kubernetes promises there,
    record each check, and raise if one fails (with the namespace's diagnostics
    attached)."""
    case = job.case
    env = suite.env.under(job.runtime).placed(job.node_kind)
    outcome, _ = expect.outcome_for(case, env)
    with dump_on_failure(suite, job.namespace):
        observed = run(suite, job, outcome)
        expected = expect.for_case(case, env, observed.learned)
        checks = verdict.compare(expected, observed)
        report.record_checks(checks, case.recipe_claim)
        verdict.assert_holds(expected, checks)


def not_to_run(suite: Suite, case: Case, runtime: str = DEFAULT_RUNTIME,
               node_kind: str = DEFAULT_NODE_KIND) -> None:
    """Skip a case this Kubernetes lacks; stop one whose RuntimeClass cannot run here
    (Suite.require_runtime), or whose node kind the cluster has no node of."""
    unavailable = expect.not_available(case, suite.kubernetes_version)
    if unavailable:
        pytest.skip(unavailable)
    suite.require_runtime(runtime)
    if not suite.env.nodes_of(node_kind):
        pytest.fail(f"no node of kind {node_kind} (label {NODE_KIND_LABEL}) in the cluster: "
                    f"its nodes are {', '.join(suite.env.nodes)}", pytrace=False)


def run(suite: Suite, job: CaseRun, outcome: Outcome) -> observe.Observed:
    """Apply the case (its workload under its RuntimeClass), wait for the outcome it
    expects (or the one that comes instead), and read everything it shows, within the
    scheduler's slots when it gives some."""
    case, timing_id, runtime = job.case, job.timing_id, job.runtime
    with job.starting or contextlib.nullcontext(), timing.phase(timing_id, "apply_to_ready"):
        applied = apply(suite, case, job.namespace,
                        prepare_objects(case, suite, job.storage, runtime, job.node_kind))
        status, waited = await_outcome(suite, case, applied, outcome, waits=job.waits,
                                       timeout=timeouts.POD_START
                                       if job.node_kind == DEFAULT_NODE_KIND
                                       else timeouts.EMULATED_POD_START)
    with job.observing or contextlib.nullcontext(), timing.phase(timing_id, "observation"):
        observed = observe.collect(suite.kube, suite.image_map, case, applied, status, waited,
                                   suite.image_user)
    report.attach_json("observation (as data)", observe.to_record(observed))
    report.label_node(observed.learned.node if observed.learned else None)
    # timing_id: the case's id (with the runtime, which the entry also names)
    suite.observations.record_case(timing_id, case.container, observed, runtime)
    return observed


def prepare_objects(case: Case, suite: Suite, storage: str | None,
                    runtime: str = DEFAULT_RUNTIME, node_kind: str = DEFAULT_NODE_KIND) -> list[dict]:
    """The case's objects with images mapped, for `local` storage claims on our class, and
    every pod (template) under RuntimeClass `runtime` and on node kind `node_kind` (the
    twin copies the spec)."""
    objects = [suite.image_map.rewrite(o) for o in case.objects]
    for obj in objects:
        if obj.get("kind") == "PersistentVolumeClaim" and storage == "local":
            obj.setdefault("spec", {})["storageClassName"] = LOCAL_CLASS
        if obj.get("kind") in ("Pod", "Deployment"):
            place(podspec.pod_spec(obj), runtime, node_kind)
    return objects


def place(spec: dict, runtime: str, node_kind: str) -> None:
    """A pod spec under RuntimeClass `runtime`, pinned to node kind `node_kind`: its
    label as a nodeSelector and its NoSchedule taint tolerated. The defaults change
    nothing (a case's spec stays as written)."""
    if runtime != DEFAULT_RUNTIME:
        spec["runtimeClassName"] = runtime
    if node_kind != DEFAULT_NODE_KIND:
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), NODE_KIND_LABEL: node_kind}
        spec["tolerations"] = [*(spec.get("tolerations") or []), {
            "key": NODE_KIND_LABEL, "operator": "Equal", "value": node_kind,
            "effect": "NoSchedule"}]


def apply(suite: Suite, case: Case, namespace: str, objects: list[dict]) -> Applied:
    workload = next(o for o in objects if o["kind"] == ("Deployment" if case.deployment else "Pod")
                    and o["metadata"]["name"] == (case.deployment or case.pod))
    with report.step(f"apply {len(objects)} object(s) into namespace {namespace}"):
        for original, obj in zip(case.objects, objects):
            images = _image_pairs(original, obj)
            if images:
                report.attach_text(f"image map for {obj['kind']}/{obj['metadata']['name']}",
                                   "\n".join(f"{a} -> {b}" for a, b in images))
            report.attach_yaml(f"applied {obj['kind']}/{obj['metadata']['name']}", obj)
            try:
                suite.kube.apply(obj, namespace)
            except FailToCreateError as err:
                if obj is not workload:  # only the workload may be refused: a case's outcome
                    raise
                refused = " ".join(e.body if isinstance(e, ApiException) else str(e)
                                   for e in err.api_exceptions)
                report.attach_text(f"API server refused {obj['kind']}/{obj['metadata']['name']}",
                                   refused)
                return Applied(namespace, objects, case.pod or "", podspec.pod_spec(workload),
                               refused)
    return Applied(namespace, objects, case.pod or "", podspec.pod_spec(workload))


def await_outcome(suite: Suite, case: Case, applied: Applied, outcome: Outcome,
                  timeout: float = timeouts.POD_START, waits: PodWaits | None = None
                  ) -> tuple[Status, object]:
    """Wait for what the case expects; returns the outcome reached and the pod (running,
    crashing) or the kubelet's refusal (rejected). A pod expected to be refused that
    becomes Ready is returned as running, for the verdict to judge. `waits` follows
    pods (Kube or a shared kube.PodWatch)."""
    kube = suite.kube
    watcher = waits or kube
    ns = applied.namespace
    if applied.refused is not None:  # nothing to wait for: the API server said no
        return Status.INVALID, applied.refused
    if case.deployment:
        with report.step(f"wait for deployment {case.deployment} to be ready (≤{timeout:.0f}s)"):
            kube.wait_for_deployment(case.deployment, ns, timeout)
            pods = kube.core.list_namespaced_pod(ns).items
            applied.pod_name = sorted(p.metadata.name for p in pods)[0]
            return Status.RUNNING, pods
    if outcome.status == Status.RUNNING:
        with report.step(f"wait for pod {applied.pod_name} to be Ready (≤{timeout:.0f}s)"):
            return Status.RUNNING, watcher.wait_for_pod(applied.pod_name, ns, "Ready", timeout)
    if outcome.status == Status.REJECTED:
        with report.step(f"wait for pod {applied.pod_name} to be refused: "
                         f"reason {outcome.reason!r}, message containing {outcome.message!r}"):
            try:
                # A refusal at sandbox creation is the outcome only where the case expects
                # it; elsewhere a passing sandbox failure must not end the wait.
                pod = watcher.wait_for_pod(applied.pod_name, ns, "Ready", timeout,
                                           sandbox_failures=int(outcome.reason == SANDBOX_FAILED))
            except Terminal as problem:
                return Status.REJECTED, problem
            report.attach_text("pod status (Ready, expected refused)", describe_pod(pod))
            return Status.RUNNING, pod
    # crashing: the container starts and exits; wait until it has done so once.
    with report.step(f"wait for container {case.container} to start and exit (≤{timeout:.0f}s)"):
        return Status.CRASHING, watcher.wait_for_container_exit(applied.pod_name, ns, case.container,
                                                        timeout)


@contextlib.contextmanager
def dump_on_failure(suite: Suite, namespace: str) -> Iterator[None]:
    """On any error, what a reader needs to diagnose it without re-running: the
    namespace's events in time order, each pod as stored, described, and its logs."""
    try:
        yield
    except pytest.skip.Exception:
        raise
    except BaseException:
        attach_diagnostics(suite, namespace)
        raise


def attach_diagnostics(suite: Suite, namespace: str) -> None:
    kube = suite.kube
    report.attach_text("events (time order)", format_events(kube.events(namespace)))
    for pod in kube.core.list_namespaced_pod(namespace).items:
        report.attach_object(f"stored Pod/{pod.metadata.name}", pod, kube.api)
        report.attach_text(f"describe Pod/{pod.metadata.name}", describe_pod(pod))
        for c in pod.spec.containers:
            report.attach_text(f"logs {pod.metadata.name}/{c.name}",
                               kube.logs(pod.metadata.name, namespace, c.name))


def _image_pairs(original: dict, mapped: dict) -> list[tuple[str, str]]:
    def images(obj: dict) -> list[str]:
        return [c.get("image") for c in podspec.containers(podspec.pod_spec(obj))
                if c.get("image")]
    if not isinstance(original.get("spec"), dict):  # ConfigMaps, Secrets: no containers
        return []
    return list(zip(images(original), images(mapped)))


def start_pod(suite: Suite, namespace: str, pod: dict,
              timeout: float = timeouts.POD_START) -> V1Pod:
    """Apply a pod written in a test (images mapped) and wait for it to be Ready."""
    pod = suite.image_map.rewrite(pod)
    with report.step(f"apply Pod/{pod['metadata']['name']} and wait for Ready (≤{timeout:.0f}s)"):
        report.attach_yaml(f"applied Pod/{pod['metadata']['name']}", pod)
        suite.kube.apply(pod, namespace)
        return suite.kube.wait_for_pod(pod["metadata"]["name"], namespace, "Ready", timeout)


def sh(suite: Suite, namespace: str, pod: str, script: str,
       container: str = "main") -> ExecResult:
    """Run a shell snippet in the container; the transcript goes to the report."""
    return observe.sh(suite.kube, namespace, pod, script, container)
