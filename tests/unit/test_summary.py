"""reports/summary.json, the JUnit properties and the exit codes (secctx.report.summary,
secctx.core.exitcodes): pure logic, then pytest runs of small test files (pytester)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from secctx import observations
from secctx.core import categories, exitcodes
from secctx.core.categories import INFRASTRUCTURE, NOT_ENFORCED, TEST_FAILURE, TIMEOUT
from secctx.report import summary, upstream
from secctx.verdict import Check

# --- exit codes: precedence 1 > 6 > 7; pytest's own codes kept ---------------------

def test_a_failed_check_exits_1_even_beside_infrastructure_errors_and_regressions():
    assert exitcodes.decide(1, [INFRASTRUCTURE, NOT_ENFORCED], 3, True) == exitcodes.NOT_ENFORCED


def test_a_timeout_or_any_other_failure_exits_1():
    assert exitcodes.decide(1, [TIMEOUT], 0, False) == 1
    assert exitcodes.decide(1, [TEST_FAILURE, INFRASTRUCTURE], 0, False) == 1


def test_only_infrastructure_errors_exit_6_even_with_a_regression():
    assert exitcodes.decide(1, [INFRASTRUCTURE, INFRASTRUCTURE], 2, True) == \
        exitcodes.INFRASTRUCTURE_ERROR == 6


def test_a_regression_exits_7_only_with_fail_on_regression():
    assert exitcodes.decide(0, [], 1, True) == exitcodes.REGRESSION == 7
    assert exitcodes.decide(0, [], 1, False) == 0, "without --secctx-fail-on-regression it is reported only"
    assert exitcodes.decide(0, [], 0, True) == 0


@pytest.mark.parametrize("code", [2, 3, 4, 5])
def test_pytests_other_codes_keep_their_meaning(code):
    assert exitcodes.decide(code, [NOT_ENFORCED], 1, True) == code


def test_every_code_has_its_meaning():
    assert sorted(exitcodes.MEANING) == list(range(8))


# --- categories ---------------------------------------------------------------------

def test_the_prefix_decides_the_category_before_the_report_regexes():
    """An INFRASTRUCTURE line that mentions a time-out is infrastructure (exit 6), not a
    TIMEOUT (exit 1): the suite wrote the prefix."""
    assert categories.category("error", "RunStopped: INFRASTRUCTURE: cannot reach the API server "
                                        "(ConnectTimeoutError)") == INFRASTRUCTURE
    assert categories.category("failed", "Failed: NOT ENFORCED: 1 of 9 checks differ") == NOT_ENFORCED
    assert categories.category("skipped", "Skipped: NOT AVAILABLE: not available in v1.34 (x)") == \
        categories.NOT_AVAILABLE


def test_without_a_prefix_the_report_regexes_decide_as_allure_files_it():
    assert categories.category("failed", "kubernetes.client.exceptions.ApiException: (500)") == \
        INFRASTRUCTURE
    assert categories.category("failed", "secctx.kube.WaitTimeout: pod p not Ready") == TIMEOUT
    assert categories.category("failed", "AssertionError: assert 1 == 2") == TEST_FAILURE
    assert categories.category("skipped", "Skipped: needs docker") == categories.SKIPPED
    assert categories.category("passed", "") is None


def test_each_report_category_has_its_prefix():
    assert [c["name"] for c in categories.CATEGORIES] == list(categories._BY_NAME)


# --- upstream mapping ---------------------------------------------------------------

def test_a_mounts_and_a_twins_checks_map_like_the_field_itself():
    assert upstream.field_key("/data new file's group") == "new file's group"
    assert upstream.field_key("twin: uid") == "uid"
    assert upstream.for_field("/data group") == upstream.FS_GROUP
    assert upstream.for_field("id uid (exec) = PID 1 uid") == ()


def test_the_uid_check_names_the_upstream_runAsUser_spec():
    names = [s.name for s in upstream.for_field("uid")]
    assert "[sig-node] Security Context When creating a container with runAsUser should run the " \
           "container with uid 65534 [LinuxOnly]" in names
    assert all(s.url.startswith("https://github.com/kubernetes/kubernetes/blob/master/test/e2e/")
               for specs in upstream.BY_FIELD.values() for s in specs)


def test_every_mapped_field_is_a_field_the_verdict_checks():
    from secctx.verdict import OBSERVED
    others = {"root read-only", "write to / fails with EROFS",
              "write to / succeeds (root, writable root)", "group", "new file's group", "setgid bit"}
    assert set(upstream.BY_FIELD) - set(OBSERVED) <= others


# --- the entry of a failed check ----------------------------------------------------

def test_a_failed_check_keeps_field_expected_observed_and_its_upstream_specs():
    check = Check("uid", (1000,) * 4, (0, 1000, 1000, 1000), "runAsUser 1000")
    entry = summary.failed_check(check)
    assert entry["field"] == "uid" and entry["expected"] == [1000] * 4
    assert entry["observed"] == [0, 1000, 1000, 1000]
    assert entry["line"].startswith("FAIL uid: expected (1000, 1000, 1000, 1000)")
    assert {s["name"] for s in entry["upstream"]} == {s.name for s in upstream.for_field("uid")}


# --- whole runs ---------------------------------------------------------------------

def junit_counts(path) -> dict[str, int]:
    suite = ET.parse(path).getroot().find("testsuite")
    return {k: int(suite.get(k)) for k in ("tests", "failures", "errors", "skipped")}


def totals_as_junit(doc) -> dict[str, int]:
    t = doc["totals"]
    return {"tests": t["tests"], "failures": t["failed"], "errors": t["errors"], "skipped": t["skipped"]}


MIXED = """
    import pytest
    from secctx.report import summary
    from secctx import verdict
    from secctx.core.categories import not_enforced, cannot_enforce
    from secctx.verdict import Check

    @pytest.fixture
    def broken_teardown():
        yield
        raise RuntimeError("teardown broke")

    @pytest.fixture
    def broken_setup():
        raise RuntimeError("setup broke")

    def test_passes():
        pass

    def test_not_enforced(request):
        checks = [Check("uid", (1000,) * 4, (0,) * 4, "runAsUser 1000"),
                  Check("NoNewPrivs", 1, 1, "allowPrivilegeEscalation false")]
        summary.record_checks(request.node, checks)
        verdict.fail(not_enforced("1 of 2 checks differ:\\n" + verdict.table(verdict.failures(checks))))

    def test_cannot_enforce():
        pytest.skip(cannot_enforce("the node has no SELinux"))

    def test_setup_error(broken_setup):
        pass

    def test_passes_then_teardown_error(broken_teardown):
        pass

    def test_fails_then_teardown_error(broken_teardown):
        assert 1 == 2

    def test_skips_then_teardown_error(broken_teardown):
        pytest.skip("no reason category")

    @pytest.mark.xfail(reason="known")
    def test_xfails():
        assert False

    @pytest.mark.xfail(reason="known", strict=True)
    def test_xpasses_strictly():
        pass
"""


def test_summary_totals_equal_junits_and_the_file_is_valid(pytester):
    pytester.makepyfile(MIXED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=junit.xml",
                                           "--secctx-summary=out/summary.json")
    doc = summary.load(pytester.path / "out" / "summary.json")  # validates against the schema
    assert totals_as_junit(doc) == junit_counts(pytester.path / "junit.xml"), result.outlines
    tests = {t["nodeid"].split("::")[1]: t for t in doc["tests"]}
    assert tests["test_not_enforced"]["category"] == NOT_ENFORCED
    [failed] = tests["test_not_enforced"]["failed_checks"]
    assert (failed["field"], failed["expected"], failed["observed"]) == ("uid", [1000] * 4, [0] * 4)
    assert tests["test_cannot_enforce"]["category"] == categories.ENVIRONMENT_CANNOT_ENFORCE
    assert tests["test_setup_error"]["status"] == "error"
    assert tests["test_passes_then_teardown_error"]["status"] == "error"
    assert tests["test_fails_then_teardown_error"]["teardown_error"]["category"] == TEST_FAILURE
    assert tests["test_xpasses_strictly"]["status"] == "failed"
    assert result.ret == doc["exit"]["code"] == exitcodes.NOT_ENFORCED


def test_a_run_that_only_hit_infrastructure_exits_6(pytester):
    """As an unreachable cluster does: the session fixture's one INFRASTRUCTURE line."""
    pytester.makepyfile("""
        import pytest
        from secctx.run.boundary import infrastructure
        from secctx.cluster.kind import ClusterError

        @pytest.fixture(scope="session")
        def cluster():
            with infrastructure(None):
                raise ClusterError("cannot reach the API server (Connection refused); check "
                                   "--kubeconfig")

        def test_valid_file():
            pass

        def test_one(cluster):
            pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--secctx-summary=s.json")
    doc = summary.load(pytester.path / "s.json")
    assert result.ret == exitcodes.INFRASTRUCTURE_ERROR, result.outlines
    assert [t["category"] for t in doc["tests"]] == [None, INFRASTRUCTURE]
    assert any(line.startswith("exit code 6 (not pytest's 1)") for line in result.outlines)


def test_fail_on_regression_without_compare_to_is_bad_input(pytester):
    """Exit 4 with its one line, and a summary that says so: a gate reading the file
    does not read the last run's verdict."""
    pytester.makepyfile("def test_x(): pass")
    (pytester.path / "s.json").write_text("an earlier run's file")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--secctx-fail-on-regression",
                                           "--secctx-summary=s.json")
    assert result.ret == exitcodes.BAD_INPUT
    line = ("INFRASTRUCTURE: --secctx-fail-on-regression needs --secctx-compare-to FILE (the baseline run's "
            "observations): pass --secctx-compare-to, or drop --secctx-fail-on-regression")
    assert line in result.stderr.str()
    doc = summary.load(pytester.path / "s.json")
    assert (doc["exit"]["code"], doc["problem"], doc["tests"]) == (exitcodes.BAD_INPUT, line, [])


def test_a_run_outside_the_suite_without_summary_writes_no_file(pytester):
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 0 and not (pytester.path / "reports").exists()


def regression_run(pytester, *options):
    """A run whose observations regressed against the baseline (the comparison is the
    recorder's; here it reports one regression, one relaxation)."""
    baseline = observations.write(pytester.path / "baseline.json", _empty_document())
    pytester.makeconftest("""
        from secctx import observations
        from secctx.observations import recording

        def changes(*args, **kwargs):
            made = [observations.Change("secure-pod", "app", "process.no_new_privs", 1, 0, "a", "b"),
                    observations.Change("secure-pod", "app", "process.groups", [1, 2], [1], "a", "b")]
            for c in made:
                c.kind, c.rule = observations.classify(c)
            return ["compared"], made

        recording.conclude = changes
    """)
    pytester.makepyfile("def test_x(): pass")
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--secctx-summary=s.json",
                                         f"--secctx-compare-to={baseline}", *options)


def _empty_document() -> dict:
    c = observations.Collector()
    c.environment = observations.environment({})
    return c.document()


def test_a_regression_exits_7_with_fail_on_regression(pytester):
    result = regression_run(pytester, "--secctx-fail-on-regression")
    doc = summary.load(pytester.path / "s.json")
    assert result.ret == exitcodes.REGRESSION, result.outlines
    assert doc["comparison"]["counts"] == {"regression": 1, "relaxation": 1, "neutral": 0}
    assert [r["rule"] for r in doc["comparison"]["regressions"]] == ["nnp-cleared"]


def test_a_regression_without_fail_on_regression_is_reported_and_exits_0(pytester):
    result = regression_run(pytester)
    assert result.ret == exitcodes.OK
    assert summary.load(pytester.path / "s.json")["comparison"]["regressions"]


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_junit_properties_name_case_runtime_category_and_upstream(pytester, xdist):
    pytester.makepyfile("""
        from secctx.report import summary
        from secctx import verdict
        from secctx.core.categories import not_enforced
        from secctx.verdict import Check

        def test_case(secctx_recipe_case, request):
            summary.record_checks(request.node, [Check("NoNewPrivs", 1, 0, "apE false")])
            verdict.fail(not_enforced("NoNewPrivs differs"))
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=junit.xml",
                                           "--secctx-runtime-class=default", "--secctx-summary=s.json",
                                           "-k", "secure-pod", *xdist)
    assert result.ret == 1, result.outlines
    [case] = ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    props = [(p.get("name"), p.get("value")) for p in case.iter("property")]
    assert ("case", "secure-pod") in props and ("runtime", "default") in props
    assert ("category", NOT_ENFORCED) in props
    upstream_names = [v for k, v in props if k == "upstream"]
    assert upstream.NO_NEW_PRIVS[1].name in upstream_names  # from the NoNewPrivs check
    assert any("RunAsGroup" in n for n in upstream_names)  # from secure-pod.yaml's own list
    assert len(upstream_names) == len(set(upstream_names))
    [entry] = json.loads((pytester.path / "s.json").read_text())["tests"]
    assert [s["name"] for s in entry["upstream"]] == upstream_names


def test_a_passed_case_names_only_its_case_files_upstream_specs(pytester):
    """Not every spec of every field its verdict checked: secure-pod does not set
    hostUsers, so it is not filed under "must create the user namespace if set to false"."""
    pytester.makepyfile("""
        from secctx.report import summary
        from secctx.verdict import Check

        def test_case(secctx_recipe_case, request):
            summary.record_checks(request.node, [Check("uid_map", "host", "host", "hostUsers")])
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--secctx-runtime-class=default",
                                           "--secctx-summary=s.json", "-k", "secure-pod")
    assert result.ret == 0, result.outlines
    [entry] = summary.load(pytester.path / "s.json")["tests"]
    from secctx.cases import load_cases
    from secctx.core.paths import CASES
    [case] = [c for c in load_cases([CASES])[0] if c.name == "secure-pod"]
    assert [s["name"] for s in entry["upstream"]] == [u.name for u in case.upstream]
    assert not {s.name for s in upstream.USER_NAMESPACE} & {s["name"] for s in entry["upstream"]}


# --- under pytest-xdist: the workers label their reports, the controller decides -------

def test_under_xdist_the_controller_writes_totals_equal_to_junits_and_exits_1(pytester):
    pytester.makepyfile(MIXED + """
    def test_crashes_its_worker():
        import os
        os._exit(1)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2",
                                           "--junitxml=junit.xml", "--secctx-summary=s.json")
    doc = summary.load(pytester.path / "s.json")
    assert totals_as_junit(doc) == junit_counts(pytester.path / "junit.xml"), result.outlines
    tests = {t["nodeid"].split("::")[1]: t for t in doc["tests"]}
    [failed] = tests["test_not_enforced"]["failed_checks"]  # carried from the worker
    assert (failed["field"], failed["observed"]) == ("uid", [0] * 4)
    crashed = tests["test_crashes_its_worker"]  # xdist's own report: an error, as JUnit has it
    assert (crashed["status"], crashed["category"]) == ("error", TEST_FAILURE)
    assert "crashed" in crashed["message"]
    assert result.ret == doc["exit"]["code"] == exitcodes.NOT_ENFORCED


def test_under_xdist_only_infrastructure_exits_6(pytester):
    pytester.makepyfile("""
        import pytest
        from secctx.core.errors import RunStopped

        def test_passes():
            pass

        def test_unreachable():
            raise RunStopped("INFRASTRUCTURE: cannot reach the API server", pytrace=False)
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "--secctx-summary=s.json")
    doc = summary.load(pytester.path / "s.json")
    assert result.ret == doc["exit"]["code"] == exitcodes.INFRASTRUCTURE_ERROR, result.outlines
    assert sorted(t["category"] or "" for t in doc["tests"]) == ["", INFRASTRUCTURE]
