"""The scheduler's pure parts: a case's report recorded in one thread and replayed into
its test, the shared pod watch's waits, and which tests a process schedules."""
from __future__ import annotations

import dataclasses
import threading
import time
from types import SimpleNamespace

import allure
import pytest
from kubernetes import client

from secctx import kube, report
from secctx.run import plugin, scheduler


def pod(ready=False, waiting=None, terminated=False, restarts=0):
    state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason=waiting, message="boom") if waiting else None,
        terminated=client.V1ContainerStateTerminated(exit_code=1) if terminated else None,
        running=None if waiting or terminated else client.V1ContainerStateRunning())
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", namespace="ns"),
        spec=client.V1PodSpec(containers=[], restart_policy="Always"),
        status=client.V1PodStatus(
            phase="Running" if not waiting else "Pending",
            conditions=[client.V1PodCondition(type="Ready", status=str(ready))],
            container_statuses=[client.V1ContainerStatus(
                name="app", image="i", image_id="", ready=ready, restart_count=restarts,
                state=state)]))


class Calls:
    """allure's step, attach and dynamic, as calls (what the replay writes)."""

    def __init__(self, monkeypatch):
        self.calls = []
        calls = self.calls

        class Step:
            def __init__(self, title):
                self.title = title

            def __enter__(self):
                calls.append(("enter", self.title))

            def __exit__(self, kind, value, tb):
                calls.append(("exit", self.title, None if value is None else str(value)))
        monkeypatch.setattr(allure, "step", Step)
        monkeypatch.setattr(allure, "attach",
                            lambda body, name, attachment_type: calls.append(("attach", name, body)))
        monkeypatch.setattr(allure.dynamic, "tag", lambda t: calls.append(("tag", t)))


def test_a_recording_replays_steps_attachments_and_failures_in_order(monkeypatch):
    calls = Calls(monkeypatch).calls
    rec = report.Recording()

    def case():
        with report.recording(rec):
            with report.step("apply"):
                report.attach_text("applied", "yaml")
            with pytest.raises(AssertionError), report.step("wait"):
                raise AssertionError("not Ready after 60s")
            report.note_recipe_claim("the recipe says 1000")
    worker = threading.Thread(target=case)
    worker.start()
    worker.join()
    assert calls == []  # nothing reached Allure from the thread
    rec.replay()
    assert calls == [("enter", "apply"), ("attach", "applied", "yaml"), ("exit", "apply", None),
                     ("enter", "wait"), ("exit", "wait", "not Ready after 60s"),
                     ("tag", report.RECIPE_CLAIM_TAG),
                     ("enter", "RECIPE CLAIM DIFFERS: the recipe says 1000"),
                     ("attach", "recipe claim vs Kubernetes", "the recipe says 1000"),
                     ("exit", "RECIPE CLAIM DIFFERS: the recipe says 1000", None)]


def test_without_a_recording_the_report_goes_to_allure(monkeypatch):
    calls = Calls(monkeypatch).calls
    report.attach_text("direct", "text")
    assert calls == [("attach", "direct", "text")]


def watch_with(*events):
    """A PodWatch whose watch is not started, fed these (type, pod) events."""
    w = kube.PodWatch(SimpleNamespace(
        core=SimpleNamespace(list_pod_for_all_namespaces=None, list_event_for_all_namespaces=None),
        events=lambda ns, name=None: []))
    for i, (kind, p) in enumerate(events, 1):
        w._latest[("ns", "p")] = (i, kind, p)
    return w


def test_the_shared_watch_returns_a_pod_once_ready():
    w = watch_with(("ADDED", pod()))

    def later():
        with w._changed:
            w._latest[("ns", "p")] = (5, "MODIFIED", pod(ready=True))
            w._changed.notify_all()
    threading.Timer(0.1, later).start()
    assert w.wait_for_pod("p", "ns", "Ready", timeout=5).status.container_statuses[0].ready


def test_the_shared_watch_stops_at_a_terminal_state_like_a_watch_of_its_own():
    w = watch_with(("MODIFIED", pod(waiting="RunContainerError")))
    with pytest.raises(kube.Terminal, match="container app: RunContainerError"):
        w.wait_for_pod("p", "ns", "Ready", timeout=5)
    with pytest.raises(kube.Terminal, match="RunContainerError"):
        w.wait_for_container_exit("p", "ns", "app", timeout=5)


def test_a_crash_loop_is_what_a_container_exit_wait_awaits():
    w = watch_with(("MODIFIED", pod(waiting="CrashLoopBackOff", restarts=1)))
    assert w.wait_for_container_exit("p", "ns", "app", timeout=1).status.phase == "Pending"


def test_a_shared_wait_that_times_out_names_what_it_waited_for_and_what_it_saw():
    w = watch_with(("ADDED", pod()))
    with pytest.raises(kube.WaitTimeout, match=r"pod ns/p not Ready after 0s; last seen: "
                                               r"phase=Running"):
        w.wait_for_pod("p", "ns", "Ready", timeout=0.2)
    w.stop()
    with pytest.raises(kube.WaitTimeout, match=r"container ns/p/app did not exit \(the run "
                                               r"stopped\) after 1s"):
        w.wait_for_container_exit("p", "ns", "app", timeout=1)


def item(name, recipe=True):
    param = SimpleNamespace(id=name)
    return SimpleNamespace(nodeid=f"suites/t.py::test[{name}]", name=f"test[{name}]",
                           callspec=SimpleNamespace(params={plugin.RECIPE_CASE if recipe else "x": param}))


def test_upcoming_jobs_are_the_selected_recipe_cases_or_those_queued_to_an_xdist_worker():
    items = [item("a"), item("b", recipe=False), item("c"), item("d")]
    plugins = []
    session = SimpleNamespace(items=items, config=SimpleNamespace(
        pluginmanager=SimpleNamespace(get_plugins=lambda: plugins)))
    assert [j.param.id for j in plugin.upcoming_jobs(session)] == ["a", "c", "d"]
    assert plugin.upcoming_jobs(session)[0].prefix == "secctx-a"

    class WorkerInteractor:  # xdist's: its queue of item indices
        torun = SimpleNamespace(lock=lambda: _Queue([3, 1, "SHUTDOWN"]))
    plugins.append(WorkerInteractor())
    assert [j.param.id for j in plugin.upcoming_jobs(session)] == ["d"]


class _Queue:
    def __init__(self, items):
        self.items = items

    def __enter__(self):
        return self.items

    def __exit__(self, *exc):
        return False


def test_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        scheduler.Scheduler(SimpleNamespace(), concurrency=0)
    problem = plugin.option_problem(lambda name: {"case_concurrency": 0, "cases_dir": [], "mode": "offline"}.get(name))
    assert problem.startswith("--secctx-case-concurrency 0 is below 1")


def test_runcs_freeze_timeout_is_waited_past_and_shown_once_other_run_errors_stop_the_wait():
    frozen = pod(waiting="RunContainerError")
    frozen.status.container_statuses[0].state.waiting.message = (
        "runc create failed: error setting cgroup config for procHooks process: unable to freeze")
    assert kube.terminal_problem(frozen) is None
    rec = report.Recording()
    with report.recording(rec):
        w = watch_with(("MODIFIED", frozen))
        with pytest.raises(kube.WaitTimeout):
            w.wait_for_pod("p", "ns", "Ready", timeout=0.3)
    retries = [n.args[0] for n in rec.root.children if n.kind == "step"]
    assert len(retries) == 1 and retries[0].startswith("RETRY by the kubelet: container app: ")
    assert kube.terminal_problem(pod(waiting="RunContainerError"))[0] == "RunContainerError"


def test_the_kubelets_sandbox_failure_ends_a_shared_wait_that_expects_a_refusal():
    w = watch_with(("ADDED", pod()))
    failure = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="e"), type="Warning", message="no handler runsc",
        involved_object=client.V1ObjectReference(kind="Pod", namespace="ns", name="p"))
    with w._changed:
        w._on_sandbox_event("ADDED", failure)
    with pytest.raises(kube.Terminal, match="FailedCreatePodSandBox: no handler runsc"):
        w.wait_for_pod("p", "ns", "Ready", timeout=5, sandbox_failures=1)
    with pytest.raises(kube.WaitTimeout):  # a wait for Ready alone goes on
        w.wait_for_pod("p", "ns", "Ready", timeout=0.2)
    with pytest.raises(kube.WaitTimeout):  # one failure is not the second
        w.wait_for_pod("p", "ns", "Ready", timeout=0.2, sandbox_failures=2)
    retry = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="e2"), type="Warning", message="no handler runsc",
        involved_object=client.V1ObjectReference(kind="Pod", namespace="ns", name="p"))
    with w._changed:
        w._on_sandbox_event("ADDED", retry)  # the kubelet's retry: another sandbox, event
    with pytest.raises(kube.Terminal, match="no handler runsc"):
        w.wait_for_pod("p", "ns", "Ready", timeout=5, sandbox_failures=2)


def test_a_transient_sandbox_failure_is_no_refusal():
    w = watch_with(("ADDED", pod()))
    frozen = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="e"), type="Warning",
        message="failed to start sandbox: runc create failed: unable to freeze",
        involved_object=client.V1ObjectReference(kind="Pod", namespace="ns", name="p"))
    with w._changed:
        w._on_sandbox_event("ADDED", frozen)
    with pytest.raises(kube.WaitTimeout):
        w.wait_for_pod("p", "ns", "Ready", timeout=0.2, sandbox_failures=1)


class _FakeKube:
    def __init__(self, deleted):
        self.deleted = deleted

    def clone(self):
        return self

    def delete_namespace(self, name):
        self.deleted.append(name)


@dataclasses.dataclass
class _FakeSuite:
    kube: object
    kept_namespaces: set = dataclasses.field(default_factory=set)

    def open_namespace(self, prefix):
        return prefix + "-ns"


def _scheduler(monkeypatch, judge, concurrency=4, keep=False):
    monkeypatch.setattr(scheduler, "PodWatch", lambda kube: SimpleNamespace(
        start=lambda: SimpleNamespace(stop=lambda: None)))
    monkeypatch.setattr(scheduler.runner, "not_to_run", lambda suite, case, runtime, node: None)
    monkeypatch.setattr(scheduler.runner, "judge", judge)
    deleted = []
    suite = _FakeSuite(_FakeKube(deleted))
    return scheduler.Scheduler(suite, concurrency, keep_on_failure=keep), suite, deleted


def job(name):
    return scheduler.Job(SimpleNamespace(id=name, case=None, storage=None, runtime="default",
                                         node="default"),
                         f"t::{name}", f"secctx-{name}")


@pytest.mark.parametrize("concurrency", [1, 4])
def test_each_case_runs_once_its_test_gets_its_recording_and_its_error(monkeypatch, concurrency):
    ran = []

    def judge(suite, job):
        timing_id = job.timing_id
        ran.append(timing_id)
        report.attach_text("observed vs expected", f"{timing_id} checked")
        if timing_id == "bad":
            raise AssertionError("runAsUser: expected 1000, observed 0")
    s, suite, deleted = _scheduler(monkeypatch, judge, concurrency)
    try:
        good, bad = s.result(job("good")), s.result(job("bad"))
        assert s.result(job("good")) is good and sorted(ran) == ["bad", "good"]  # once each
    finally:
        s.close()
    assert good.error is None and good.recording.root.children[0].args[:2] == (
        "good checked", "observed vs expected")
    with pytest.raises(AssertionError, match="expected 1000, observed 0"):
        bad.replay()
    assert sorted(deleted) == ["secctx-bad-ns", "secctx-good-ns"] and not suite.kept_namespaces


def test_a_failed_cases_namespace_stays_with_keep_on_failure(monkeypatch):
    def judge(*args, **kwargs):
        raise AssertionError("no")
    s, suite, deleted = _scheduler(monkeypatch, judge, keep=True)
    try:
        r = s.result(job("bad"))
    finally:
        s.close()
    assert r.kept and suite.kept_namespaces == {"secctx-bad-ns"} and deleted == []


def _thread_of_judge(monkeypatch, concurrency, early=None):
    threads = []
    s, _, _ = _scheduler(monkeypatch, lambda *a, **k: threads.append(threading.current_thread()),
                         concurrency)
    try:
        if early:
            s.start(job(early))
            time.sleep(0.2)
        started_early = list(threads)
        s.result(job("a"))
    finally:
        s.close()
    return started_early, threads[-1]


def test_at_concurrency_1_a_case_runs_in_its_tests_own_thread_and_nothing_starts_early(monkeypatch):
    """So --pdb and breakpoints stop in the test (issue 24)."""
    started_early, ran_in = _thread_of_judge(monkeypatch, 1, early="early")
    assert started_early == [] and ran_in is threading.current_thread()


def test_above_concurrency_1_a_case_runs_in_a_worker_thread(monkeypatch):
    started_early, ran_in = _thread_of_judge(monkeypatch, 4, early="early")
    assert len(started_early) == 1 and ran_in.name.startswith("secctx-case")
