"""The cluster under test is complete: nodes Ready, every system pod Running,
a default StorageClass that provisions, and a pod that runs as the uid it asks for.
"""
from __future__ import annotations

import re

import pytest

from secctx import report
from secctx.core.categories import infrastructure, not_enforced
from secctx.core.podspec import condition_true
from secctx.run import runner
from secctx.verdict import require

pytestmark = pytest.mark.e2e


def test_every_node_is_ready(secctx_suite):
    report.label_test("Cluster", "nodes", "node readiness", secctx_suite.kubernetes_version, "blocker",
                      title="every node of the cluster is Ready")
    nodes = secctx_suite.kube.core.list_node().items
    not_ready = [n.metadata.name for n in nodes if not condition_true(n, "Ready")]
    report.attach_text("nodes", "\n".join(f"{n.metadata.name} {n.status.node_info.kubelet_version} "
                                          f"{n.status.node_info.container_runtime_version}"
                                          for n in nodes))
    require(nodes and not not_ready, infrastructure(f"nodes not Ready: {not_ready}"))


def test_every_system_pod_is_running(secctx_suite):
    report.label_test("Cluster", "system pods", "kube-system and storage pods",
                      secctx_suite.kubernetes_version, "blocker",
                      title="every kube-system and local-path-storage pod is Running")
    # Not local-path's helper pods: it starts one per volume it creates or deletes (the
    # claims of cases that run meanwhile), and they come and go.
    pods = [p for ns in ("kube-system", "local-path-storage")
            for p in secctx_suite.kube.core.list_namespaced_pod(ns).items
            if not p.metadata.name.startswith("helper-pod-")]
    report.attach_text("system pods", "\n".join(f"{p.metadata.namespace}/{p.metadata.name} "
                                                f"{p.status.phase}" for p in pods))
    broken = [f"{p.metadata.namespace}/{p.metadata.name}: {p.status.phase}" for p in pods
              if p.status.phase not in ("Running", "Succeeded")]
    require(pods and not broken, infrastructure(f"system pods not running: {broken}"))


def test_default_storage_class_provisions_a_volume(secctx_suite, secctx_namespace):
    report.label_test("Cluster", "storage", "default StorageClass", secctx_suite.kubernetes_version,
                      title="the default StorageClass binds a claim that a pod mounts")
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "probe"},
             "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}}}
    secctx_suite.kube.apply(claim, secctx_namespace)
    runner.start_pod(secctx_suite, secctx_namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uses-claim"},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
            "name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
            "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "probe"}}]}})
    pvc = secctx_suite.kube.core.read_namespaced_persistent_volume_claim("probe", secctx_namespace)
    require(pvc.status.phase == "Bound", infrastructure(f"claim is {pvc.status.phase}"))


def test_pod_runs_as_the_uid_it_asks_for(secctx_suite, secctx_namespace):
    report.label_test("Cluster", "runAsUser", "smoke: id as uid 1000", secctx_suite.kubernetes_version,
                      "blocker", title="runAsUser 1000 / runAsGroup 1000: id prints uid=1000 gid=1000")
    runner.start_pod(secctx_suite, secctx_namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uid-1000"},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                 "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"]}]}})
    out = runner.sh(secctx_suite, secctx_namespace, "uid-1000", "id")
    # A name may follow each id: CRI-O adds an entry for a uid and gid the image's
    # /etc/passwd and /etc/group lack (utils/utils.go GeneratePasswd, GenerateGroup:
    # "1000:x:1000:..."), containerd does not.
    require(re.match(r"uid=1000(\([^)]*\))? gid=1000(\([^)]*\))?( |$)", out.stdout),
            not_enforced(f"id printed {out.stdout!r}"))
