"""The verdict a platform team gates on, on a real cluster: each outcome of a run ends
with its own exit code (secctx/core/exitcodes.py, docs/summary.md), and reports/summary.json
says why, with the same totals as junit.xml.

One case (hardened-pod) under the default runtime, on the integration tests' cluster
(`secctx-robust`). The enforcement failure is made for real: runc-liar (liar.py) gives
PID 1 a real uid of 0 (`saved-uid-root`), which the uid check must name. The regression:
a baseline whose pod had one supplementary group fewer than this cluster gives it (a
change classified `groups-gained`), so that no check fails and the comparison alone
decides. Bad input and an unreachable cluster need no cluster.
"""
from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET

import pytest

from secctx.core import exitcodes
from secctx.core.categories import INFRASTRUCTURE, NOT_ENFORCED
from secctx.report import summary

from . import liar
from .robust_helpers import CLUSTER, run_pytest, traceback_in, unreachable_kubeconfig

CASE = "hardened-pod"
NODEID = f"suites/test_recipe_cases.py::test_recipe_case[{CASE}]"
SELECT = ("-k", f"test_recipe_case and not test_case_file_is_valid and {CASE}")
ON_ROBUST = ("suites", "--cluster-name", CLUSTER, "--keep-cluster")


def run_suite(out, *args):
    """The suite with its three files in `out`; the run, its summary (validated against
    the schema by summary.load) and its JUnit test cases."""
    out.mkdir()
    run = run_pytest(*args, "--junitxml", str(out / "junit.xml"), "--secctx-summary",
                     str(out / "summary.json"), "--secctx-observations", str(out / "observations.json"),
                     log=out / "run.log")
    print(f"\n{out.name}: exit {run.returncode} in {run.seconds:.1f}s")
    doc = summary.load(out / "summary.json")
    assert doc["exit"]["code"] == run.returncode, run.output[-3000:]
    return run, doc, out / "junit.xml"


def junit(path):
    """JUnit's counts (as summary.totals names them) and each test case's properties."""
    suite = ET.parse(path).getroot().find("testsuite")
    counts = {"tests": int(suite.get("tests")), "failed": int(suite.get("failures")),
              "errors": int(suite.get("errors")), "skipped": int(suite.get("skipped"))}
    cases = {f"{c.get('classname').replace('.', '/')}.py::{c.get('name')}":
             [(p.get("name"), p.get("value")) for p in c.iter("property")]
             for c in suite.iter("testcase")}
    return counts, cases


def assert_totals_are_junits(doc, junit_xml):
    counts, _ = junit(junit_xml)
    assert {k: doc["totals"][k] for k in counts} == counts


def entry(doc, nodeid=NODEID):
    [found] = [t for t in doc["tests"] if t["nodeid"] == nodeid]
    return found


@pytest.fixture(scope="module")
def green(robust, tmp_path_factory):
    """An honest run of the case: exit 0; its observations are the baseline."""
    run, doc, junit_xml = run_suite(tmp_path_factory.mktemp("exit") / "green", *ON_ROBUST,
                                    *SELECT)
    assert run.returncode == exitcodes.OK, run.output[-3000:]
    return doc, junit_xml


@pytest.mark.e2e
def test_a_green_run_exits_0_and_its_summary_is_junits(green):
    doc, junit_xml = green
    assert_totals_are_junits(doc, junit_xml)
    assert doc["totals"] == {"tests": 1, "passed": 1, "failed": 0, "errors": 0, "skipped": 0}
    test = entry(doc)
    assert (test["case"], test["runtime"], test["status"], test["category"]) == \
        (CASE, "default", "passed", None)
    # The same names as JUnit properties, for CI reporters to group and filter by.
    props = junit(junit_xml)[1][NODEID]
    assert ("case", CASE) in props and ("runtime", "default") in props
    assert [v for k, v in props if k == "upstream"] == [s["name"] for s in test["upstream"]]
    assert test["upstream"], f"{CASE}.yaml names its upstream specs"


@pytest.mark.e2e
def test_a_planted_enforcement_failure_exits_1_naming_the_failed_check(robust, green, clean,
                                                                       tmp_path):
    """PID 1 runs with real uid 0: NOT ENFORCED, the uid check in the summary with field,
    expected and observed. The same run also regressed against the baseline (a uid
    became root) with --secctx-fail-on-regression: 1 wins over 7."""
    baseline = green[1].parent / "observations.json"
    liar.install(robust.name)
    try:
        liar.lie(robust.name, "saved-uid-root", namespace="secctx-")
        run, doc, junit_xml = run_suite(tmp_path / "lie", *ON_ROBUST, *SELECT, "--secctx-compare-to",
                                        str(baseline), "--secctx-fail-on-regression")
    finally:
        liar.honest(robust.name)
        liar.uninstall(robust.name)
    assert run.returncode == exitcodes.NOT_ENFORCED, run.output[-3000:]
    assert_totals_are_junits(doc, junit_xml)
    test = entry(doc)
    assert (test["status"], test["category"]) == ("failed", NOT_ENFORCED)
    uid = [c for c in test["failed_checks"] if c["field"] == "uid"]
    assert [(c["expected"], c["observed"]) for c in uid] == [([1000] * 4, [0, 1000, 1000, 1000])]
    print(f"failed check: {uid[0]['line']}")
    assert any("runAsUser" in s["name"] for s in uid[0]["upstream"])
    assert "id-became-root" in {r["rule"] for r in doc["comparison"]["regressions"]}
    assert ("category", NOT_ENFORCED) in junit(junit_xml)[1][NODEID]


@pytest.mark.e2e
def test_a_regression_against_the_baseline_exits_7(green, clean, tmp_path):
    """Every check passes; the baseline's pod had one group fewer: exit 7."""
    observed = json.loads((green[1].parent / "observations.json").read_text())
    stricter = copy.deepcopy(observed)
    process = stricter["cases"][CASE]["containers"]["app"]["process"]
    process["groups"] = process["groups"][:-1]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(stricter))
    run, doc, junit_xml = run_suite(tmp_path / "regressed", *ON_ROBUST, *SELECT, "--secctx-compare-to",
                                    str(baseline), "--secctx-fail-on-regression")
    assert run.returncode == exitcodes.REGRESSION, run.output[-3000:]
    assert_totals_are_junits(doc, junit_xml)
    assert entry(doc)["status"] == "passed"
    [regression] = doc["comparison"]["regressions"]
    assert (regression["case"], regression["field"], regression["rule"]) == \
        (CASE, "process.groups", "groups-gained")


def test_a_bad_option_exits_4_with_one_line(tmp_path):
    """--secctx-fail-on-regression without --secctx-compare-to: nothing runs; the file says why."""
    out = tmp_path / "bad"
    out.mkdir()
    run = run_pytest("suites", "--secctx-fail-on-regression", *SELECT, "--secctx-summary",
                     str(out / "summary.json"), log=out / "run.log")
    print(f"\nbad option: exit {run.returncode} in {run.seconds:.1f}s")
    lines = [ln for ln in run.output.splitlines() if "INFRASTRUCTURE: " in ln]
    assert run.returncode == exitcodes.BAD_INPUT, run.output[-3000:]
    assert len(lines) == 1 and "--secctx-fail-on-regression needs --secctx-compare-to FILE" in lines[0]
    doc = summary.load(out / "summary.json")
    assert doc["exit"]["code"] == exitcodes.BAD_INPUT and doc["tests"] == []
    assert lines[0].endswith(doc["problem"])  # pytest prints it after "ERROR: "


def test_an_unreachable_cluster_exits_6_filed_as_infrastructure(tmp_path):
    """The case file's own test passes (it needs no cluster); the case errors with the
    one INFRASTRUCTURE line; no check failed: 6."""
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig")
    run, doc, junit_xml = run_suite(tmp_path / "unreachable", "suites", "--secctx-existing-cluster",
                                    "--kubeconfig", str(kubeconfig),
                                    "-k", f"test_recipe_cases and {CASE}")
    assert run.returncode == exitcodes.INFRASTRUCTURE_ERROR, run.output[-3000:]
    assert not traceback_in(run.output)
    assert_totals_are_junits(doc, junit_xml)
    test = entry(doc)
    assert (test["status"], test["category"]) == ("error", INFRASTRUCTURE)
    assert "cannot reach the API server at https://127.0.0.1:1" in test["message"]
    assert [t["status"] for t in doc["tests"] if t["nodeid"] != NODEID] == ["passed"]
    assert ("category", INFRASTRUCTURE) in junit(junit_xml)[1][NODEID]
