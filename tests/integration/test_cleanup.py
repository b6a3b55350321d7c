"""Clean up, always: a run deletes everything it made, whether a test fails,
the run is interrupted (SIGINT, SIGTERM) or killed (then the next run removes
the leftovers by label); --secctx-keep-on-failure keeps only what it promises.

Every test counts what suite runs leave on `secctx-robust` before and after:
namespaces labelled app.kubernetes.io/managed-by=secctx-conformance (in any
phase, Terminating included), PersistentVolumes with that label, the
StorageClass secctx-local, DaemonSets named secctx-node-helper in any
namespace, and kind clusters.
"""
from __future__ import annotations

import re
import signal
import subprocess
import time

import pytest
from kubernetes import config

from secctx.core import cache
from secctx.kube import Kube

from .robust_helpers import (
    CLUSTER,
    ROOT,
    Robust,
    cli,
    kind_clusters,
    kubeconfig_secrets,
    result_texts,
    run_pytest,
    secrets_found,
    start_pytest,
    write_case,
)

pytestmark = pytest.mark.e2e

MANIFESTS = ROOT / "fixtures" / "manifests"
SUITE = ("suites", "--cluster-name", CLUSTER)
NOTHING = {"namespaces": [], "persistentvolumes": [], "storageclass": [], "daemonsets": []}
# A quick valid case (the container crashes as the case expects) and a slower one.
# The e2e cases only, not the case-file checks (test_case_file_is_valid) of the same module.
QUICK_CASE = "test_recipe_case and not test_case_file_is_valid and secure-pod"
TWO_CASES = "test_recipe_case and not test_case_file_is_valid and (hardened-pod or secure-pod)"


def wrong_case(directory):
    """A valid case whose expectation is deliberately wrong (the pod runs as 1000)."""
    return write_case(directory, "deliberately-wrong", MANIFESTS / "hardened-pod.yaml",
                      "hardened-pod", "app", expect={"uid": 4242})


def show(title: str, before: dict, after: dict, **extra) -> None:
    """Printed for the report of this work (pytest -s / -rP)."""
    print(f"\n{title}: " + ", ".join(f"{k}={v}" for k, v in extra.items()))
    for key in before:
        print(f"  {key:18} before={len(before[key])} after={len(after[key])}  {after[key] or ''}")


def robust_clusters(counts: dict) -> list[str]:
    """Kind clusters of these tests (other engineers' clusters come and go)."""
    return [c for c in counts["kind_clusters"] if c.startswith(CLUSTER)]


def without_clusters(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k != "kind_clusters"}


def test_keep_on_failure_keeps_the_namespace_and_says_how_to_inspect_it(clean, tmp_path):
    before = clean.counts()
    run = run_pytest(*SUITE, "--secctx-cases-dir", str(wrong_case(tmp_path / "cases").parent),
                     "-k", "deliberately-wrong", "--secctx-keep-on-failure", log=tmp_path / "run.log")
    after = clean.counts()
    show("--secctx-keep-on-failure", before, after, exit=run.returncode, seconds=f"{run.seconds:.1f}")
    assert run.returncode == 1, run.output[-3000:]
    # The pinned uid, and the user the kubelet reports, differ from the process's.
    assert "NOT ENFORCED: 2 of" in run.output
    assert "FAIL uid: expected (4242, 4242, 4242, 4242), observed (1000, 1000, 1000, 1000)" \
        in run.output
    hint = re.search(r"kept namespace (\S+) of failed test: KUBECONFIG=(\S+) kubectl -n (\S+) "
                     r"get all,events", run.output)
    assert hint, f"no inspection hint in:\n{run.output[-3000:]}"
    kept = hint.group(1)
    assert hint.group(2) == str(clean.kubeconfig) and hint.group(3) == kept
    try:
        # Kept as it was when the test failed: Active, with the failed pod in it.
        assert clean.kube.core.read_namespace(kept).status.phase == "Active"
        pods = clean.kube.core.list_namespaced_pod(kept).items
        assert [p.metadata.name for p in pods] == ["hardened-pod"]
        assert after["namespaces"] == [kept]
        # Everything else of the run is gone; the cluster is kept.
        assert without_clusters(after) | {"namespaces": []} == NOTHING
        assert robust_clusters(after) == robust_clusters(before) == [CLUSTER]
    finally:
        clean.delete_namespaces_and_wait([kept])


def test_a_run_with_a_failing_test_after_a_killed_run_cleans_up_both(clean, tmp_path):
    """SIGKILL leaves objects behind; the next run removes them by label, runs
    (one case fails on purpose, the others pass) and deletes its own."""
    before = clean.counts()
    killed = start_pytest(*SUITE, "--keep-cluster", "-k", QUICK_CASE, log=tmp_path / "killed.log")
    namespace = clean.wait_for_test_namespace(killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait(30)
    leftovers = clean.counts()
    killed_run = clean.run_label(namespace.metadata.name)
    assert namespace.metadata.name in leftovers["namespaces"]
    assert leftovers["persistentvolumes"] and leftovers["storageclass"], leftovers

    cases = tmp_path / "cases"
    wrong_case(cases)
    results = tmp_path / "allure"
    run = run_pytest(*SUITE, "--secctx-cases-dir", str(cases), "-k", "deliberately-wrong or secure-pod",
                     "-rA", "--alluredir", str(results), log=tmp_path / "next.log")
    after = clean.counts()
    show("SIGKILL, then a run with a failing test", before, after,
         leftovers={k: len(v) for k, v in leftovers.items()}, exit=run.returncode,
         seconds=f"{run.seconds:.1f}")
    assert run.returncode == 1, run.output[-3000:]
    assert re.search(r"PASSED suites/test_recipe_cases.py::test_recipe_case\[secure-pod\]",
                     run.output), run.output[-3000:]
    assert re.search(r"FAILED suites/test_recipe_cases.py::test_recipe_case\[deliberately-wrong\]",
                     run.output)
    assert "removed objects of earlier runs: " in run.output
    assert namespace.metadata.name in run.output
    assert without_clusters(after) == NOTHING, f"left behind (killed run {killed_run}): {after}"
    # A failed test attaches the stored pod, events and logs: still no credential.
    texts = {**result_texts(results), "output": run.output}
    assert any("stored Pod/hardened-pod" in t for t in texts.values())
    assert not secrets_found(texts, kubeconfig_secrets(clean.kubeconfig))
    assert robust_clusters(after) == robust_clusters(before)


def _both_tests_reported(log) -> bool:
    # -v: one PASSED/FAILED line per test (progress lines may come between status letters)
    return len(re.findall(r"::test_recipe_case\[.*\] (PASSED|FAILED)", log.read_text())) >= 2


@pytest.mark.parametrize("signum, when", [
    (signal.SIGINT, "setup"), (signal.SIGTERM, "setup"), (signal.SIGTERM, "test"),
    (signal.SIGTERM, "cleanup")], ids=lambda v: getattr(v, "name", v))
def test_an_interrupted_run_deletes_everything_it_made(clean, tmp_path, signum, when):
    """The signal comes as soon as the first test's namespace exists (its fixture
    is still setting up), a second later (the test is running), or once both
    tests have reported (the run is deleting its objects: that must finish)."""
    before = clean.counts()
    log = tmp_path / "run.log"
    proc = start_pytest(*SUITE, "--keep-cluster", "-v", "-k", TWO_CASES, log=log)
    namespace = clean.wait_for_test_namespace(proc)
    if when == "test":
        time.sleep(1)
    elif when == "cleanup":
        deadline = time.monotonic() + 120
        while not _both_tests_reported(log) and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before the signal could be sent"
    sent = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{signum.name}: the run did not exit within 120 s")
    seconds = time.monotonic() - sent
    after = clean.counts()
    output = log.read_text()
    show(f"{signum.name} during {when}", before, after, exit=code,
         signal_to_exit=f"{seconds:.1f}s", first_namespace=namespace.metadata.name)
    assert code == 2, output[-3000:]  # pytest: interrupted
    if when == "cleanup":
        assert "SIGTERM came while deleting" in output
        assert "the clean-up finished first, then the run stopped" in output
    else:
        assert "KeyboardInterrupt" in output
    # Deleted means gone: no Terminating namespace or PV is left to the cluster.
    assert without_clusters(after) == NOTHING, after
    assert robust_clusters(after) == robust_clusters(before) == [CLUSTER]  # --keep-cluster
    assert seconds < 60, f"{signum.name} took {seconds:.0f}s to exit"


def test_sigterm_deletes_the_cluster_the_run_created_unless_kept(robust, tmp_path):
    """A run that created its cluster, interrupted, deletes it (it was not asked
    to keep it); the first test above shows the opposite with --keep-cluster."""
    other = CLUSTER + "2"
    before = kind_clusters()
    assert other not in before
    kubeconfig = cache.path("clusters", other, "kubeconfig")
    kubeconfig.unlink(missing_ok=True)
    proc = start_pytest("suites", "--cluster-name", other, "-k", QUICK_CASE,
                        log=tmp_path / "run.log")
    code = seconds = None
    try:
        deadline = time.monotonic() + 300
        while not kubeconfig.exists():  # kind writes it once the cluster is up
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no cluster after 300 s"
            time.sleep(0.5)
        new = Robust(other, kubeconfig, Kube(config.new_client_from_config(str(kubeconfig))))
        new.wait_for_test_namespace(proc, timeout=deadline - time.monotonic())
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(180)
        seconds = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        if other in kind_clusters():  # never leave it behind, whatever failed
            cli("cluster-down", "--cluster-name", other, timeout=180)
    after = kind_clusters()
    print(f"\nSIGTERM on a run that created {other}: exit {code}, signal to exit {seconds:.1f}s "
          f"(includes deleting the cluster), kind clusters before={before} after={after}")
    assert code == 2, (tmp_path / "run.log").read_text()[-3000:]
    assert other not in after, "the interrupted run kept a cluster it was not asked to keep"
