"""The VM node in CI (issue 26): a worker with its own kernel (cgroup v2, AppArmor
enforcing) joins `secctx-robust` (--secctx-vm-node apparmor), the AppArmor, seccomp,
read-only, capabilities and user cases run on it green, and a runtime that drops
the AppArmor profile (runc-liar no-apparmor, in the VM) turns the AppArmor cases red.

Offline clusters only: the VM's disk is built from the offline node image. The VM
goes at the end of the module (the nested runs keep the cluster, and with it the VM).
Cost: docs/vm-node.md (boot, join, per case).
"""
from __future__ import annotations

import re

import pytest

from . import liar
from .robust_helpers import CLUSTER, cli, run_pytest

pytestmark = pytest.mark.e2e

# CI: the recipe's AppArmor (annotation, field; a Localhost profile: label and denial),
# seccomp (RuntimeDefault, Localhost), read-only root, capabilities and users (a non-root
# user; root in a user namespace) on the VM's kernel, cgroup v2 and AppArmor.
# Nightly: the refusal and Unconfined forms, hardened-pod, custom-seccomp-pod (on the VM
# its refusal's words were once "cannot start a stopped process", a retry's, not the
# case's "operation not permitted": 1 of 3 runs, docs/vm-node.md) and the lying runtime.
# ("apparmor-pod" selects apparmor-pod-field too: -k substrings.)
CI_CASES = ("apparmor-pod", "apparmor-pod-field", "apparmor-localhost", "seccomp-default-pod",
            "readonly-root-pod", "minimal-capabilities-pod", "secure-pod", "userns-root")
NIGHTLY_CASES = ("apparmor-missing", "apparmor-unconfined", "hardened-pod", "custom-seccomp-pod")
# 4 cases at once (the scheduler's START_SLOTS pods starting): a case on the VM waits
# mostly on its emulated CPUs (2-5 min apply to verdict at load 14-39); 9 took 640 s
# together (docs/vm-node.md; one after another not measured).
SUITE = ("suites", "--cluster-name", CLUSTER, "--keep-cluster", "--secctx-vm-node", "apparmor",
         "--secctx-runtime-class", "default", "--secctx-case-concurrency", "4", "-rA")
UP_AND_CASES = 1800  # cold: the disk image (~2-3 min), boot and join (~2-4 min), the cases


def on_the_vm(*cases: str) -> str:
    return "test_recipe_case and vm-apparmor and (" + " or ".join(cases) + ")"


@pytest.fixture(scope="module")
def vm_cluster(robust):
    if robust.mode != "offline":
        pytest.skip(f"the VM node joins offline kind clusters only; secctx-robust is {robust.mode}")
    # Up before any test: the liar is installed on the nodes that run (the nested runs
    # reuse this VM; without it here the liar reached only the kind node, and the lied
    # run passed).
    up = cli("vm-node", "up", "--cluster-name", robust.name, timeout=UP_AND_CASES)
    assert up.returncode == 0, up.stderr[-3000:]
    print("\n" + up.stdout.strip())
    yield robust
    down = cli("vm-node", "down", "--cluster-name", robust.name, timeout=120)
    assert down.returncode == 0, down.stderr


def green_on_the_vm(cases: tuple[str, ...], log) -> None:
    run = run_pytest(*SUITE, "-k", on_the_vm(*cases), log=log, timeout=UP_AND_CASES)
    print("\n" + "\n".join(ln for ln in run.output.splitlines()
                           if "vm-node:" in ln or "@vm-apparmor" in ln))
    assert run.returncode == 0, run.output[-4000:]
    for case in cases:
        assert re.search(rf"PASSED \S+test_recipe_case\[{re.escape(case)}@vm-apparmor\]",
                         run.output), f"{case}@vm-apparmor did not pass:\n{run.output[-3000:]}"


@pytest.mark.timeout(UP_AND_CASES + 120)
def test_apparmor_is_enforced_on_the_vm_node(vm_cluster, clean, tmp_path):
    green_on_the_vm(CI_CASES, tmp_path / "vm.log")


@pytest.mark.nightly
@pytest.mark.timeout(UP_AND_CASES + 120)
def test_the_nightly_cases_on_the_vm_node_are_green(vm_cluster, clean, tmp_path):
    green_on_the_vm(NIGHTLY_CASES, tmp_path / "vm.log")


@pytest.mark.nightly
@pytest.mark.timeout(3 * UP_AND_CASES)
def test_a_runtime_that_drops_the_apparmor_profile_turns_the_apparmor_cases_red(
        vm_cluster, clean, tmp_path):
    selection = on_the_vm("apparmor-pod", "apparmor-localhost")
    liar.install(vm_cluster.name)  # the kind node and the VM (its guest agent)
    try:
        liar.lie(vm_cluster.name, "no-apparmor", namespace="secctx-apparmor-")
        lied = run_pytest(*SUITE, "-k", selection, log=tmp_path / "lie.log",
                          timeout=UP_AND_CASES)
        liar.honest(vm_cluster.name)
        print("\nno-apparmor:\n" + "\n".join(ln for ln in lied.output.splitlines()
                                             if ln.lstrip().startswith("FAIL")))
        assert lied.returncode == 1, lied.output[-3000:]
        fails = [ln.strip() for ln in lied.output.splitlines() if ln.lstrip().startswith("FAIL")]
        for case in ("apparmor-pod", "apparmor-pod-field", "apparmor-localhost"):
            assert re.search(rf"FAILED \S+\[{case}@vm-apparmor\]", lied.output), case
        # the label (the process runs unconfined) and the behaviour (nothing is denied)
        assert any(ln.startswith("FAIL LSM label") and "observed 'unconfined'" in ln
                   for ln in fails), fails
        assert "FAIL `echo 1 > /proc/uptime` output contains 'Permission denied': expected " \
               "True, observed False" in "\n".join(fails), fails
        assert any(ln.startswith("FAIL `touch /etc/secctx-apparmor` exit code") for ln in fails)
        assert "NOT ENFORCED" in lied.output
        honest = run_pytest(*SUITE, "-k", selection, log=tmp_path / "honest.log",
                            timeout=UP_AND_CASES)
        assert honest.returncode == 0, honest.output[-3000:]
    finally:
        liar.honest(vm_cluster.name)
        liar.uninstall(vm_cluster.name)
