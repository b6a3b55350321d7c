"""The lying runtime on a CRI-O node: the suite turns red there too (issue 25).

On CRI-O the liar is not wrapped around the node's runc: it is a runtime handler of its
own, as an operator would add one, a `[crio.runtime.runtimes.secctx-liar]` drop-in and
the RuntimeClass `secctx-liar` (liar.install(..., handler=liar.HANDLER)), and the suite
runs its cases under that RuntimeClass. The read-only-volume (rw-volumes) and
no-new-privileges (no-nnp) lies must fail the same checks as on containerd
(test_lying_runtime.LIES), honest again the same cases pass.

Nightly: the CRI-O node image is built offline (a cold build is ~20 minutes of Go and
Debian on 2 cores, docs/cri-o.md); warm, the cluster is up in ~1.5 min and each lie
(lied run and honest run) takes ~1.5 min. The cluster is this module's own
(`secctx-crio-liar`, or SECCTX_CRIO_LIAR_CLUSTER); one that was there before is kept.
"""
from __future__ import annotations

import os
import re

import pytest

from . import liar
from .robust_helpers import cli, kind_clusters, run_pytest
from .test_lying_runtime import LIES

pytestmark = [pytest.mark.e2e, pytest.mark.nightly]

CLUSTER = os.environ.get("SECCTX_CRIO_LIAR_CLUSTER", "secctx-crio-liar")
CRIO = ("--secctx-cri", "crio", "--secctx-mode", "offline")
SUITE = ("suites", "--cluster-name", CLUSTER, "--keep-cluster", *CRIO,
         "--secctx-runtime-class", liar.HANDLER, "-rA")
CRIO_LIES = ("rw-volumes", "no-nnp")
UP = 3600  # a cold CRI-O node image: CRI-O's Go build and the Debian rootfs, then the cluster


@pytest.fixture(scope="module")
def crio_liar():
    existed = CLUSTER in kind_clusters()
    up = cli("cluster-up", "--cluster-name", CLUSTER, "--cri", "crio", "--mode", "offline",
             timeout=UP)
    if up.returncode != 0:
        pytest.fail(f"INFRASTRUCTURE: cluster-up --cri crio --cluster-name {CLUSTER} failed:\n"
                    f"{up.stderr[-3000:]}", pytrace=False)
    liar.install(CLUSTER, handler=liar.HANDLER)
    try:
        yield CLUSTER
    finally:
        liar.honest(CLUSTER)
        liar.uninstall(CLUSTER)
        if not existed:
            down = cli("cluster-down", "--cluster-name", CLUSTER, timeout=300)
            assert down.returncode == 0, down.stderr


@pytest.mark.timeout(UP + 900)
@pytest.mark.parametrize("word", CRIO_LIES)
def test_under_crio_the_check_that_catches_the_lie_turns_red(word, crio_liar, tmp_path):
    case, lines = LIES[word]
    selection = f"test_recipe_case and not test_case_file_is_valid and {case}"
    liar.lie(crio_liar, word, namespace="secctx-")
    try:
        lied = run_pytest(*SUITE, "-k", selection, log=tmp_path / "lie.log", timeout=600)
    finally:
        liar.honest(crio_liar)
    print(f"\n{word} on {case}@{liar.HANDLER} (CRI-O):\n" + "\n".join(
        ln for ln in lied.output.splitlines() if ln.lstrip().startswith("FAIL")))
    assert lied.returncode == 1, lied.output[-3000:]
    assert re.search(rf"FAILED \S+\[{re.escape(case)}@{liar.HANDLER}\]", lied.output), \
        lied.output[-3000:]
    assert "cri-o://" in lied.output, "the run did not run on a CRI-O node"
    for line in lines:
        assert re.search(line, lied.output), f"{line!r} not in the output:\n{lied.output[-4000:]}"
    assert "NOT ENFORCED" in lied.output
    assert re.search(rf"{word} secctx-{re.escape(case)}-", liar.log(crio_liar)), \
        "the liar logged no change to the case's pod: the pod did not run under it"
    honest = run_pytest(*SUITE, "-k", selection, log=tmp_path / "honest.log", timeout=600)
    assert honest.returncode == 0, honest.output[-3000:]
    assert re.search(rf"PASSED \S+\[{re.escape(case)}@{liar.HANDLER}\]", honest.output), \
        honest.output[-3000:]
