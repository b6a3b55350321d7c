"""The GitHub workflows: actionlint-clean, and shaped as the nightly/PR jobs need."""
import shutil

import pytest
import yaml

from secctx import lint

NIGHTLY = lint.WORKFLOWS / "nightly.yml"
PR = lint.WORKFLOWS / "pr.yml"


def _load(path):
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def test_actionlint_is_clean():
    if shutil.which("go") is None:
        pytest.skip(f"Go is not installed (no go on PATH): actionlint {lint.ACTIONLINT_VERSION} "
                    "is built from its Go module; install Go 1.25+")
    files = lint.workflow_files()
    assert {f.name for f in files} >= {"nightly.yml", "pr.yml"}
    proc = lint.run(files)
    assert proc.returncode == 0, f"actionlint {lint.ACTIONLINT_VERSION}:\n{proc.stdout}{proc.stderr}"


def test_nightly_runs_the_matrix_and_publishes_even_when_the_suite_fails():
    wf = _load(NIGHTLY)
    assert "schedule" in wf["on"] and "workflow_dispatch" in wf["on"]
    jobs = wf["jobs"]
    matrix = jobs["conformance"]["strategy"]
    assert matrix["fail-fast"] is False
    # minors: each run resolves its newest published patch
    assert matrix["matrix"]["kubernetes"] == ["v1.34", "v1.35", "v1.36", "v1.37"]
    steps = jobs["conformance"]["steps"]
    run = [s["run"] for s in steps if "run" in s]
    assert any(r.startswith("bash hack/run.sh --mode online --kubernetes-version") for r in run)
    # History: restored, and saved even after a failed suite.
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert "history-${{ matrix.kubernetes }}-" in uses["actions/cache/restore"]["with"]["restore-keys"]
    assert uses["actions/cache/save"]["if"].startswith("always()")
    assert uses["actions/upload-artifact"]["if"] == "always()"
    assert "!cancelled()" in jobs["report"]["if"]
    assert jobs["publish"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["publish"]["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in jobs["publish"]["steps"])


def test_pr_runs_the_project_tests_online():
    wf = _load(PR)
    assert "pull_request" in wf["on"]
    job = wf["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["env"]["SECCTX_MODE"] == "online"
    assert any(s.get("run") == "bash hack/test.sh" for s in job["steps"])


@pytest.mark.parametrize("path", [NIGHTLY, PR], ids=lambda p: p.name)
def test_actions_are_pinned_by_major_tag(path):
    for job in _load(path)["jobs"].values():
        for step in job["steps"]:
            if "uses" in step:
                ref = step["uses"].split("@", 1)
                assert len(ref) == 2 and ref[1].startswith("v") and ref[1][1:].isdigit(), step["uses"]
