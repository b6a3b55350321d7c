"""Many generated pods on the cluster at once, each container judged by the oracle.

A batch is applied into one namespace, awaited with one watch (a container has
settled when it is ready or in a waiting state it will not leave), observed pod by pod
in parallel (the containers of one pod one after the other: they share volumes, and
the probe writes into them), and judged by expect.for_case and verdict.compare.
"""
from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.utils import FailToCreateError

from .. import observe, verdict
from ..cases import Case, Status
from ..core import podspec, timeouts
from ..kube import SANDBOX_FAILED, TERMINAL_WAITING, Kube, Terminal, describe_pod, transient_run_error
from ..observe import Applied, Observed, Refusal
from ..oracle import expect, refusals
from . import casefile

NOT_SETTLED = "not settled"  # neither ready nor refused within the bound
OBSERVE_FAILED = "not observed"  # reading the container failed (it restarted, say)


@dataclass
class Example:
    """One generated pod, rendered as case files and loaded back as Cases."""
    spec: dict
    cases: list[Case]  # one per container, in the spec's order

    @property
    def name(self) -> str:
        return casefile.pod_name(self.spec)


@dataclass
class Judged:
    """One container: what it showed, and the oracle's checks of it."""
    case: Case
    observed: Observed
    checks: list[verdict.Check]

    @property
    def failures(self) -> list[verdict.Check]:
        return verdict.failures(self.checks)

    @property
    def signature(self) -> str:
        """What a disagreement is, for shrinking: its failing fields (and the outcomes)."""
        parts = []
        for check in self.failures:
            field = check.field.replace("/mnt/", "mount ")
            parts.append(f"outcome {check.expected} -> {check.observed}" if field == "outcome"
                         else field)
        return "; ".join(sorted(parts))


def predicted_outcomes(suite, spec: dict) -> dict:
    """container -> the outcome the oracle predicts (the image's USER as the nodes have it,
    the facts every node has: the pod may run on any)."""
    outcomes = {}
    node = suite.env.node_facts()
    for container in podspec.containers(spec):
        image = suite.image_map.resolve(container["image"])
        outcomes[container["name"]] = refusals.outcome_of(spec, container["name"],
                                                          suite.image_user(image, None), node)
    return outcomes


def prepare(suite, spec: dict, workdir: Path) -> Example:
    """Render the spec's case files (with predicted outcomes) and load them."""
    root = Path(tempfile.mkdtemp(prefix=casefile.pod_name(spec) + "-", dir=workdir))
    files = casefile.write(root, spec, predicted_outcomes(suite, spec))
    return Example(spec, casefile.load(files))


def container_state(pod, name: str) -> tuple[str, str, str] | None:
    """('running', '', '') once the container is ready, ('rejected', reason, message) in a
    waiting state it will not leave (or a failed pod), None while it may still start."""
    if pod.status.phase == "Failed":
        return Status.REJECTED, pod.status.reason or "Failed", pod.status.message or ""
    for cs in pod.status.container_statuses or []:
        if cs.name != name:
            continue
        if cs.ready:
            return Status.RUNNING, "", ""
        waiting = cs.state.waiting if cs.state else None
        if transient_run_error(cs):
            return None  # the kubelet starts it again
        if waiting and waiting.reason in TERMINAL_WAITING:
            return Status.REJECTED, waiting.reason, waiting.message or ""
    return None


def _settled(pod) -> bool:
    return all(container_state(pod, c.name) for c in pod.spec.containers)


def run(suite, namespace: str, examples: list[Example], timeout: float = timeouts.POD_START,
        parallel: int = 4) -> list[Judged]:
    """Apply every example's pod, wait for all with one watch, judge every container."""
    kube = suite.kube
    refused: dict[str, str] = {}
    applied: dict[str, list[dict]] = {}
    shared_applied: set[str] = set()  # the ConfigMap and Secret every example names alike
    for example in examples:
        objects = [suite.image_map.rewrite(o) for o in example.cases[0].objects]
        for obj in objects:
            if obj["kind"] in ("ConfigMap", "Secret"):
                if obj["kind"] not in shared_applied:
                    kube.apply(obj, namespace)
                    shared_applied.add(obj["kind"])
                continue
            try:
                kube.apply(obj, namespace)
            except FailToCreateError as err:
                refused[example.name] = " ".join(e.body if isinstance(e, ApiException) else str(e)
                                                 for e in err.api_exceptions)
        applied[example.name] = objects
    names = {e.name for e in examples} - refused.keys()
    # The kubelet retries a failed sandbox: the second failure is taken as final.
    pods, unsettled, sandbox = kube.settle_pods(namespace, names, _settled, timeout)

    def judge_pod(example: Example) -> list[Judged]:
        # An ApiClient of this thread's own: the client's exec swaps its client's request
        # method for a WebSocket one while it runs, so a shared one breaks other calls.
        own = Kube(client.ApiClient(kube.api.configuration))
        pod_object = next(o for o in applied[example.name] if o["kind"] == "Pod")
        results = []
        for case in example.cases:
            ran = Applied(namespace, applied[example.name], example.name,
                          podspec.pod_spec(pod_object), refused.get(example.name))
            try:
                if example.name in sandbox:
                    observed = Observed(Status.REJECTED, refusal=Refusal(SANDBOX_FAILED,
                                                                    sandbox[example.name]))
                    results.append(Judged(case, observed, verdict.compare(
                        expect.for_case(case, suite.env, None), observed)))
                    continue
                results.append(judge(suite, own, case, ran, pods.get(example.name),
                                     example.name in unsettled, timeout))
            except Exception as err:  # noqa: BLE001 - one container's failure is its verdict
                # Permission errors end the run (errors.permissions); anything else that
                # stops observing is a result: the container did not behave as judged.
                if getattr(err, "status", None) in (401, 403):
                    raise
                now = own.core.read_namespaced_pod(example.name, namespace)
                observed = Observed(OBSERVE_FAILED, refusal=Refusal(
                    "", f"{type(err).__name__}: {str(err)[:500]}\npod now: {describe_pod(now)}"))
                results.append(Judged(case, observed, verdict.compare(
                    expect.Expected(case.outcome), observed)))
        return results

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return [j for judged in pool.map(judge_pod, examples) for j in judged]


def runner_for(suite, workdir: Path, timeout: float = timeouts.POD_START, parallel: int = 4):
    """specs -> {spec key: [Judged]}: each call one batch in a namespace of its own."""
    def run_specs(specs: list[dict]) -> dict[str, list[Judged]]:
        namespace = suite.new_namespace("secctx-generated")
        try:
            suite.kube.wait_for_default_service_account(namespace)
            examples = [prepare(suite, s, workdir) for s in specs]
            judged = run(suite, namespace, examples, timeout, parallel)
        finally:
            suite.kube.delete_namespace(namespace)
        return {casefile.spec_key(e.spec): [j for j in judged if j.case.pod == e.name]
                for e in examples}
    return run_specs


def judge(suite, kube: Kube, case: Case, applied: Applied, pod, unsettled: bool,
          timeout: float) -> Judged:
    env = suite.env
    if applied.refused is not None:
        status, waited = Status.INVALID, applied.refused
    elif unsettled or pod is None:
        observed = Observed(NOT_SETTLED, refusal=Refusal(
            "", f"not ready nor refused within {timeout:.0f}s: {describe_pod(pod)}\nevents:\n"
                + "\n".join(e.message or "" for e in kube.events(applied.namespace,
                                                                       applied.pod_name))))
        return Judged(case, observed, verdict.compare(expect.for_case(case, env, None), observed))
    else:
        status, reason, message = container_state(pod, case.container)
        waited = pod if status == Status.RUNNING else Terminal(
            f"container {case.container}: {reason}: {message}", pod, reason)
    observed = observe.collect(kube, suite.image_map, case, applied, status, waited,
                               suite.image_user)
    expected = expect.for_case(case, env, observed.learned)
    return Judged(case, observed, verdict.compare(expected, observed))
