"""Kube.wait_for_pods on scripted watches: the pod watch and the events watch merged, a
sandbox failure terminal only from the Nth, a pod's own terminal state at once."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from kubernetes import client

from secctx import kube as kube_module
from secctx.kube import SANDBOX_FAILED, Kube, Terminal, WaitTimeout


def pod(name: str, ready: bool = False, waiting: str | None = None) -> client.V1Pod:
    status = client.V1ContainerStatus(
        name="app", image="busybox", image_id="", ready=ready, restart_count=0,
        state=client.V1ContainerState(waiting=client.V1ContainerStateWaiting(
            reason=waiting, message="boom") if waiting else None))
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name), spec=client.V1PodSpec(
        containers=[client.V1Container(name="app")]), status=client.V1PodStatus(
        phase="Pending", container_statuses=[status], conditions=[
            client.V1PodCondition(type="Ready", status="True" if ready else "False")]))


def sandbox_event(name: str, count: int, event: str = "e1") -> SimpleNamespace:
    return SimpleNamespace(type="Warning", count=count, message="handler cannot run",
                           metadata=SimpleNamespace(name=event),
                           involved_object=SimpleNamespace(kind="Pod", name=name))


class ScriptedWatch:
    """watch.Watch whose stream yields the script of the list function it is given: a pod's
    states 0.3 s apart, the events in between (0.05 s apart)."""
    scripts: dict = {}

    def stream(self, list_fn, namespace, **kwargs):
        for i, (kind, obj) in enumerate(self.scripts[list_fn]):
            time.sleep(0.05 if list_fn == "events" else 0.3 * bool(i))
            yield {"type": kind, "object": obj}
        time.sleep(kwargs["timeout_seconds"] if list_fn == "events" else 0.2)

    def stop(self):
        pass


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(kube_module.watch, "Watch", ScriptedWatch)
    k = Kube.__new__(Kube)
    k.core = SimpleNamespace(list_namespaced_pod="pods", list_namespaced_event="events")
    k.events = lambda namespace, name=None: []
    return k


def script(pods, events=()):
    ScriptedWatch.scripts = {"pods": [("ADDED", p) for p in pods],
                             "events": [("ADDED", e) for e in events]}


def test_one_passing_sandbox_failure_does_not_end_a_wait_that_allows_two(fake):
    script([pod("p"), pod("p", ready=True)], [sandbox_event("p", 1)])
    assert fake.wait_for_pod("p", "ns", timeout=3, sandbox_failures=2).metadata.name == "p"


def test_the_nth_sandbox_failure_is_the_pods_terminal_state_with_the_kubelets_message(fake):
    script([pod("p")], [sandbox_event("p", 1), sandbox_event("p", 2)])
    with pytest.raises(Terminal) as err:
        fake.wait_for_pod("p", "ns", timeout=3, sandbox_failures=2)
    assert err.value.reason == SANDBOX_FAILED
    assert str(err.value) == f"pod ns/p: {SANDBOX_FAILED}: handler cannot run"


def test_retries_as_events_of_their_own_count_together(fake):
    # Each retry names a new sandbox id, so the kubelet records it as another event.
    script([pod("p")], [sandbox_event("p", 1, "e1"), sandbox_event("p", 1, "e2")])
    with pytest.raises(Terminal):
        fake.wait_for_pod("p", "ns", timeout=3, sandbox_failures=2)


def test_a_sandbox_failure_no_retry_mends_ends_a_wait_that_allows_two_at_the_first(fake):
    # The runtime probe: a permission the host cannot give (HOST_LIMITS) does not pass.
    script([pod("p")], [sandbox_event("p", 1)])
    started = time.monotonic()
    with pytest.raises(Terminal, match="handler cannot run"):
        fake.wait_for_pods("ns", None, 1, timeout=30, sandbox_failures=2, final=("cannot run",))
    assert time.monotonic() - started < 5
    script([pod("p"), pod("p", ready=True)], [sandbox_event("p", 1)])  # another error: passes
    assert fake.wait_for_pods("ns", None, 1, timeout=3, sandbox_failures=2, final=("EPERM",))


def test_without_sandbox_failures_asked_for_only_the_pod_is_watched(fake):
    script([pod("p")], [sandbox_event("p", 5)])
    with pytest.raises(WaitTimeout, match="pod ns/p not Ready after 1s"):
        fake.wait_for_pod("p", "ns", timeout=1)


def test_a_container_that_cannot_start_ends_the_wait_at_once(fake):
    script([pod("p", waiting="CreateContainerConfigError")])
    started = time.monotonic()
    with pytest.raises(Terminal, match="CreateContainerConfigError: boom"):
        fake.wait_for_pod("p", "ns", timeout=30, sandbox_failures=1)
    assert time.monotonic() - started < 5


def test_several_pods_wait_until_count_are_ready(fake):
    script([pod("a", ready=True), pod("b"), pod("b", ready=True)])
    assert set(fake.wait_for_pods("ns", None, 2, label_selector="app=x", timeout=3)) == {"a", "b"}


def test_a_batch_follows_again_when_an_overloaded_api_server_ends_its_watch(fake, monkeypatch):
    from kubernetes.client.rest import ApiException
    calls = []

    def follow(sources, timeout):
        calls.append(timeout)
        if len(calls) == 1:
            raise ApiException(status=503, reason="Service Unavailable")
        yield "pod", {"type": "MODIFIED", "object": pod("p", ready=True)}
    monkeypatch.setattr(kube_module, "follow", follow)
    pods, pending, sandbox = fake.settle_pods("ns", {"p"}, lambda p: True, timeout=5)
    assert len(calls) == 2 and set(pods) == {"p"} and not pending and not sandbox


def container(waiting_reason: str, message: str, last_message: str | None = None):
    last = client.V1ContainerState(terminated=client.V1ContainerStateTerminated(
        exit_code=128, reason="StartError", message=last_message)) if last_message else None
    return client.V1ContainerStatus(
        name="app", image="busybox", image_id="", ready=False, restart_count=1,
        state=client.V1ContainerState(waiting=client.V1ContainerStateWaiting(
            reason=waiting_reason, message=message)), last_state=last)


FREEZE = ("failed to create containerd task: ... error setting cgroup config for procHooks "
          "process: unable to freeze")


def test_runcs_freeze_time_out_is_transient_and_other_run_errors_are_not():
    assert kube_module.transient_run_error(container("RunContainerError", FREEZE))
    assert not kube_module.transient_run_error(container(
        "RunContainerError", 'exec: "nope": executable file not found'))


def test_the_back_off_after_runcs_freeze_time_out_is_transient_too():
    # Seen in the soak: two "unable to freeze" starts, then CrashLoopBackOff (a generated
    # `sleep infinity` pod judged rejected).
    back_off = "back-off 10s restarting failed container=c0 pod=gen"
    assert kube_module.transient_run_error(container("CrashLoopBackOff", back_off, FREEZE))
    assert kube_module.terminal_problem(client.V1Pod(
        spec=client.V1PodSpec(containers=[]), status=client.V1PodStatus(
            phase="Running", container_statuses=[container("CrashLoopBackOff", back_off,
                                                           FREEZE)]))) is None
    # A workload that crashes by itself backs off for good.
    assert not kube_module.transient_run_error(container("CrashLoopBackOff", back_off,
                                                         "exit status 1"))


def test_the_retry_step_names_the_runtimes_error_not_the_back_off():
    # While backing off, the waiting message says only "back-off 10s ..."; the report's
    # RETRY step must name what made it transient: the last termination's freeze error.
    back_off = "back-off 10s restarting failed container=c0 pod=gen"
    message = kube_module.transient_message(container("CrashLoopBackOff", back_off, FREEZE))
    assert message.startswith(back_off) and message.endswith("unable to freeze")
    assert kube_module.transient_message(container("RunContainerError", FREEZE)) == FREEZE
