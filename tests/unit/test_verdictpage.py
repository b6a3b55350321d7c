"""The report's first page (secctx.report.verdictpage): a field-by-runtime verdict built from the
run's tests. Each test plants the lie the page must not tell: a failed field shown as
enforced, a skip of a runtime that cannot run counted as a verdict, a self-check in the grid."""
from __future__ import annotations

import json

from secctx.core.categories import not_enforced, runtime_cannot_run
from secctx.report import verdictpage as vp
from secctx.verdict import Check, table


def outcome(title="case", status="passed", feature="runAsUser", runtime="default", message="",
            checks=(), epic="Pod Security Context", node=None) -> vp.TestOutcome:
    return vp.TestOutcome(title=title, page=f"page-{title}", status=status, message=message,
                          epic=epic, feature=feature, runtime=runtime, node=node,
                          failed_checks=tuple(checks))


def test_a_failed_check_line_reads_back_into_field_expected_and_observed():
    check = Check("/data group", 2000, 0, "fsGroup 2000: the kubelet sets the group")
    assert vp.parse_check(check.line()) == vp.FailedCheck(
        "/data group", "2000", "0", "fsGroup 2000: the kubelet sets the group")
    assert vp.parse_check(Check("uid", 1000, 1000, "runAsUser").line()) is None  # an "ok" line


def test_a_not_enforced_test_fails_only_the_fields_its_failed_checks_are_about():
    failed = vp.FailedCheck("/data group", "2000", "0")
    t = outcome(status="failed", feature="runAsUser/fsGroup", checks=[failed],
                message="Failed: " + not_enforced("1 of 4 checks differ"))
    assert vp.field_verdicts(t) == {"runAsUser": vp.ENFORCED, "fsGroup": vp.FAILED}


def test_a_not_enforced_test_whose_checks_name_no_field_fails_every_field_it_is_about():
    t = outcome(status="failed", feature="runAsUser/fsGroup", checks=[vp.FailedCheck("odd", "1", "2")],
                message="Failed: " + not_enforced("1 of 2 checks differ"))
    assert set(vp.field_verdicts(t).values()) == {vp.FAILED}


def test_one_failure_makes_the_cell_and_the_headline_not_enforced():
    page = vp.build([
        outcome("a", feature="capabilities"),
        outcome("b", status="failed", feature="capabilities",
                checks=[vp.FailedCheck("CapEff", "0", "0x2000")],
                message="Failed: " + not_enforced("1 of 3 checks differ")),
        outcome("c", feature="capabilities", runtime="crun")])
    assert page.cells[("capabilities", "default")].verdict == vp.FAILED
    assert page.cells[("capabilities", "crun")].verdict == vp.ENFORCED
    assert page.verdict == vp.FAILED
    assert page.headline == "NOT ENFORCED: capabilities (default)"


def test_a_timeout_or_an_infrastructure_error_is_no_verdict_not_enforced():
    page = vp.build([outcome(status="broken", message="TIMEOUT: pod not Ready in 60 s")])
    assert page.cells[("runAsUser", "default")].verdict == vp.BROKEN
    assert page.headline.startswith("NO VERDICT")


def test_cannot_enforce_marks_the_named_field_and_the_others_enforced():
    t = outcome(status="skipped", feature="seLinuxOptions/runAsUser",
                message="Skipped: ENVIRONMENT CANNOT ENFORCE: the node has no SELinux (seLinuxOptions); "
                        "every other field of this case was checked and holds")
    assert vp.field_verdicts(t) == {"seLinuxOptions": vp.CANNOT, "runAsUser": vp.ENFORCED}
    page = vp.build([t])
    assert page.headline == ("ENFORCED: every field the suite checked holds; cannot be enforced "
                             "here: seLinuxOptions (default)")


def test_runtimes_that_cannot_run_and_self_checks_stay_out_of_the_grid():
    skipped = [outcome(f"case{i}", status="skipped", runtime="runsc",
                       message="Skipped: " + runtime_cannot_run("runsc", "runsc needs CAP_SYS_RESOURCE"))
               for i in range(3)]
    valid = outcome("case file secure-pod.yaml is valid", epic=vp.SELF_CHECK_EPIC, feature="")
    page = vp.build([outcome("a"), *skipped, valid])
    assert page.columns == ["default"]
    assert [t.title for t in page.self_checks] == ["case file secure-pod.yaml is valid"]
    assert page.cannot_run == {"runsc": {"runsc needs CAP_SYS_RESOURCE (the suite added RuntimeClass "
                                         "runsc; this host cannot run it)": 3}}


def test_a_column_per_node_only_when_the_cases_ran_on_several():
    one = vp.build([outcome("a", node="worker"), outcome("b", node="worker")])
    assert one.columns == ["default"]
    two = vp.build([outcome("a", node="worker"), outcome("b", node="vm-apparmor", runtime="crun")])
    assert two.columns == ["default on worker", "crun on vm-apparmor"]


def test_the_rendered_page_links_each_failed_test_and_shows_its_checks_escaped():
    failed = vp.FailedCheck("/data group", "<2000>", "0")
    page = vp.build([outcome("fsgroup-demo", status="failed", feature="fsGroup", checks=[failed],
                             message="Failed: " + not_enforced(table([Check("/data group", 2000, 0, "x")])))])
    html = vp.render(page)
    assert 'href="#page-fsgroup-demo"' in html
    assert "&lt;2000&gt;" in html and "<2000>" not in html
    assert 'class="failed"' in html


def test_read_tests_keeps_the_last_result_of_a_retried_test(tmp_path):
    for uuid, stop, status in (("u1", 10, "failed"), ("u2", 20, "passed")):
        (tmp_path / f"{uuid}-result.json").write_text(json.dumps({
            "uuid": uuid, "historyId": "h", "name": "secure-pod", "status": status, "stop": stop,
            "labels": [{"name": "feature", "value": "runAsUser"}],
            "parameters": [{"name": "runtime", "value": "crun"}]}))
    (tmp_path / "broken-result.json").write_text("{not json")
    [t] = vp.read_tests([tmp_path])
    assert (t.status, t.runtime, t.feature) == ("passed", "crun", "runAsUser")


def test_feature_texts_name_their_fields_not_their_paths_or_qualifiers():
    assert vp.fields_of("image USER (root) and /etc/group") == ["runAsUser"]
    assert vp.fields_of("supplementalGroups/supplementalGroupsPolicy (Strict)") == [
        "supplementalGroups", "supplementalGroupsPolicy"]
    assert vp.fields_of("recursiveReadOnly (Enabled) vs readOnly alone") == ["recursiveReadOnly"]
    assert vp.fields_of("enforce=restricted") == ["Pod Security Admission (restricted)"]


def test_a_field_enforced_by_refusing_the_pod_says_so_in_its_cell(tmp_path):
    (tmp_path / "a-result.json").write_text(json.dumps({
        "uuid": "a", "name": "apparmor-pod", "status": "passed",
        "labels": [{"name": "epic", "value": "AppArmor"}, {"name": "feature", "value": "appArmorProfile"}],
        "steps": [{"name": "wait for pod apparmor-pod to be refused", "status": "passed", "steps": [
            {"name": "refused: reason 'AppArmor'", "status": "passed"}]}]}))
    [t] = vp.read_tests([tmp_path])
    assert t.refused == "reason 'AppArmor'"
    html = vp.render(vp.build([t]))
    assert "1 by refusing the pod" in html and "refused, as promised: reason &#x27;AppArmor&#x27;" in html


def test_the_manifests_validation_is_a_self_check():
    page = vp.build([outcome("secure-pod.yaml passes server-side validation", epic="Manifests",
                             feature="server-side validation")])
    assert not page.rows and len(page.self_checks) == 1
