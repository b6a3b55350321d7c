"""Existing-cluster mode, and no secret in the report or the logs.

`pytest suites --secctx-existing-cluster --kubeconfig K --secctx-mode M` runs against the cluster of K
(here `secctx-robust`, treated as any cluster: no kind steps; M is the mode
cluster-up chose, so offline the images are the offline names already on its
nodes, with no hand-written image map), creates no kind
cluster, deletes what it made, and never writes the kubeconfig's credentials
(client key, client certificate, bearer token) into the Allure results or its
output.
"""
from __future__ import annotations

import re

import pytest
import yaml

from .robust_helpers import CLUSTER, kubeconfig_secrets, result_texts, run_pytest, secrets_found

pytestmark = pytest.mark.e2e

OTHER = CLUSTER + "2"  # the name a wrongly created kind cluster would get
FAKE_TOKEN = "secctx-bearer-token-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CASES = ("test_every_node_is_ready or test_pod_runs_as_the_uid or "
         "(test_recipe_case and (secure-pod or hardened-pod))")


def kubeconfig_with_a_token(robust, path) -> dict[str, str]:
    """robust's kubeconfig plus a bearer token; returns the secrets to look for."""
    data = yaml.safe_load(robust.kubeconfig.read_text())
    data["users"][0]["user"]["token"] = FAKE_TOKEN
    path.write_text(yaml.safe_dump(data))
    secrets = kubeconfig_secrets(path)
    assert len(secrets) == 5  # token, key and certificate (each as in the file and decoded)
    return secrets


def test_existing_cluster_runs_creates_no_cluster_and_leaks_no_secret(robust, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    secrets = kubeconfig_with_a_token(robust, kubeconfig)
    results = tmp_path / "allure"
    before = robust.counts()
    run = run_pytest("suites", "--secctx-existing-cluster", "--kubeconfig", str(kubeconfig),
                     "--cluster-name", OTHER, "--secctx-mode", robust.mode, "-k", CASES,
                     "--alluredir", str(results), "-rA", "-s", log=tmp_path / "run.log")
    after = robust.counts()
    print(f"\nexisting cluster: exit {run.returncode} in {run.seconds:.1f}s; kind clusters "
          f"before={before['kind_clusters']} after={after['kind_clusters']}")
    assert run.returncode == 0, run.output[-4000:]
    # Two cluster tests, two cases, and the two case files' checks.
    assert re.search(r"\b6 passed\b", run.output), run.output[-2000:]

    # C: no kind cluster made or deleted, nothing of the run left on the cluster.
    assert OTHER not in after["kind_clusters"]
    assert [c for c in after["kind_clusters"] if c.startswith(CLUSTER)] == \
        [c for c in before["kind_clusters"] if c.startswith(CLUSTER)] == [CLUSTER]
    assert {k: v for k, v in after.items() if k != "kind_clusters"} == \
        {"namespaces": [], "persistentvolumes": [], "storageclass": [], "daemonsets": []}
    # Kind-only steps are skipped, with the reason, in the log and the report environment.
    assert "skipped kind-only step (runc/containerd versions): not read: not a kind cluster" \
        in run.output
    environment = (results / "environment.properties").read_text()
    assert "runc=not read: not a kind cluster" in environment
    assert "mode=existing" in environment and "node_image=(existing cluster)" in environment

    # D: no credential anywhere in the results or the output.
    texts = result_texts(results)
    assert len(texts) > 10  # results, attachments, environment, categories
    assert not secrets_found({**texts, "output": run.output}, secrets)
    print(f"searched {len(texts)} result files and {len(run.output)} characters of output "
          f"for {len(secrets)} secrets and JWTs: none found")
