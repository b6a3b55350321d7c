"""Every case in fixtures/cases (and --secctx-cases-dir): apply the recipe's manifest,
wait for the outcome the case expects, look inside the container, and compare
each observed field with what Kubernetes promises for that spec (runner.judge;
the scheduler runs every selected case at once).
"""
from __future__ import annotations

import pytest

from secctx import report
from secctx.report import summary
from secctx.run.plugin import recipe_job


def test_case_file_is_valid(secctx_case_file):
    """A bad case file fails here, naming file and line, without asking for a cluster."""
    report.label_self_check(f"case file {secctx_case_file.path.name} is valid")
    if secctx_case_file.errors:
        pytest.fail("invalid case file: "
                    + "\ninvalid case file: ".join(map(str, secctx_case_file.errors)), pytrace=False)


@pytest.mark.e2e
def test_recipe_case(secctx_recipe_case, secctx_suite, secctx_scheduler, request):
    """The case ran with every other selected case (secctx.run.scheduler): its steps and
    attachments are replayed here, and what it raised is raised here."""
    report.label_case(secctx_recipe_case.case, secctx_suite.env, secctx_recipe_case.storage,
                      secctx_recipe_case.runtime, secctx_recipe_case.node)
    result = secctx_scheduler.result(recipe_job(request.node))
    summary.record_checks(request.node, result.checks)  # failed checks to reports/summary.json
    if result.kept:
        print(f"\nkept namespace {result.namespace} of failed test: "
              f"KUBECONFIG={secctx_suite.cluster.kubeconfig} kubectl -n {result.namespace} get all,events")
    result.replay()
