"""Least privilege, proven: the suite runs with a kubeconfig of deploy/rbac.yaml's
ServiceAccount and nothing else (green), and with one permission taken away the
run ends with one INFRASTRUCTURE line naming the verb and resource (red),
whether set-up or a test is refused.
"""
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client, utils
from kubernetes.client.rest import ApiException

from secctx.core import exitcodes
from secctx.kube import rbac

from .robust_helpers import ROOT, cli, kubeconfig_secrets, run_pytest, traceback_in
from .test_existing_cluster import CASES

pytestmark = pytest.mark.e2e

MANIFEST = ROOT / rbac.MANIFEST
USER = f"system:serviceaccount:{rbac.NAMESPACE}:{rbac.SERVICE_ACCOUNT}"
# test_existing_cluster's cases (secure-pod crashes: logs, a twin), a case with a claim on
# a `local` PV, a pod the kubelet refuses (its events watched), and a Pod Security
# Admission namespace; all after the node-facts set-up (RuntimeClasses listed).
SELECTION = (f"{CASES} or (fsgroup-demo and local-storage) "
             "or (test_recipe_case and troubleshooting-root-image) "
             "or (test_pod_security_admission_verdict and secure-pod and restricted)")


@pytest.fixture
def grant(clean, tmp_path):
    """Applies deploy/rbac.yaml, less a verb if asked, and returns a kubeconfig of its
    ServiceAccount only; the RBAC objects are deleted afterwards (and before: a run
    cut short may have left them)."""
    def apply(without: tuple[str, str] | None = None):
        for obj in yaml.safe_load_all(MANIFEST.read_text()):
            if obj["kind"] == "ClusterRole" and without:
                obj["rules"] = remove_verb(obj["rules"], *without)
            utils.create_from_dict(clean.kube.api, obj)
        kubeconfig = tmp_path / "sa.kubeconfig"
        made = cli("rbac-kubeconfig", "--kubeconfig", str(clean.kubeconfig), "--out",
                   str(kubeconfig), "--duration", "10m")
        assert made.returncode == 0, made.stderr
        assert list(kubeconfig_secrets(kubeconfig)) == [f"{USER} token"]  # no admin key
        return kubeconfig

    delete_rbac(clean)
    yield apply
    delete_rbac(clean)


def delete_rbac(clean) -> None:
    api = client.RbacAuthorizationV1Api(clean.kube.api)
    for delete in (api.delete_cluster_role_binding, api.delete_cluster_role):
        try:
            delete(rbac.SERVICE_ACCOUNT)
        except ApiException as err:
            if err.status != 404:  # not there: nothing to delete
                raise
    clean.delete_namespaces_and_wait([rbac.NAMESPACE])  # with its ServiceAccount


def remove_verb(rules: list[dict], resource: str, verb: str) -> list[dict]:
    """The rules without `verb` on `resource` (which has a rule of its own)."""
    [rule] = [r for r in rules if r["resources"] == [resource]]
    assert verb in rule["verbs"]
    rest = [v for v in rule["verbs"] if v != verb]
    return [r if r is not rule else {**r, "verbs": rest} for r in rules if r is not rule or rest]


def suite_as_the_service_account(kubeconfig, clean, tmp_path, *extra: str):
    return run_pytest("suites", "--secctx-existing-cluster", "--kubeconfig", str(kubeconfig),
                      "--secctx-mode", clean.mode, "-k", SELECTION, *extra,
                      log=tmp_path / "run.log")


def nothing_left(clean, timeout: float = 60) -> dict:
    """What the run left on the cluster, once its deleted namespaces are gone (bounded)."""
    deadline = time.monotonic() + timeout
    while clean.ours_left() and time.monotonic() < deadline:
        time.sleep(0.5)
    return clean.ours_left()


def test_the_suite_passes_with_only_the_manifests_rbac(grant, clean, tmp_path):
    kubeconfig = grant()
    run = suite_as_the_service_account(kubeconfig, clean, tmp_path)
    print(f"\nas {USER}: exit {run.returncode} in {run.seconds:.1f}s")
    assert run.returncode == 0, run.output[-4000:]
    # test_existing_cluster's 6, the local-storage case, the refused pod and its case file's
    # check, and the PSA verdict.
    assert re.search(r"\b10 passed, \d+ deselected in", run.output), run.output[-2000:]
    assert "INFRASTRUCTURE" not in run.output
    assert nothing_left(clean) == {}


@pytest.mark.parametrize("resource, verb, where", [
    # Refused in set-up (the node helper's exec): the WebSocket upgrade's create check,
    # which the API server answers without naming the verb.
    ("pods/exec", "create", "suite set-up on the cluster failed: permission missing: the user "
     "of --kubeconfig cannot create pods/exec in namespace secctx-system-[0-9a-f]{6} \\(exec is a "
     "WebSocket GET, which the API server also authorizes as create\\)"),
    # Refused in a test (the local-storage case's claim), after others passed: the run
    # stops there.
    ("persistentvolumeclaims", "create", f"permission missing: {re.escape(USER)} cannot create "
     "persistentvolumeclaims in namespace secctx-local-storage-[0-9a-f]{6}"),
])
def test_one_verb_less_ends_the_run_with_one_line_naming_it(resource, verb, where, grant, clean,
                                                             tmp_path):
    kubeconfig = grant(without=(resource, verb))
    results = tmp_path / "allure"
    run = suite_as_the_service_account(kubeconfig, clean, tmp_path, "--alluredir", str(results))
    lines = [ln for ln in run.output.splitlines() if ln.startswith("INFRASTRUCTURE: ")]
    print(f"\nwithout {verb} {resource}: exit {run.returncode} in {run.seconds:.1f}s: {lines}")
    assert len(lines) == 1, run.output[-4000:]
    assert re.fullmatch(f"INFRASTRUCTURE: {where}; grant it: see deploy/rbac.yaml", lines[0])
    assert run.returncode == exitcodes.INFRASTRUCTURE_ERROR, run.output[-2000:]  # 6: no check failed
    assert "run stopped at the first INFRASTRUCTURE error" in run.output
    assert not traceback_in(run.output)
    # The report: the one refused test carries the line, filed under Infrastructure.
    refused = [r["statusDetails"]["message"] for r in map(json.loads, map(
        Path.read_text, results.glob("*-result.json"))) if r["status"] != "passed"]
    infra = next(c for c in json.loads((results / "categories.json").read_text())
                 if c["name"] == "Infrastructure")
    assert refused == [f"PermissionMissing: {lines[0]}"]
    assert re.fullmatch(infra["messageRegex"], refused[0])
    assert len(list(results.glob("*-result.json"))) < 8, "the tests after it do not run"
    assert nothing_left(clean) == {}
