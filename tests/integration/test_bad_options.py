"""Every option of the suite is checked before anything starts: an option that names
something missing, or two that cannot go together, end the run at once with one
INFRASTRUCTURE line (cause and fix). Each test runs the real suite as a user would;
none needs a cluster."""
from __future__ import annotations

import pytest

from .robust_helpers import run_pytest, unreachable_kubeconfig


@pytest.fixture
def kubeconfig(tmp_path):
    return unreachable_kubeconfig(tmp_path / "kubeconfig")


def bad_options(tmp_path, kubeconfig):
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a-file.yaml"
    a_file.write_text("x: 1\n")
    existing = ("--secctx-existing-cluster", "--kubeconfig", str(kubeconfig))
    return {
        "cases-dir missing": (("--secctx-cases-dir", "/no/such/dir"),
                              "--secctx-cases-dir /no/such/dir is not a directory (it does not exist)"),
        "cases-dir is a file": (("--secctx-cases-dir", str(a_file)), "(it is a file)"),
        "cases-dir empty": (("--secctx-cases-dir", str(empty)),
                            f"--secctx-cases-dir {empty} holds no case files (*.yaml)"),
        "image-map missing": (("--secctx-image-map", "/no/such/map.yaml"),
                              "--secctx-image-map /no/such/map.yaml is not a file"),
        "existing without kubeconfig": (("--secctx-existing-cluster",),
                                        "--secctx-existing-cluster needs --kubeconfig PATH"),
        "existing with version": ((*existing, "--secctx-kubernetes-version", "v1.36.3"),
                                  "--secctx-kubernetes-version cannot go with --secctx-existing-cluster"),
        "existing with kind image": ((*existing, "--kind-image", "kindest/node:v1.37.0"),
                                     "--kind-image cannot go with --secctx-existing-cluster"),
        "existing with keep-cluster": ((*existing, "--keep-cluster"),
                                       "--keep-cluster cannot go with --secctx-existing-cluster"),
        "existing with rebuild": ((*existing, "--secctx-rebuild"),
                                  "--secctx-rebuild cannot go with --secctx-existing-cluster"),
        "kube-context without existing": (("--secctx-kube-context", "prod"),
                                          "--secctx-kube-context needs --secctx-existing-cluster"),
        "compare-to missing": (("--secctx-compare-to", "/no/such/observations.json"),
                               "--secctx-compare-to /no/such/observations.json"),
        "compare-to not observations": (("--secctx-compare-to", str(a_file)), f"--secctx-compare-to {a_file}"),
    }


OPTIONS = ["cases-dir missing", "cases-dir is a file", "cases-dir empty", "image-map missing",
           "existing without kubeconfig", "existing with version", "existing with kind image",
           "existing with keep-cluster", "existing with rebuild", "kube-context without existing",
           "compare-to missing", "compare-to not observations"]


@pytest.mark.parametrize("problem", OPTIONS)
def test_bad_option_ends_the_run_at_once_with_one_line(problem, tmp_path, kubeconfig):
    args, needle = bad_options(tmp_path, kubeconfig)[problem]
    run = run_pytest("suites", *args, log=tmp_path / "run.log", timeout=60)
    lines = [ln for ln in run.output.splitlines() if "INFRASTRUCTURE: " in ln]
    assert len(lines) == 1, run.output[-3000:]
    assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert run.returncode == 4, run.output[-3000:]  # pytest's usage error: nothing ran
    assert "Traceback" not in run.output and "collected" not in run.output
    assert run.seconds < 30
