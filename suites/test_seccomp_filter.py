"""Seccomp by the filter itself: what the kernel would answer, rule by rule.

The `Seccomp: 2` line says a filter is there, and one refused `unshare -U` says it
refuses that one call; a filter that refuses only unshare passes both. Here a
privileged hostPID pod on the same node reads the container's filters from the kernel
(images/escalation seccomp-filter: PTRACE_SECCOMP_GET_FILTER), and secctx.observe.seccomp runs
them over the system calls the profile decides: what it allows must be allowed, what it
refuses refused with its errno. Independent of what the workload image contains.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from secctx import report
from secctx.cases import load_cases
from secctx.core import caps
from secctx.core.categories import not_enforced
from secctx.core.paths import CASES
from secctx.observe import seccomp
from secctx.oracle import expect
from secctx.run import runner
from secctx.verdict import Check, require

pytestmark = pytest.mark.e2e

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
LOCALHOST = "profiles/allowlist-probe-profile.json"  # installed for seccomp-allowlist-probe
READER = "filter-reader"

# The container's processes, by the container ID in their cgroup, with their stat line.
# Only those outside the host's PID namespace (this reader is hostPID; the subject pod is
# not): CRI-O's monitor, conmon, runs in the host's, in a cgroup named after the container
# too, and it starts first (crio-conmon-<id>.scope beside crio-<id>.scope: CRI-O
# internal/config/cgmgr systemd SystemdManager.MoveConmonToCgroup); read as the
# container's, its lack of any filter let every call through (mkdir, mkdirat: ALLOW).
_FIND = r"""
host=$(readlink /proc/self/ns/pid)
for p in /proc/[0-9]*; do
  case "$(cat "$p/cgroup" 2>/dev/null)" in
    *"$1"*) [ "$(readlink "$p/ns/pid" 2>/dev/null)" != "$host" ] &&
            read -r line < "$p/stat" 2>/dev/null && echo "${p#/proc/} $line" ;;
  esac
done
"""

SUBJECTS = {
    "RuntimeDefault, uid 1000": ({"seccompProfile": {"type": "RuntimeDefault"}},
                                 {"runAsUser": 1000}),
    "RuntimeDefault, root with SYS_ADMIN added": (
        {"seccompProfile": {"type": "RuntimeDefault"}}, {"capabilities": {"add": ["SYS_ADMIN"]}}),
    "Localhost allow-list profile": (
        {}, {"seccompProfile": {"type": "Localhost", "localhostProfile": LOCALHOST}}),
}


def localhost_profile() -> Path:
    """The profile file the session installs on every node for seccomp-allowlist-probe."""
    case = next(c for c in load_cases([CASES])[0] if c.name == "seccomp-allowlist-probe")
    return case.seccomp_profiles[LOCALHOST]


def _pod(name: str, pod_sc: dict, container_sc: dict, node: str | None = None,
         reader: bool = False) -> dict:
    spec = {"terminationGracePeriodSeconds": 0, "securityContext": pod_sc,
            "containers": [{"name": "main", "image": "secctx/escalation:1" if reader else
                            "busybox:1.36", "command": SLEEPER, "securityContext": container_sc}]}
    if reader:
        spec |= {"hostPID": True, "nodeName": node, "automountServiceAccountToken": False}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def main_process(stdout: str) -> int | None:
    """The PID that started first among the listed processes (field 22 of stat: start time)."""
    started = {}
    for line in stdout.splitlines():
        pid, _, stat = line.partition(" ")
        fields = stat.rpartition(")")[2].split()
        if pid.isdigit() and len(fields) > 19:
            started[int(pid)] = int(fields[19])
    return min(started, key=lambda p: (started[p], p)) if started else None


def filters_of(secctx_suite, namespace: str, pod) -> list[bytes]:
    """The kernel's filters of the pod's main container process, read from its node."""
    node = pod.spec.node_name
    arch = secctx_suite.kube.core.read_node(node).status.node_info.architecture
    if arch != "amd64":
        pytest.skip(f"node {node} is {arch}: the oracle's syscall numbers are x86_64's")
    cid = pod.status.container_statuses[0].container_id.partition("://")[2]
    runner.start_pod(secctx_suite, namespace, _pod(READER, {}, {"privileged": True}, node, True))
    found = runner.sh(secctx_suite, namespace, READER, _FIND.replace("$1", cid))
    pid = main_process(found.stdout)
    require(pid is not None, f"no process of container {cid} on node {node}:\n{found.transcript()}")
    out = runner.sh(secctx_suite, namespace, READER, f"seccomp-filter {pid}")
    if "not found" in out.stdout + out.stderr:
        pytest.skip("the escalation image has no seccomp-filter (an image older than this suite)")
    filters = seccomp.parse_filters(out.stdout)
    require(filters is not None, f"seccomp-filter {pid} failed:\n{out.transcript()}")
    report.attach_text("filters (hex, most recent first)", out.stdout)
    return filters


def filter_checks(filters: list[bytes], wants: dict) -> list[Check]:
    return [Check(f"{call.label()} under the filter", str(answer),
                  str(seccomp.decide(filters, call)), why)
            for call, (answer, why) in wants.items()]


@pytest.mark.parametrize("subject", list(SUBJECTS))
def test_the_kernels_filter_answers_each_call_as_the_profile_says(subject, secctx_suite,
                                                                  secctx_namespace):
    report.label_test("Seccomp", "seccompProfile", f"the filter, rule by rule: {subject}",
                      secctx_suite.kubernetes_version, "critical",
                      title=f"{subject}: the kernel's filter allows what the profile allows and "
                            "refuses the rest with the profile's errno")
    pod_sc, container_sc = SUBJECTS[subject]
    pod = runner.start_pod(secctx_suite, secctx_namespace, _pod("subject", pod_sc, container_sc))
    env = secctx_suite.env.on(pod.spec.node_name)
    facts = env.node_facts()
    # The rule-by-rule model (secctx.observe.seccomp.runtime_default) is containerd's default
    # profile; CRI-O's is containers/common's (pkg/seccomp/default_linux.go) with its own
    # list and errno (ENOSYS), which no model here describes.
    if facts.cri != expect.CONTAINERD and "RuntimeDefault" in subject:
        pytest.skip(f"the RuntimeDefault model is containerd's default profile, and the node's "
                    f"CRI is {facts.cri}: not asserted rule by rule")
    spec = _pod("subject", pod_sc, container_sc)["spec"]
    if "Localhost" in subject:
        wants = seccomp.localhost(json.loads(localhost_profile().read_text()))
    else:
        bounding = expect.expect_process(spec, "main", facts).cap_bnd
        wants = seccomp.runtime_default(caps.decode(bounding))
    checks = filter_checks(filters_of(secctx_suite, secctx_namespace, pod), wants)
    report.record_checks(checks)
    bad = [c for c in checks if not c.ok]
    require(not bad, not_enforced("; ".join(c.line() for c in bad)))
