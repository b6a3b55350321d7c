"""Every check that a runtime could fool must turn red when the runtime lies.

The lies are made for real: runc-liar (tests/integration/liar.py, docs/lying-runtime.md)
sits between containerd and runc in the `secctx-robust` node and edits each new
container's OCI config in one chosen way. The real suite then runs one case under
that lie and must fail with the check that catches it; honest again, the same case
passes (the lie, not the liar, made it red).
"""
from __future__ import annotations

import re

import pytest

from . import liar
from .robust_helpers import CLUSTER, run_pytest

pytestmark = pytest.mark.e2e

SUITE = ("suites", "--cluster-name", CLUSTER, "--keep-cluster")

# lie -> (case, failing check lines that must appear) (issue 14, items 9-13; issue 23)
LIES = {
    "rw-volumes": ("secure-app", [r"FAIL /etc/app/config mounted read-only: expected True, observed False",
                                  r"FAIL /etc/app/config writable: expected False, observed True"]),
    "no-seccomp": ("hardened-pod", [r"FAIL unshare\(CLONE_NEWUSER\) refused: expected True, observed False"]),
    "saved-uid-root": ("hardened-pod", [r"FAIL uid: expected \(1000, 1000, 1000, 1000\), "
                                        r"observed \(0, 1000, 1000, 1000\)"]),
    "no-nnp": ("escalation-denied", [r"FAIL NoNewPrivs: expected 1, observed 0",
                                     r"FAIL `suid-id` output contains 'euid=1000'"]),
    "crash-identity": ("secure-pod", [r"FAIL twin: uid: expected \(1000, 1000, 1000, 1000\), "
                                      r"observed \(1001, 1001, 1001, 1001\)"]),
    # issue 23, items 11 and 9
    "own-volumes": ("hardened-pod", [r"FAIL /tmp owner: expected 0, observed 1000",
                                     r"FAIL /tmp mode: expected '2777', observed '700'"]),
    "file-modes": ("volume-file-modes", [r"FAIL /cfg/a\.conf mode: expected '440', observed '644'",
                                         r"FAIL /sec/key mode: expected '640', observed '644'"]),
    # issue 23, item 12: Seccomp 2 and a refused unshare -U pass; the filter itself does not
    # (a suite test, not a recipe case: its selection is a test name)
    "unshare-only": ("test_the_kernels_filter_answers_each_call_as_the_profile_says and uid",
                     [r"FAIL mount under the filter: expected 'ERRNO\(EPERM\)', observed 'ALLOW'",
                      r"FAIL keyctl under the filter: expected 'ERRNO\(EPERM\)', observed 'ALLOW'"]),
}


@pytest.fixture(scope="module")
def lying_node(robust):
    liar.install(robust.name)
    try:
        yield robust
    finally:
        liar.honest(robust.name)
        liar.uninstall(robust.name)


@pytest.mark.parametrize("word", list(LIES))
def test_the_check_that_catches_the_lie_turns_red(word, lying_node, clean, tmp_path):
    case, lines = LIES[word]
    selection = case if case.startswith("test_") else \
        f"test_recipe_case and not test_case_file_is_valid and {case}"
    liar.lie(lying_node.name, word, namespace="secctx-")
    try:
        lied = run_pytest(*SUITE, "-k", selection, log=tmp_path / "lie.log")
    finally:
        liar.honest(lying_node.name)
    print(f"\n{word} on {case}:\n" + "\n".join(
        ln for ln in lied.output.splitlines() if ln.lstrip().startswith("FAIL")))
    assert lied.returncode == 1, lied.output[-3000:]
    for line in lines:
        assert re.search(line, lied.output), f"{line!r} not in the output:\n{lied.output[-4000:]}"
    assert "NOT ENFORCED" in lied.output
    honest = run_pytest(*SUITE, "-k", selection, log=tmp_path / "honest.log")
    assert honest.returncode == 0, honest.output[-3000:]
