"""deploy/rbac.yaml and the ServiceAccount kubeconfig made from it (no cluster: the
TokenRequest call is simulated)."""
from __future__ import annotations

import datetime
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from kubernetes import client

from secctx import cli
from secctx.kube import MANAGED_BY, rbac

ROOT = Path(__file__).resolve().parents[2]
OBJECTS = {o["kind"]: o for o in yaml.safe_load_all((ROOT / rbac.MANIFEST).read_text())}


def test_the_manifest_binds_the_service_account_the_helper_asks_a_token_for():
    sa = OBJECTS["ServiceAccount"]["metadata"]
    assert (sa["namespace"], sa["name"]) == (rbac.NAMESPACE, rbac.SERVICE_ACCOUNT)
    binding = OBJECTS["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == OBJECTS["ClusterRole"]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": rbac.SERVICE_ACCOUNT,
                                    "namespace": rbac.NAMESPACE}]
    # The suite deletes namespaces with its managed-by label left by earlier runs.
    labels = OBJECTS["Namespace"]["metadata"].get("labels") or {}
    assert not set(MANAGED_BY.items()) & set(labels.items())


def test_the_cluster_role_grants_no_wildcard_and_nothing_on_secrets_or_rbac():
    rules = OBJECTS["ClusterRole"]["rules"]
    assert all("*" not in r["verbs"] + r["resources"] + r["apiGroups"] for r in rules)
    assert not [r for r in rules if "secrets" in r["resources"]
                or "rbac.authorization.k8s.io" in r["apiGroups"]]
    # Each resource has one rule, so that removing a rule removes one permission set.
    resources = [(g, res) for r in rules for g in r["apiGroups"] for res in r["resources"]]
    assert len(resources) == len(set(resources))


def test_service_account_kubeconfig_holds_only_the_token(monkeypatch, tmp_path):
    admin = tmp_path / "admin"
    admin.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": "https://10.0.0.1:6443",
                                               "certificate-authority-data": "Q0EK"}}],
        "users": [{"name": "admin", "user": {"client-key-data": "S0VZCg=="}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "admin"}}]}))
    asked = []

    def create_token(self, name, namespace, body):
        asked.append((name, namespace, body.spec.expiration_seconds, body.spec.audiences))
        expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
        return SimpleNamespace(status=SimpleNamespace(token="sa-token", expiration_timestamp=expires))

    monkeypatch.setattr(client.CoreV1Api, "create_namespaced_service_account_token", create_token)
    out = tmp_path / "sa.kubeconfig"
    assert cli.main(["rbac-kubeconfig", "--kubeconfig", str(admin), "--out", str(out),
                     "--duration", "90m"]) == 0
    assert asked == [(rbac.SERVICE_ACCOUNT, rbac.NAMESPACE, 5400, [])]
    written = yaml.safe_load(out.read_text())
    assert written["clusters"] == yaml.safe_load(admin.read_text())["clusters"]
    user = f"system:serviceaccount:{rbac.NAMESPACE}:{rbac.SERVICE_ACCOUNT}"
    assert written["users"] == [{"name": user, "user": {"token": "sa-token"}}]
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


@pytest.mark.parametrize("text, problem", [("5m", "shorter than the API's minimum of 10m"),
                                           ("two hours", "is not a duration")])
def test_durations_the_token_request_cannot_take(text, problem, capsys):
    with pytest.raises(SystemExit):
        cli.main(["rbac-kubeconfig", "--kubeconfig", "k", "--out", "o", "--duration", text])
    assert problem in capsys.readouterr().err


def test_an_installed_suite_prints_the_same_manifest(capsys):
    from secctx import cli
    from secctx.core import paths
    assert cli.main(["rbac-manifest"]) == 0
    assert capsys.readouterr().out == (ROOT / rbac.MANIFEST).read_text() == \
        paths.RBAC_MANIFEST.read_text()
