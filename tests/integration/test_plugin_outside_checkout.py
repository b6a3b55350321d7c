"""A platform team's repository holds only case files: `pip install` the suite,
then `pytest --cases-dir cases/`. Done here for real: the package is built and
installed (not editable) into a temporary directory, and pytest runs from another
temporary directory with no test file, no conftest and no config of its own."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .robust_helpers import ONE_RUNTIME, ROOT, nested_env, write_case

TEAM_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "team-app"},
            "spec": {"terminationGracePeriodSeconds": 0,
                     "securityContext": {"runAsUser": 4321, "runAsGroup": 4321},
                     "containers": [{"name": "app", "image": "busybox:1.36",
                                     "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package as `pip install` puts it: built from this checkout into a site dir."""
    site = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--target", str(site), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (site / "secctx" / "suites" / "test_recipe_cases.py").is_file()
    assert (site / "secctx" / "fixtures" / "cases" / "secure-pod.yaml").is_file()
    return site


@pytest.fixture
def team_repo(tmp_path) -> Path:
    repo = tmp_path / "team"
    (repo / "manifests").mkdir(parents=True)
    (repo / "manifests" / "team-app.yaml").write_text(yaml.safe_dump(TEAM_POD))
    write_case(repo / "cases", "team-app", Path("../manifests/team-app.yaml"), "team-app", "app")
    return repo


def run_in(repo: Path, site: Path, *args: str, timeout: float = 300):
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args,
                           *ONE_RUNTIME],
                          cwd=repo, capture_output=True, text=True, timeout=timeout,
                          env=nested_env(PYTHONPATH=str(site)))
    return proc, time.monotonic() - t0


def test_installed_plugin_collects_the_packaged_suite_with_the_team_cases(installed, team_repo):
    proc, _ = run_in(team_repo, installed, "--cases-dir", "cases", "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "test_recipe_case[team-app]" in out and "test_recipe_case[secure-pod]" in out
    assert "test_case_file_is_valid[team-app.yaml]" in out
    # The installed copy, not this checkout, is what ran.
    assert str(installed) in out or "site/secctx/suites" in out, out[:2000]


@pytest.mark.e2e
def test_installed_plugin_runs_a_team_case_on_a_real_cluster(installed, team_repo, clean, tmp_path):
    proc, seconds = run_in(team_repo, installed, "--cases-dir", "cases", "--existing-cluster",
                           "--kubeconfig", str(clean.kubeconfig), "--mode", clean.mode,
                           "-k", "team-app", "-rA")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r"\b2 passed\b", out), out[-2000:]  # the file is valid, the case holds
    print(f"\nteam repository run: {seconds:.1f}s")
