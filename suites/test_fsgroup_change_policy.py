"""fsGroupChangePolicy on a `local` PersistentVolume (a volume whose ownership
the kubelet manages, unlike hostPath). The volume already holds a file of
group 0. OnRootMismatch skips the recursive walk when the volume's root
already has the fsGroup (and setgid, group rw); Always walks every time.
"""
from __future__ import annotations

import pytest

from secctx import report
from secctx.core.categories import not_enforced
from secctx.run import runner
from secctx.run.session import PREPARED_CLASS, PREPARED_FSGROUP
from secctx.verdict import require

pytestmark = pytest.mark.e2e

UPSTREAM = [("[sig-storage] ... fsgroupchangepolicy", "https://github.com/kubernetes/kubernetes/"
             "blob/master/test/e2e/storage/testsuites/fsgroupchangepolicy.go")]


@pytest.mark.parametrize("policy, volume, preexisting_gid, why", [
    ("OnRootMismatch", "root-matches", 0,
     "the root already has group 2000 and setgid: the kubelet skips the recursive change"),
    ("OnRootMismatch", "root-differs", PREPARED_FSGROUP,
     "the root has group 0: the kubelet changes the whole volume"),
    ("Always", "root-matches-always", PREPARED_FSGROUP,
     "Always changes the whole volume on every mount"),
])
def test_fsGroupChangePolicy_on_a_local_volume(policy, volume, preexisting_gid, why,
                                               secctx_suite, secctx_namespace):
    report.label_test("fsGroup", "fsGroupChangePolicy", f"{policy} ({volume})",
                      secctx_suite.kubernetes_version, "critical", UPSTREAM,
                      title=f"fsGroupChangePolicy {policy} on a local volume ({volume}): /data gets "
                            f"group {PREPARED_FSGROUP} with setgid, the file in it group {preexisting_gid}")
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": PREPARED_CLASS,
                      "volumeName": secctx_suite.prepared_pvs[volume],
                      "resources": {"requests": {"storage": "1Gi"}}}}
    with report.step(f"claim PV {secctx_suite.prepared_pvs[volume]} (root {volume}, holds a file of group 0)"):
        secctx_suite.kube.apply(claim, secctx_namespace)
    runner.start_pod(secctx_suite, secctx_namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "policy"},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "securityContext": {"runAsUser": 1000, "runAsGroup": 1000,
                                     "fsGroup": PREPARED_FSGROUP, "fsGroupChangePolicy": policy},
                 "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}})
    out = runner.sh(secctx_suite, secctx_namespace, "policy", "stat -c '%g %A' /data /data/preexisting")
    (root_gid, root_mode), (file_gid, _) = (line.split() for line in out.stdout.splitlines())
    require(int(root_gid) == PREPARED_FSGROUP and root_mode[6] == "s",
            not_enforced(f"/data is group {root_gid} {root_mode}, expected {PREPARED_FSGROUP} with setgid"))
    require(int(file_gid) == preexisting_gid, not_enforced(
        f"{policy}: /data/preexisting has group {file_gid}, expected {preexisting_gid}: {why}"))
