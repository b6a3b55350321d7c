"""Apply, wait, exec, events: how tests and the case runner talk to the API server.

Waits follow watches and stop early on terminal states; every wait has a
bound and, when it fails, says what it awaited, what it last saw and the
events. Exec goes through the API's exec subresource (the stream API).
"""
from __future__ import annotations

import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kubernetes import client, config, utils, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from ..core import interrupts, steps, timeouts
from ..core.categories import timeout
from ..core.errors import Denial, denial
from ..core.podspec import condition_true

# Every watch.Watch() builds an ApiClient from the default Configuration; without a stored
# default that reads the proxy settings by iterating os.environ, which pytest's main thread
# changes (PYTEST_CURRENT_TEST) while case threads start watches: KeyError (seen in CI).
# A stored default is deep-copied instead, reading nothing from the environment.
client.Configuration.set_default(client.Configuration())

MANAGED_BY = {"app.kubernetes.io/managed-by": "secctx-conformance"}
RUN_LABEL = "secctx.io/run"

# Container waiting reasons after which the container will not start by itself.
TERMINAL_WAITING = {
    "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
    "CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff",
    "RunContainerError", "PreCreateHookError", "PostStartHookError",
}


# A container error with this message is no refusal of the spec: runc could not freeze
# the container's cgroup (v1) in time while the node's cores were busy, and the kubelet
# creates the container again after its back-off. Waits go on, and say so in the report.
# (Measured in 46 of 487 generated pods on a loaded 2-core machine, docs/generated-findings.md.)
TRANSIENT_RUN_ERRORS = ("unable to freeze",)

# The kubelet's event when it cannot create a pod's sandbox: a RuntimeClass handler that
# cannot run here, or one that refuses `hostUsers: false`. The pod stays Pending.
SANDBOX_FAILED = "FailedCreatePodSandBox"

# Waiting reasons that mean the node lacks the image (offline nothing is pulled).
IMAGE_MISSING = {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff"}


class WaitTimeout(AssertionError):
    """A bounded wait ran out; the message holds the last state and the events."""

    def __init__(self, message: str):
        super().__init__(timeout(message))


class Terminal(AssertionError):
    """The object reached a state it will not leave by itself."""

    def __init__(self, message: str, pod: client.V1Pod | None = None, reason: str = ""):
        super().__init__(message)
        self.pod = pod
        self.reason = reason


def _transient_api_error(err: BaseException) -> bool:
    return isinstance(err, ApiException) and err.status in (409, 429, 500, 503, 504) or \
        isinstance(err, (ConnectionError, TimeoutError))


def _mark_retry(state) -> None:
    """Every retry shows in the report: retries must never hide a flake."""
    with steps.step(f"RETRY #{state.attempt_number} of {state.fn.__name__} after a transient "
                     f"API error: {state.outcome.exception()!r}"):
        pass


# API calls retried on transient server errors only, visibly bounded and marked.
api_retry = retry(retry=retry_if_exception(_transient_api_error), stop=stop_after_delay(30),
                  wait=wait_exponential(multiplier=0.2, max=3), reraise=True,
                  before_sleep=_mark_retry)


class PodWaits(Protocol):
    """The pod waits a case needs, one protocol: the client's own (Kube, a watch per
    wait) and the scheduler's shared watch (PodWatch) both give them, each bounded by
    `timeout` and raising WaitTimeout (with the last state and the events) or Terminal."""

    def wait_for_pod(self, name: str, namespace: str, until: str = "Ready",
                     timeout: float = timeouts.POD_START,
                     sandbox_failures: int = 0) -> client.V1Pod: ...

    def wait_for_container_exit(self, name: str, namespace: str, container: str,
                                timeout: float = timeouts.POD_START) -> client.V1Pod: ...


@dataclass
class Kube:
    api: client.ApiClient
    core: client.CoreV1Api = field(init=False)
    apps: client.AppsV1Api = field(init=False)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)

    def __repr__(self) -> str:  # short: a traceback's frames print their arguments
        return f"<kube {self.api.configuration.host}>"

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> Kube:
        return cls(config.new_client_from_config(config_file=str(path), context=context))

    # -- namespaces -------------------------------------------------------
    @api_retry
    def create_namespace(self, prefix: str, run_id: str, labels: dict | None = None) -> str:
        safe = re.sub(r"[^a-z0-9-]+", "-", prefix.lower())[:40].strip("-")
        name = f"{safe}-{uuid.uuid4().hex[:6]}"
        meta = client.V1ObjectMeta(name=name, labels={**MANAGED_BY, RUN_LABEL: run_id,
                                                       **(labels or {})})
        self.core.create_namespace(client.V1Namespace(metadata=meta))
        return name

    def wait_for_default_service_account(self, namespace: str, timeout: float = timeouts.SERVICE_ACCOUNT) -> None:
        """Pods are refused until the namespace's default ServiceAccount exists."""
        w = watch.Watch()
        for ev in w.stream(self.core.list_namespaced_service_account, namespace,
                           field_selector="metadata.name=default", timeout_seconds=int(timeout)):
            if ev["type"] in ("ADDED", "MODIFIED"):
                w.stop()
                return
        raise WaitTimeout(f"namespace {namespace}: no default ServiceAccount after {timeout:.0f}s")

    def delete_namespace(self, name: str) -> None:
        """Delete a test namespace; its pods go first with no grace period, since
        many test workloads run as PID 1 that ignores SIGTERM."""
        try:
            self.core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
            self.core.delete_namespace(name, propagation_policy="Background", grace_period_seconds=0)
        except ApiException as err:
            if err.status != 404:
                raise

    # -- objects ----------------------------------------------------------
    def apply(self, obj: dict, namespace: str, dry_run: bool = False) -> list:
        """Create one manifest object (server-side), optionally as a dry run."""
        kwargs = {"dry_run": "All"} if dry_run else {}
        return utils.create_from_dict(self.api, obj, namespace=namespace, **kwargs)

    # -- pods -------------------------------------------------------------
    def clone(self) -> Kube:
        """A client of its own (same configuration): the stream API swaps a client's
        transport while an exec runs, so threads that exec must not share one."""
        return Kube(client.ApiClient(self.api.configuration))

    def wait_for_pod(self, name: str, namespace: str, until: str = "Ready",
                     timeout: float = timeouts.POD_START, sandbox_failures: int = 0) -> client.V1Pod:
        """Wait until the pod is `Ready`, `Running` or has a terminal problem.

        Returns the pod for `until`; raises Terminal as soon as the pod cannot
        get there by itself, WaitTimeout when the bound runs out. With
        `sandbox_failures` N > 0, the kubelet's Nth failure to create the pod's sandbox
        (an event: the pod's status does not show it) is terminal too; the kubelet
        retries, so N = 2 lets a passing failure (a CNI hiccup under load) pass.
        """
        return self.wait_for_pods(namespace, f"metadata.name={name}", 1, until, timeout,
                                  sandbox_failures, what=f"pod {namespace}/{name}")[name]

    def wait_for_pods(self, namespace: str, field_selector: str | None, count: int,
                      until: str = "Ready", timeout: float = timeouts.POD_START,
                      sandbox_failures: int = 0, label_selector: str | None = None,
                      what: str = "", final: tuple[str, ...] = ()) -> dict[str, client.V1Pod]:
        """{name: pod} once `count` pods of the selection have reached `until`; Terminal
        at the first that cannot (see wait_for_pod), WaitTimeout at the bound. One watch
        on the pods and, with `sandbox_failures`, one on the namespace's events; a
        sandbox failure that says one of `final` ends it at once (no retry mends it)."""
        what = what or f"pods {label_selector or field_selector} in {namespace}"
        pods: dict[str, client.V1Pod] = {}
        reached: dict[str, client.V1Pod] = {}
        failures = SandboxFailures(final)
        noted: set = set()
        sources = {"pod": (self.core.list_namespaced_pod, namespace,
                           {"field_selector": field_selector, "label_selector": label_selector})}
        if sandbox_failures:
            sources["event"] = (self.core.list_namespaced_event, namespace,
                                {"field_selector": f"reason={SANDBOX_FAILED}"})
        for source, ev in follow(sources, timeout):
            obj = ev["object"]
            if source == "event":
                name, event = obj.involved_object.name, "MODIFIED"
                failures.add(name, obj)
                if name not in pods:
                    continue
            else:
                name, event = obj.metadata.name, ev["type"]
                pods[name] = obj
            if pod_reached(namespace, name, until, event, pods[name], noted,
                           failures.refusal(name, sandbox_failures)) is not None:
                reached[name] = pods[name]
            else:
                reached.pop(name, None)
            if len(reached) >= count:
                return reached
        last = "\n".join(describe_pod(p) for p in pods.values()) or describe_pod(None)
        names = [field_selector.removeprefix("metadata.name=")] if field_selector and \
            field_selector.startswith("metadata.name=") else list(pods)
        events = [e for n in names for e in self.events(namespace, n)] if names else \
            self.events(namespace)
        raise WaitTimeout(f"{what} not {until} after {timeout:.0f}s; last seen: {last}\n"
                          f"events:\n{format_events(events)}")

    def settle_pods(self, namespace: str, names: set[str], settled: Callable[[client.V1Pod], bool],
                    timeout: float = timeouts.POD_START,
                    sandbox_failures: int = 2
                    ) -> tuple[dict[str, client.V1Pod], set[str], dict[str, str]]:
        """A batch: follow the namespace's pods (and their sandbox failures, counted like
        wait_for_pods) until settled(pod) holds for every pod in `names` or its sandbox
        failed `sandbox_failures` times. Nothing is raised: returns each pod as it was
        when it settled, the names still pending at the bound, and {name: sandbox failure}."""
        pods: dict[str, client.V1Pod] = {}
        sandbox: dict[str, str] = {}
        failures: dict[str, dict[str, int]] = {}
        pending = set(names)
        sources = {"pod": (self.core.list_namespaced_pod, namespace, {}),
                   "event": (self.core.list_namespaced_event, namespace,
                             {"field_selector": f"reason={SANDBOX_FAILED}"})}
        deadline = time.monotonic() + timeout
        while pending and (left := deadline - time.monotonic()) > 0:
            try:
                self._settle(follow(sources, left), pending, pods, sandbox, failures, settled,
                             sandbox_failures)
            except ApiException as err:  # an overloaded API server ends a watch: follow again
                if not _transient_api_error(err):
                    raise
        return pods, pending, sandbox

    @staticmethod
    def _settle(events, pending, pods, sandbox, failures, settled, sandbox_failures) -> None:
        for source, ev in events:
            obj = ev["object"]
            if source == "event":
                name = obj.involved_object.name
                if obj.type == "Warning" and name in pending:
                    counts = failures.setdefault(name, {})
                    counts[obj.metadata.name] = obj.count or 1
                    if sum(counts.values()) >= sandbox_failures:
                        sandbox[name] = obj.message or ""
                        pending.discard(name)
            elif obj.metadata.name in pending:  # another's, or kept as it settled
                pods[obj.metadata.name] = obj
                if ev["type"] == "DELETED" or settled(obj):
                    pending.discard(obj.metadata.name)
            if not pending:
                return

    def wait_for_container_exit(self, name: str, namespace: str, container: str,
                                timeout: float = timeouts.POD_START) -> client.V1Pod:
        """Wait until `container` has terminated at least once (a crashing workload)."""
        last = None
        w, noted = watch.Watch(), set()
        for ev in w.stream(self.core.list_namespaced_pod, namespace,
                           field_selector=f"metadata.name={name}", timeout_seconds=int(timeout)):
            last = ev["object"]
            if container_exited(namespace, name, container, ev["type"], last, noted) is not None:
                w.stop()
                return last
        raise pod_timeout(self, namespace, f"{name}/{container}", "did not exit", timeout, last,
                          name)

    def wait_for_deployment(self, name: str, namespace: str, timeout: float = timeouts.DEPLOYMENT,
                            fail_fast: bool = True) -> client.V1Deployment:
        """Until every replica is ready. fail_fast stops at a pod's terminal state;
        without it only the bound stops the wait (for pods known to recover)."""
        last = None
        w = watch.Watch()
        for ev in w.stream(self.apps.list_namespaced_deployment, namespace,
                           field_selector=f"metadata.name={name}", timeout_seconds=int(timeout)):
            last = ev["object"]
            want = last.spec.replicas or 0
            st = last.status
            if st and (st.ready_replicas or 0) == want and (st.updated_replicas or 0) == want \
                    and (st.observed_generation or 0) >= last.metadata.generation:
                w.stop()
                return last
            for pod in self.core.list_namespaced_pod(
                    namespace, label_selector=_selector(last)).items if fail_fast else []:
                problem = terminal_problem(pod)
                if problem:
                    w.stop()
                    raise Terminal(f"deployment {namespace}/{name}: pod {pod.metadata.name}: "
                                   f"{problem[1]}", pod, problem[0])
        raise WaitTimeout(f"deployment {namespace}/{name} not ready after {timeout:.0f}s; "
                          f"status: {last.status if last else None}\nevents:\n"
                          f"{format_events(self.events(namespace))}\n"
                          f"{self.unwell_logs(namespace)}")

    def exec(self, pod: str, namespace: str, container: str, command: list[str],
             timeout: float = timeouts.EXEC) -> ExecResult:
        try:
            resp = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace,
                          container=container, command=command, stdout=True, stderr=True,
                          stdin=False, tty=False, _preload_content=False)
        except ApiException as err:
            interrupts.carry(err)  # the client turns a KeyboardInterrupt into this
            raise handshake_refusal(err, namespace) from None
        out, err = [], []
        deadline = time.monotonic() + timeout
        try:
            while resp.is_open():
                if time.monotonic() > deadline:
                    raise WaitTimeout(f"exec {command} in {namespace}/{pod}/{container} "
                                      f"did not finish within {timeout:.0f}s")
                resp.update(timeout=1)
                if resp.peek_stdout():
                    out.append(resp.read_stdout())
                if resp.peek_stderr():
                    err.append(resp.read_stderr())
            code = resp.returncode
        finally:
            resp.close()
        return ExecResult(command, "".join(out), "".join(err), code)

    def events(self, namespace: str, name: str | None = None) -> list:
        selector = f"involvedObject.name={name}" if name else None
        items = self.core.list_namespaced_event(namespace, field_selector=selector).items
        return sorted(items, key=lambda e: (e.last_timestamp or e.event_time or
                                            e.metadata.creation_timestamp))

    def unwell_logs(self, namespace: str, lines: int = 20) -> str:
        """The log tail of every container in the namespace that restarted or is not
        ready (the previous run's when it restarted): a wait's dump shows why, not
        only that (a crash-looping kube-proxy is why coredns never becomes ready)."""
        parts = []
        for pod in self.core.list_namespaced_pod(namespace).items:
            for st in pod.status.container_statuses or []:
                if st.ready and not st.restart_count:
                    continue
                previous = bool(st.restart_count)
                tail = self.logs(pod.metadata.name, namespace, st.name, previous=previous)
                parts.append(f"logs of {pod.metadata.name}/{st.name} "
                             f"({'previous run, ' if previous else ''}{st.restart_count} restarts):\n"
                             + "\n".join(tail.splitlines()[-lines:]))
        return "\n".join(parts) or "(every container ready, none restarted)"

    def logs(self, pod: str, namespace: str, container: str, previous: bool = False) -> str:
        try:
            return self.core.read_namespaced_pod_log(pod, namespace, container=container,
                                                     previous=previous, tail_lines=500)
        except ApiException as err:
            if denial(err):  # a missing permission is no missing log: it ends the run
                raise
            return f"(no logs: {err.reason})"


# -- one wait's reading of one watch event (Kube's own watches and PodWatch share them) --

def pod_reached(namespace: str, name: str, until: str, event: str, pod: client.V1Pod,
                noted: set | None = None, sandbox_failure: str | None = None
                ) -> client.V1Pod | None:
    """The pod once it is `until`, None while it may still get there; Terminal when
    it cannot by itself (deleted, failed, a container stuck, the kubelet's sandbox
    failure if one is given). `noted`: the containers whose transient error the report
    already shows."""
    note_transient(pod, set() if noted is None else noted)
    if event == "DELETED":
        raise Terminal(f"pod {namespace}/{name} was deleted", pod, "Deleted")
    problem = terminal_problem(pod)
    if problem:
        raise Terminal(f"pod {namespace}/{name}: {problem[1]}", pod, problem[0])
    if sandbox_failure is not None:
        raise Terminal(f"pod {namespace}/{name}: {SANDBOX_FAILED}: {sandbox_failure}", pod,
                       SANDBOX_FAILED)
    return pod if _pod_reached(pod, until) else None


def container_exited(namespace: str, name: str, container: str, event: str,
                     pod: client.V1Pod, noted: set | None = None) -> client.V1Pod | None:
    """The pod once `container` has terminated at least once, None until then;
    Terminal when it cannot start (a crash loop is what is awaited, not a problem)."""
    note_transient(pod, set() if noted is None else noted)
    if event == "DELETED":
        raise Terminal(f"pod {namespace}/{name} was deleted", pod, "Deleted")
    for cs in pod.status.container_statuses or []:
        if cs.name == container and (cs.restart_count > 0 or (cs.state and cs.state.terminated)):
            return pod
    problem = terminal_problem(pod)
    if problem and problem[0] != "CrashLoopBackOff":
        raise Terminal(f"pod {namespace}/{name}: {problem[1]}", pod, problem[0])
    return None


def pod_timeout(kube: Kube, namespace: str, what: str, state: str, timeout: float,
                last: client.V1Pod | None, pod_name: str | None = None) -> WaitTimeout:
    """What a wait awaited, what it last saw, and the pod's events."""
    kind = "container" if "/" in what else "pod"
    return WaitTimeout(f"{kind} {namespace}/{what} {state} after {timeout:.0f}s; "
                       f"last seen: {describe_pod(last)}\nevents:\n"
                       f"{format_events(kube.events(namespace, pod_name or what))}")


class PodWatch:
    """One watch over the pods of every namespace (and one over the kubelet's sandbox
    failures), shared by many waits (the scheduler's cases, each in its own namespace):
    each wait reads the latest event of its pod, with the rules of Kube's own waits
    (pod_reached, container_exited), bounded by its timeout. The watches restart
    (bounded requests, resumed at the last resourceVersion) until `stop`."""

    REQUEST_S = 20  # one watch request's bound; a stop is noticed within it

    def __init__(self, kube: Kube):
        self.kube = kube
        self._latest: dict[tuple[str, str], tuple[int, str, client.V1Pod]] = {}
        self._sandbox = SandboxFailures()  # keyed (namespace, pod)
        self._seq = 0
        self._changed = threading.Condition()
        self._stopped = threading.Event()
        self.problem: str | None = None  # a watch's last error, for a timeout's message
        self._threads = [
            threading.Thread(target=self._follow, args=(kube.core.list_pod_for_all_namespaces,
                                                        {}, self._on_pod),
                             name="secctx-pod-watch", daemon=True),
            threading.Thread(target=self._follow,
                             args=(kube.core.list_event_for_all_namespaces,
                                   {"field_selector": f"reason={SANDBOX_FAILED}"},
                                   self._on_sandbox_event),
                             name="secctx-sandbox-watch", daemon=True)]

    def start(self) -> PodWatch:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        with self._changed:
            self._changed.notify_all()

    def _on_pod(self, event: str, pod: client.V1Pod) -> None:
        self._seq += 1
        self._latest[(pod.metadata.namespace, pod.metadata.name)] = (self._seq, event, pod)

    def _on_sandbox_event(self, event: str, ev: client.CoreV1Event) -> None:
        key = (ev.involved_object.namespace, ev.involved_object.name)
        if self._sandbox.add(key, ev) and key in self._latest:  # its waits look again
            self._seq += 1
            self._latest[key] = (self._seq, "MODIFIED", self._latest[key][2])

    def _follow(self, list_fn, kwargs: dict, on_event) -> None:
        version = None
        while not self._stopped.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(list_fn, timeout_seconds=self.REQUEST_S,
                                   _request_timeout=self.REQUEST_S + 10,
                                   **kwargs, **({"resource_version": version} if version else {})):
                    with self._changed:
                        on_event(ev["type"], ev["object"])
                        self._changed.notify_all()
                    if self._stopped.is_set():
                        break
                version = w.resource_version
                self.problem = None  # a request that ran to its bound: the watch is well
            except ApiException as err:
                version = None  # 410 Gone: list again (every object comes as ADDED)
                self.problem = f"watch: {err.status} {err.reason}"
            except Exception as err:  # noqa: BLE001 - a dropped connection: watch again
                self.problem = f"watch: {err!r}"
                self._stopped.wait(1)

    def _await(self, namespace: str, name: str, reached, timeout: float):
        deadline = time.monotonic() + timeout
        seen, last = 0, None
        with self._changed:
            while True:
                seq, event, pod = self._latest.get((namespace, name), (0, "", None))
                if seq > seen:
                    seen, last = seq, pod
                    if reached(event, pod) is not None:
                        return pod, None
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped.is_set():
                    return None, last
                self._changed.wait(remaining)

    def wait_for_pod(self, name: str, namespace: str, until: str = "Ready",
                     timeout: float = timeouts.POD_START, sandbox_failures: int = 0) -> client.V1Pod:
        noted = set()

        def reached(event: str, pod: client.V1Pod) -> client.V1Pod | None:
            failure = self._sandbox.refusal((namespace, name), sandbox_failures)
            return pod_reached(namespace, name, until, event, pod, noted, failure)
        pod, last = self._await(namespace, name, reached, timeout)
        if pod is None:
            raise self._timeout(namespace, name, f"not {until}", timeout, last)
        return pod

    def wait_for_container_exit(self, name: str, namespace: str, container: str,
                                timeout: float = timeouts.POD_START) -> client.V1Pod:
        noted = set()
        pod, last = self._await(
            namespace, name,
            lambda ev, p: container_exited(namespace, name, container, ev, p, noted), timeout)
        if pod is None:
            raise self._timeout(namespace, f"{name}/{container}", "did not exit", timeout, last,
                                name)
        return pod

    def _timeout(self, namespace, what, state, timeout, last, pod_name=None) -> WaitTimeout:
        if self._stopped.is_set():
            state += " (the run stopped)"
        elif self.problem:
            state += f" ({self.problem})"
        return pod_timeout(self.kube, namespace, what, state, timeout, last, pod_name)

def handshake_refusal(err: ApiException, namespace: str) -> ApiException:
    """The WebSocket client reports a refused exec as status 0 with the server's
    response in its reason: the same refusal as the API server's own ApiException.
    Since Kubernetes 1.35 the upgrade (a GET) is also authorized as `create`, and
    that refusal names no verb; the request it refused is attached for the message."""
    m = re.match(r"Handshake status (\d{3}) .*-\+-\+- (.*)$", str(err.reason or ""), re.S)
    if not m:
        return err
    refused = ApiException(status=int(m[1]), reason="Forbidden" if m[1] == "403" else "")
    refused.body = m[2].strip()
    refused.refused_request = Denial(
        "create", "pods/exec", namespace=namespace,
        why="exec is a WebSocket GET, which the API server also authorizes as create")
    return refused


@dataclass(frozen=True)
class ExecResult:
    command: list[str]
    stdout: str
    stderr: str
    returncode: int | None

    def transcript(self) -> str:
        return (f"$ {' '.join(self.command)}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
                f"\n--- exit code: {self.returncode}\n")


def follow(sources: dict[str, tuple], timeout: float) -> Iterator[tuple[str, dict]]:
    """The events of several watches, merged in arrival order, for at most `timeout`
    seconds: (source key, watch event). `sources`: key -> (list function, namespace,
    its keyword arguments). Each watch runs in a thread feeding one queue; errors
    surface here; the watches stop when the caller stops reading."""
    deadline = time.monotonic() + timeout
    if len(sources) == 1:  # no thread: closing this generator closes the watch at once
        (key, (list_fn, namespace, kwargs)), = sources.items()
        while (left := deadline - time.monotonic()) > 0:
            for ev in watch.Watch().stream(list_fn, namespace, timeout_seconds=max(1, int(left)),
                                           **{k: v for k, v in kwargs.items() if v}):
                yield key, ev
        return
    events: queue.Queue = queue.Queue()
    stopped = threading.Event()
    watches: list[watch.Watch] = []

    def pump(key: str, list_fn: Callable, namespace: str | None, kwargs: dict) -> None:
        w = watch.Watch()
        watches.append(w)
        try:
            while not stopped.is_set() and (left := deadline - time.monotonic()) > 0:
                for ev in w.stream(list_fn, namespace, timeout_seconds=max(1, int(left)),
                                   **{k: v for k, v in kwargs.items() if v}):
                    if stopped.is_set():
                        return
                    events.put((key, ev))
        except Exception as err:  # noqa: BLE001 - handed to the reader, who raises it
            events.put((key, err))

    for key, (list_fn, namespace, kwargs) in sources.items():
        threading.Thread(target=pump, args=(key, list_fn, namespace, kwargs), daemon=True,
                         name=f"watch-{key}").start()
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                key, ev = events.get(timeout=left)
            except queue.Empty:
                return
            if isinstance(ev, BaseException):
                raise ev
            yield key, ev
    finally:
        stopped.set()
        for w in watches:
            w.stop()


def _pod_reached(pod: client.V1Pod, until: str) -> bool:
    st = pod.status
    if until == "Running":
        return st.phase == "Running"
    if until == "Ready":
        return condition_true(pod, "Ready")
    if until == "Scheduled":
        return condition_true(pod, "PodScheduled")
    raise ValueError(until)


def terminal_problem(pod: client.V1Pod) -> tuple[str, str] | None:
    """(reason, message) when the pod will not become ready by itself."""
    st = pod.status
    if st.phase in ("Failed", "Succeeded") and (pod.spec.restart_policy or "Always") != "Always" \
            or st.phase == "Failed":
        return st.reason or st.phase, st.message or f"pod phase {st.phase}"
    for cs in (st.init_container_statuses or []) + (st.container_statuses or []):
        waiting = cs.state.waiting if cs.state else None
        if waiting and waiting.reason in TERMINAL_WAITING and not transient_run_error(cs):
            message = f"container {cs.name}: {waiting.reason}: {waiting.message or ''}"
            if waiting.reason == "ErrImageNeverPull":
                message += (f"; image {cs.image} is not on the node: load it (kind load "
                            f"docker-image {cs.image}) or fix the image map")
            elif waiting.reason in IMAGE_MISSING:  # online: the node asked a registry
                message += (f"; the node could not pull image {cs.image}: fix the registry or "
                            "its mirror, --image-registry, or the image map")
            return waiting.reason, message
    for cond in st.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False" and \
                cond.reason == "Unschedulable" and "preemption is not helpful" in (cond.message or ""):
            return "Unschedulable", cond.message
    return None


def transient_run_error(cs: client.V1ContainerStatus) -> bool:
    """A container the kubelet starts again by itself after a transient runtime error
    (TRANSIENT_RUN_ERRORS): waiting with that error, or backing off after it (after two
    such starts the kubelet says CrashLoopBackOff; the error is then the last
    termination's, reason StartError). Waits keep their bound."""
    waiting = cs.state.waiting if cs.state else None
    if waiting is None:
        return False
    last = cs.last_state.terminated if cs.last_state else None
    return _transient_message(waiting.message) or (
        waiting.reason == "CrashLoopBackOff" and last is not None
        and _transient_message(last.message))


def _transient_message(message: str | None) -> bool:
    return any(t in (message or "") for t in TRANSIENT_RUN_ERRORS)


class SandboxFailures:
    """The kubelet's failures to create pods' sandboxes, counted over its retries: a
    retry with a new sandbox id is an event of its own, one event counts its repeats.
    A transient failure (sandbox_refusal) is not counted."""

    def __init__(self, final: tuple[str, ...] = ()) -> None:
        self._counts: dict = {}  # pod key -> {event name: its count}
        self._message: dict = {}  # pod key -> the latest failure
        self._final = final  # what a failure says that no retry mends: it counts at once

    def add(self, key: tuple[str, str], event: dict) -> bool:
        refusal = sandbox_refusal(event)
        if refusal is None:
            return False
        self._counts.setdefault(key, {})[event.metadata.name] = event.count or 1
        self._message[key] = refusal
        return True

    def refusal(self, key: tuple[str, str], nth: int) -> str | None:
        """The failure once there were `nth` (0: never)."""
        if nth and key in self._message and (
                sum(self._counts[key].values()) >= nth
                or any(says in self._message[key] for says in self._final)):
            return self._message[key]
        return None


def sandbox_refusal(event: dict) -> str | None:
    """The kubelet's sandbox failure an event reports, None if it reports none (or a
    transient one, which the kubelet retries: runc's freeze time-out, as for containers)."""
    if event.type == "Warning" and event.involved_object.kind == "Pod" and \
            not _transient_message(event.message):
        return event.message or ""
    return None


def note_transient(pod: client.V1Pod, noted: set) -> None:
    """A step in the report, once per container and wait, for a transient RunContainerError
    the wait went past (a retry must never hide a flake)."""
    for cs in pod.status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting and transient_run_error(cs) and cs.name not in noted:
            noted.add(cs.name)
            with steps.step(f"RETRY by the kubelet: container {cs.name}: {transient_message(cs)}"):
                pass


def transient_message(cs: client.V1ContainerStatus) -> str:
    """The runtime's transient error itself: while backing off, the waiting message is only
    the back-off (`back-off 10s restarting failed container`); the error is the last
    termination's."""
    waiting = cs.state.waiting if cs.state else None
    if waiting and _transient_message(waiting.message):
        return waiting.message
    last = cs.last_state.terminated if cs.last_state else None
    return f"{waiting.message if waiting else ''} after: {last.message if last else '?'}"


def describe_pod(pod: client.V1Pod | None) -> str:
    if pod is None:
        return "(never seen)"
    st = pod.status
    lines = [f"phase={st.phase} reason={st.reason} message={st.message}"]
    for c in st.conditions or []:
        lines.append(f"condition {c.type}={c.status} {c.reason or ''} {c.message or ''}".rstrip())
    for cs in (st.init_container_statuses or []) + (st.container_statuses or []):
        state = cs.state
        if state.waiting:
            s = f"waiting {state.waiting.reason}: {state.waiting.message or ''}"
        elif state.terminated:
            s = f"terminated {state.terminated.reason} exit={state.terminated.exit_code}"
        else:
            s = "running"
        lines.append(f"container {cs.name}: {s} restarts={cs.restart_count} ready={cs.ready}")
    return "\n".join(lines)


def format_events(events: list) -> str:
    return "\n".join(
        f"{e.last_timestamp or e.event_time}  {e.type:7} {e.reason:24} "
        f"{e.involved_object.kind}/{e.involved_object.name}: {e.message}" for e in events
    ) or "(no events)"


def _selector(dep: client.V1Deployment) -> str:
    return ",".join(f"{k}={v}" for k, v in (dep.spec.selector.match_labels or {}).items())
