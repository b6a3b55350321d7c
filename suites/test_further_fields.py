"""Security-context fields beyond the recipe, as the upstream node e2e tests
check them: sysctls, container-over-pod precedence, privileged containers,
and the paths the default procMount masks or makes read-only.
"""
from __future__ import annotations

import pytest

from secctx import report
from secctx.core import caps
from secctx.core.categories import not_enforced
from secctx.kube import Terminal
from secctx.observe import parse_proc_status
from secctx.oracle import expect
from secctx.run import runner
from secctx.verdict import require

pytestmark = pytest.mark.e2e

UPSTREAM = "https://github.com/kubernetes/kubernetes/blob/master/test/e2e/"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def pod(name: str, pod_sc: dict | None = None, container_sc: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "securityContext": pod_sc or {},
                     "containers": [{"name": "main", "image": "busybox:1.36", "command": SLEEPER,
                                     "securityContext": container_sc or {}}]}}


def pid1_status(secctx_suite, secctx_namespace, name):
    out = runner.sh(secctx_suite, secctx_namespace, name, "cat /proc/1/status")
    require(out.returncode == 0, out.transcript())
    return parse_proc_status(out.stdout)


def test_safe_sysctl_is_set_in_the_pods_namespace(secctx_suite, secctx_namespace):
    report.label_test("Sysctls", "securityContext.sysctls (safe)", "kernel.shm_rmid_forced=1",
                      secctx_suite.kubernetes_version, upstream=[(
                          "[sig-node] Sysctls [LinuxOnly] should support sysctls",
                          UPSTREAM + "common/node/sysctl.go")],
                      title="safe sysctl kernel.shm_rmid_forced=1 is set in the pod: it reads 1")
    runner.start_pod(secctx_suite, secctx_namespace, pod("safe-sysctl", {"sysctls": [
        {"name": "kernel.shm_rmid_forced", "value": "1"}]}))
    out = runner.sh(secctx_suite, secctx_namespace, "safe-sysctl", "cat /proc/sys/kernel/shm_rmid_forced")
    require(out.stdout.strip() == "1", not_enforced(f"kernel.shm_rmid_forced is {out.stdout!r}"))


def test_unsafe_sysctl_is_refused_with_SysctlForbidden(secctx_suite, secctx_namespace):
    report.label_test("Sysctls", "securityContext.sysctls (unsafe)", "kernel.msgmax",
                      secctx_suite.kubernetes_version, upstream=[(
                          "[sig-node] Sysctls [LinuxOnly] should not launch unsafe, but not "
                          "explicitly enabled sysctls on the node", UPSTREAM + "common/node/sysctl.go")],
                      title="unsafe sysctl kernel.msgmax is refused: reason SysctlForbidden")
    with pytest.raises(Terminal) as refused:
        runner.start_pod(secctx_suite, secctx_namespace, pod("unsafe-sysctl", {"sysctls": [
            {"name": "kernel.msgmax", "value": "65536"}]}))
    report.attach_text("refusal", str(refused.value))
    require(refused.value.reason == "SysctlForbidden", not_enforced(f"{refused.value}"))
    require("kernel.msgmax" in str(refused.value),
            not_enforced(f"the refusal does not name kernel.msgmax: {refused.value}"))


def test_container_runAsUser_overrides_pod_runAsUser(secctx_suite, secctx_namespace):
    report.label_test("Run as non-root", "runAsUser (container over pod)", "precedence",
                      secctx_suite.kubernetes_version, "critical", [(
                          "[sig-node] Security Context should support container.SecurityContext."
                          "RunAsUser [LinuxOnly]", UPSTREAM + "node/security_context.go")],
                      title="runAsUser 2000 of the container overrides the pod's 1000: "
                            "the process runs as 2000:3000")
    runner.start_pod(secctx_suite, secctx_namespace, pod("override", {"runAsUser": 1000, "runAsGroup": 3000},
                                           {"runAsUser": 2000}))
    status = pid1_status(secctx_suite, secctx_namespace, "override")
    require((status.euid, status.egid) == (2000, 3000),
            not_enforced(f"PID 1 runs as {status.euid}:{status.egid}, expected 2000:3000"))
    out = runner.sh(secctx_suite, secctx_namespace, "override", "id -u")
    require(out.stdout.strip() == "2000", not_enforced(f"exec'd id -u is {out.stdout!r}"))


def test_privileged_container_gets_every_grantable_capability_and_no_seccomp(secctx_suite, secctx_namespace):
    report.label_test("Privileged", "privileged: true", "privileged container",
                      secctx_suite.kubernetes_version, "critical", [(
                          "[sig-node] PrivilegedPod [NodeConformance] should enable privileged "
                          "commands [LinuxOnly]", UPSTREAM + "common/node/privileged.go")],
                      title="privileged: true gives every capability the node grants "
                            "(CapEff = CapBnd) and no seccomp filter")
    # A pod-level RuntimeDefault profile does not confine a privileged container.
    runner.start_pod(secctx_suite, secctx_namespace,
                     pod("privileged", {"seccompProfile": {"type": "RuntimeDefault"}}, {"privileged": True}))
    status = pid1_status(secctx_suite, secctx_namespace, "privileged")
    grantable = secctx_suite.env.grantable_caps
    report.attach_text("capabilities", caps.table({"CapEff": status.cap_eff, "CapBnd": status.cap_bnd,
                                                   "node can grant": grantable}))
    require(status.cap_bnd == grantable,
            not_enforced(f"CapBnd {caps.to_hex(status.cap_bnd)}, node grants {caps.to_hex(grantable)}"))
    require(status.cap_eff == grantable, not_enforced(f"CapEff {caps.to_hex(status.cap_eff)}"))
    require(status.seccomp == 0, not_enforced(f"privileged container has Seccomp {status.seccomp}"))


# The kubelet's default masked paths (the oracle's home of the rule); those the kernel has
# are covered.
MASKED_PATHS = expect.MASKED_PATHS
MASK_PROBE = (
    "printf 'timer_list_bytes=%s\\n' $(cat /proc/timer_list 2>/dev/null | wc -c); "
    "if (echo 1 > /proc/sys/kernel/shm_rmid_forced) 2>/tmp/err; then echo proc_sys=writable; "
    "else echo \"proc_sys=$(cat /tmp/err)\"; fi; "
    # Which masked paths exist here: runc covers each with /dev/null (files) or an empty
    # read-only tmpfs (directories), which shows as a mount on that very path.
    "for p in " + " ".join(MASKED_PATHS) + "; do test -e $p || continue; echo exists=$p; "
    # What is left of its content: a mask shows none (a mount alone could be the real path).
    "if [ -d $p ]; then n=$(ls -A $p | wc -l); else n=$(head -c 64 $p 2>/dev/null | wc -c); fi; "
    "echo content=$p=$n; done; "
    "cat /proc/1/mounts")


def _mask_facts(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _masked(out: str) -> tuple[list[str], list[str]]:
    """The masked paths that exist in the container, and those among them with a mount
    of their own (what masking leaves; reading a path such as /proc/kcore without
    CAP_SYS_RAWIO gives 0 bytes whether masked or not, so its content proves nothing)."""
    existing = [line.split("=", 1)[1] for line in out.splitlines() if line.startswith("exists=")]
    mounted = {line.split()[1] for line in out.splitlines() if line.count(" ") >= 5}
    return existing, [p for p in existing if p in mounted]


def _content(out: str) -> dict[str, int]:
    """Entries (directories) or bytes (files) each existing masked path still shows."""
    return {path: int(n) for path, n in (line.split("=", 2)[1:] for line in out.splitlines()
                                          if line.startswith("content="))}


def test_default_procMount_masks_kernel_paths_and_makes_proc_sys_read_only(secctx_suite, secctx_namespace):
    report.label_test("Masked paths", "procMount: Default", "masked and read-only paths",
                      secctx_suite.kubernetes_version, "critical",
                      title="procMount Default masks every default masked path the kernel has "
                            "(/proc/kcore, /proc/timer_list, /sys/firmware, ...) and makes /proc/sys "
                            "read-only")
    runner.start_pod(secctx_suite, secctx_namespace, pod("masked", container_sc={"runAsUser": 0}))
    out = runner.sh(secctx_suite, secctx_namespace, "masked", MASK_PROBE).stdout
    facts, (existing, covered) = _mask_facts(out), _masked(out)
    require(existing, not_enforced("none of the default masked paths exists: nothing to check"))
    require(covered == existing, not_enforced(
        f"masked paths without a mask: {sorted(set(existing) - set(covered))}"))
    shown = {p: n for p, n in _content(out).items() if n}
    require(not shown, not_enforced(f"masked paths that still show content: {shown}"))
    require(facts["timer_list_bytes"] == "0", not_enforced(f"/proc/timer_list is readable: {facts}"))
    require("Read-only file system" in facts["proc_sys"], not_enforced(f"/proc/sys: {facts}"))


def test_privileged_container_has_no_masked_or_read_only_proc_paths(secctx_suite, secctx_namespace):
    report.label_test("Masked paths", "privileged: true", "no masked paths when privileged",
                      secctx_suite.kubernetes_version, "normal",
                      title="privileged: true leaves /proc/timer_list readable and /proc/sys writable")
    runner.start_pod(secctx_suite, secctx_namespace, pod("unmasked", container_sc={"privileged": True}))
    out = runner.sh(secctx_suite, secctx_namespace, "unmasked", MASK_PROBE).stdout
    facts, (_, covered) = _mask_facts(out), _masked(out)
    require(not covered, f"masked although privileged: {covered}")
    require(int(facts["timer_list_bytes"]) > 0, f"/proc/timer_list still masked: {facts}")
    require(facts["proc_sys"] == "writable", f"/proc/sys still read-only: {facts}")
