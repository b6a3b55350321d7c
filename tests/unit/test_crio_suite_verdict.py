"""test_crio_node's reading of the nested suite's junit file: green only for passes, the
known CRI-O defect failing with its line, and the precise skips of this host. Each test
plants one outcome the reading must not absorb."""
from __future__ import annotations

from pathlib import Path

from tests.integration.test_crio_node import case_id, outcomes, unexplained

CRUN_SKIP = ("ENVIRONMENT CANNOT ENFORCE: RuntimeClass crun (handler crun) cannot run "
             "containers here: pod p: container default: CreateContainerError: ...")
DEFECT = ("NOT ENFORCED: 2 of 33 checks differ:\nFAIL masked /proc and /sys paths: expected [], "
          "observed ['/proc/acpi']")


def junit(tmp_path: Path, *cases: tuple[str, str, str]) -> Path:
    body = "".join(
        f'<testcase classname="suites.test_recipe_cases" name="{name}">'
        + (f'<{kind} message="{text}"/>' if kind else "") + "</testcase>"
        for name, kind, text in cases)
    f = tmp_path / "junit.xml"
    f.write_text(f'<testsuites><testsuite>{body}</testsuite></testsuites>')
    return f


def test_the_default_handler_id_has_no_suffix_and_another_handler_s_has_one():
    import re
    assert re.search(case_id("procmount-unmasked", "default"), "t[procmount-unmasked]")
    assert not re.search(case_id("procmount-unmasked", "default"), "t[procmount-unmasked@crun]")
    assert re.search(case_id("procmount-unmasked"), "t[procmount-unmasked@crun]")
    assert not re.search(case_id("procmount"), "t[procmount-unmasked]")


def test_passes_the_known_defect_with_its_line_and_this_host_s_skips_are_explained(tmp_path):
    found = outcomes(junit(tmp_path, ("test_recipe_case[secure-pod]", "", ""),
                           ("test_recipe_case[procmount-unmasked]", "failure", DEFECT),
                           ("test_recipe_case[secure-pod@crun]", "skipped", CRUN_SKIP)))
    assert found["suites.test_recipe_cases::test_recipe_case[secure-pod]"] == ("passed", "")
    assert unexplained(found) == []


def test_the_known_defect_failing_with_another_line_is_not_absorbed(tmp_path):
    other = "NOT ENFORCED: FAIL CapEff: expected 0, observed 5fb"
    found = outcomes(junit(tmp_path, ("test_recipe_case[procmount-unmasked]", "failure", other)))
    assert len(unexplained(found)) == 1


def test_another_case_failing_is_not_absorbed(tmp_path):
    found = outcomes(junit(tmp_path, ("test_recipe_case[secure-pod]", "failure", DEFECT)))
    assert len(unexplained(found)) == 1


def test_a_skip_for_a_reason_not_of_this_host_is_not_absorbed(tmp_path):
    vague = "ENVIRONMENT CANNOT ENFORCE: RuntimeClass runc (handler runc) cannot run containers here"
    found = outcomes(junit(tmp_path, ("test_recipe_case[secure-pod@runc]", "skipped", vague),
                           ("test_x", "skipped", "SELinux labels differ")))
    assert len(unexplained(found)) == 2
