"""The GitHub workflows: actionlint-clean, and shaped as the nightly/PR jobs need."""
import re
import shutil
from pathlib import Path

import pytest
import yaml

from secctx import lint

ROOT = Path(__file__).resolve().parents[2]
NIGHTLY = ROOT / lint.WORKFLOWS / "nightly.yml"
PR = ROOT / lint.WORKFLOWS / "pr.yml"


def _load(path):
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as True
    return doc


def test_actionlint_is_clean():
    if shutil.which("go") is None:
        pytest.skip(f"Go is not installed (no go on PATH): actionlint {lint.ACTIONLINT_VERSION} "
                    "is built from its Go module; install Go 1.25+")
    files = lint.workflow_files(ROOT)
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
    assert any("bash hack/run.sh --secctx-mode online --secctx-kubernetes-version" in r for r in run)
    # History: restored, and saved even after a failed suite.
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert "history-${{ matrix.kubernetes }}-" in uses["actions/cache/restore"]["with"]["restore-keys"]
    assert uses["actions/cache/save"]["if"].startswith("always()")
    assert uses["actions/upload-artifact"]["if"] == "always()"
    assert "!cancelled()" in jobs["report"]["if"]
    assert jobs["publish"]["permissions"] == {"pages": "write", "id-token": "write"}
    assert jobs["publish"]["environment"]["name"] == "github-pages"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in jobs["publish"]["steps"])


def test_nightly_runs_the_suite_and_the_lying_runtime_on_an_offline_crio_node():
    job = _load(NIGHTLY)["jobs"]["crio"]
    assert job["env"]["SECCTX_MODE"] == "offline"  # no kindest/node runs CRI-O: built here
    run = "\n".join(s.get("run", "") for s in job["steps"])
    assert '"$PY" -m secctx node-image --cri crio' in run
    assert "-m pytest suites --secctx-cri crio --secctx-mode offline" in run
    assert "tests/integration/test_crio_node.py -m nightly" in run
    liar = next(s for s in job["steps"] if "test_crio_node" in s.get("run", ""))
    assert liar["if"] == "${{ !cancelled() }}"  # also after a red suite


def test_pr_runs_the_project_tests_online():
    wf = _load(PR)
    assert "pull_request" in wf["on"]
    job = wf["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-24.04"  # the runner image pinned, as every tool
    assert job["env"]["SECCTX_MODE"] == "online"
    assert any(s.get("run") == "bash hack/test.sh" for s in job["steps"])


# `uses: OWNER/ACTION@vN`, or a full commit SHA with its release in a comment
# (`@<40 hex> # vN.M.P`), the form Dependabot and Renovate keep up to date.
PIN = re.compile(r"uses:\s*(?P<action>[\w./-]+)@(?:(?P<major>v\d+)\s*$|"
                 r"(?P<sha>[0-9a-f]{40})\s+#\s*(?P<release>v\d+(?:\.\d+)*)\s*$)")


@pytest.mark.parametrize("path", [NIGHTLY, PR], ids=lambda p: p.name)
def test_actions_are_pinned_by_major_tag_or_by_sha_with_its_release(path):
    lines = [ln for ln in path.read_text().splitlines() if re.match(r"\s*(- )?uses:", ln)]
    assert lines
    for line in lines:
        assert PIN.search(line), f"{path.name}: {line.strip()} (want @vN, or @<sha> # vN.M.P)"


def test_pin_pattern_accepts_a_sha_with_its_release_and_refuses_branches_and_bare_shas():
    sha = "0" * 39 + "1"
    assert PIN.search(f"- uses: actions/checkout@{sha} # v7.0.1")
    assert PIN.search("- uses: actions/checkout@v7")
    for bad in ("- uses: actions/checkout@main", f"- uses: actions/checkout@{sha}",
                "- uses: actions/checkout@v7.0.1", f"- uses: actions/checkout@{sha[:12]} # v7"):
        assert not PIN.search(bad), bad


def _conformance_steps():
    return _load(NIGHTLY)["jobs"]["conformance"]["steps"]


def _step(steps, name_start):
    return next(s for s in steps if s.get("name", "").startswith(name_start))


def test_nightly_baseline_moves_forward_only_on_a_green_night():
    # exit 0 only: a failed or regressed night never becomes the next night's baseline
    steps = _conformance_steps()
    for name in ("Keep tonight's observations", "Save tonight's observations"):
        condition = _step(steps, name)["if"]
        assert condition.startswith("steps.suite.outputs.status == '0'"), (name, condition)
        assert "always()" not in condition, (name, condition)
    suite = _step(steps, "Run the suite")
    assert suite["id"] == "suite" and 'echo "status=$status" >> "$GITHUB_OUTPUT"' in suite["run"]


def test_nightly_compares_with_the_pinned_or_last_green_baseline_and_fails_on_regression():
    steps = _conformance_steps()
    suite = _step(steps, "Run the suite")
    assert "--secctx-compare-to baseline/observations.json --secctx-fail-on-regression" in suite["env"]["COMPARE"]
    assert "$COMPARE" in suite["run"]
    choose = _step(steps, "Choose the baseline")
    assert choose["env"]["PINNED"] == "baselines/${{ matrix.kubernetes }}/observations.json"
    assert choose["run"].index('"$PINNED"') < choose["run"].index("elif")  # pinned first
    # the job fails with the suite's own code (7: regression), after the reports are uploaded
    last = steps[-1]
    assert last["if"] == "always() && steps.suite.outputs.status != '0'"
    assert 'exit "${STATUS:-1}"' in last["run"]
    assert steps.index(_step(steps, "Upload HTML report")) < len(steps) - 1


@pytest.mark.parametrize("path", [NIGHTLY, PR], ids=lambda p: p.name)
def test_every_tool_is_pinned_and_pip_go_and_the_build_cache_are_cached(path):
    doc = _load(path)
    kind_job = doc["jobs"]["conformance" if path == NIGHTLY else "test"]
    steps = {s.get("uses", "").split("@")[0]: s.get("with", {}) for s in kind_job["steps"]}
    assert steps["actions/setup-python"]["cache"] == "pip"
    assert steps["actions/setup-go"]["cache"] is True
    assert re.fullmatch(r"\d+\.\d+\.\d+", steps["actions/setup-go"]["go-version"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", steps["actions/setup-node"]["node-version"])
    assert steps["actions/setup-python"]["python-version"] == "3.11"  # requires-python's minor
    assert "~/.cache/secctx" in steps["actions/cache"]["path"]  # SECCTX_CACHE's default
    for job in doc["jobs"].values():
        assert job["runs-on"] == "ubuntu-24.04"
