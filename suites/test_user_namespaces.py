"""User namespaces beyond one pod: two pods with hostUsers: false get disjoint host id
ranges (the kubelet allocates each pod its userNamespaces.idsPerPod ids, 65536 by
default, KEP-127), and the API fields a version does not serve are said so.
"""
from __future__ import annotations

import json

import pytest

from secctx import report
from secctx.core.categories import not_available, not_enforced
from secctx.observe import parse_id_map
from secctx.oracle import expect
from secctx.run import runner
from secctx.verdict import require

pytestmark = pytest.mark.e2e

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
UPSTREAM = "https://github.com/kubernetes/kubernetes/blob/master/test/e2e/"


def userns_pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0, "hostUsers": False,
                     "containers": [{"name": "main", "image": "busybox:1.36", "command": SLEEPER}]}}


def id_map(secctx_suite, secctx_namespace: str, pod: str, which: str) -> list[tuple[int, int, int]]:
    out = runner.sh(secctx_suite, secctx_namespace, pod, f"cat /proc/1/{which}")
    require(out.returncode == 0, out.transcript())
    return parse_id_map(out.stdout, which)


def node_of(suite, namespace: str, pod: str) -> str:
    return suite.kube.core.read_namespaced_pod(pod, namespace).spec.node_name


def host_ranges(maps: list[list[tuple[int, int, int]]]) -> list[range]:
    return [range(outside, outside + count) for m in maps for _, outside, count in m]


def overlapping(ranges: list[range]) -> list[tuple[range, range]]:
    return [(a, b) for i, a in enumerate(ranges) for b in ranges[i + 1:]
            if a.start < b.stop and b.start < a.stop]


def test_two_pods_with_hostUsers_false_get_disjoint_host_ids(secctx_suite, secctx_namespace):
    report.label_test("User namespaces", "hostUsers: false", "two pods",
                      secctx_suite.kubernetes_version, "critical", [(
                          "[sig-node] Security Context When creating a pod in the host user "
                          "namespace when hostUsers is false should mount all volumes with proper "
                          "permissions with hostUsers=false [LinuxOnly]",
                          UPSTREAM + "common/node/security_context.go")],
                      title="two pods with hostUsers: false: each its own idsPerPod host ids, "
                            "the two ranges disjoint")
    require(secctx_suite.env.supports("user_namespaces"), "the node reports no user namespace support")
    for name in ("userns-a", "userns-b"):
        runner.start_pod(secctx_suite, secctx_namespace, userns_pod(name))
    for which in ("uid_map", "gid_map"):
        maps = [id_map(secctx_suite, secctx_namespace, p, which) for p in ("userns-a", "userns-b")]
        report.attach_text(which, "\n".join(f"{p}: {m}" for p, m in zip(("a", "b"), maps)))
        kinds = [expect.classify_id_map(m) for m in maps]
        wanted = [expect.pod_range(secctx_suite.env.on(node_of(secctx_suite, secctx_namespace, p)).userns_ids_per_pod)
                  for p in ("userns-a", "userns-b")]
        require(kinds == wanted, not_enforced(f"{which}: {maps} ({kinds})"))
        clash = overlapping(host_ranges(maps))
        require(not clash, not_enforced(f"{which}: the pods share host ids {clash}"))


def test_container_ulimits_is_served_or_said_not_available(secctx_suite):
    """Upstream has no ContainerUlimits feature gate in v1.34-v1.37 (pkg/features): the
    API serves no ulimits field. Should a version serve one, this fails: write its case."""
    report.label_test("Ulimits", "securityContext ulimits (ContainerUlimits)", "API field",
                      secctx_suite.kubernetes_version,
                      title="the ulimits field: served by the API server, or not available")
    api = secctx_suite.kube.api
    method, url, headers, _, _ = api.param_serialize("GET", "/openapi/v3/api/v1",
                                                     auth_settings=["BearerToken"])
    response = api.call_api(method, url, headers)
    response.read()
    schema = json.loads(response.data)
    served = [name for name in ("io.k8s.api.core.v1.SecurityContext", "io.k8s.api.core.v1.Container")
              if "ulimits" in schema["components"]["schemas"][name]["properties"]]
    if not served:
        pytest.skip(not_available(secctx_suite.kubernetes_version, "the API serves no ulimits field in "
                                  "Container or SecurityContext: ContainerUlimits is no feature gate "
                                  "of this version"))
    pytest.fail(f"{served} serve ulimits: the suite has no case for them yet", pytrace=False)
