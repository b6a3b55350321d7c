"""Every case in fixtures/cases (and --cases-dir): apply the recipe's manifest,
wait for the outcome the case expects, look inside the container, and compare
each observed field with what Kubernetes promises for that spec (runner.judge;
the scheduler runs every selected case at once).
"""
from __future__ import annotations

import pytest

from secctx import report, summary
from secctx.plugin import recipe_job


def test_case_file_is_valid(case_file):
    """A bad case file fails here, naming file and line, without asking for a cluster."""
    report.label_self_check(f"case file {case_file.path.name} is valid")
    if case_file.errors:
        pytest.fail("invalid case file: " + "\ninvalid case file: ".join(map(str, case_file.errors)),
                    pytrace=False)


@pytest.mark.e2e
def test_recipe_case(recipe_case, suite, scheduler, request):
    """The case ran with every other selected case (secctx.scheduler): its steps and
    attachments are replayed here, and what it raised is raised here."""
    report.label_case(recipe_case.case, suite.env, recipe_case.storage, recipe_case.runtime)
    result = scheduler.result(recipe_job(request.node))
    summary.record_checks(request.node, result.checks)  # failed checks to reports/summary.json
    if result.kept:
        print(f"\nkept namespace {result.namespace} of failed test: "
              f"KUBECONFIG={suite.cluster.kubeconfig} kubectl -n {result.namespace} get all,events")
    result.replay()
