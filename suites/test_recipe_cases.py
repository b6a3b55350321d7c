"""Every case in fixtures/cases (and --cases-dir): apply the recipe's manifest,
wait for the outcome the case expects, look inside the container, and compare
each observed field with what Kubernetes promises for that spec.
"""
from __future__ import annotations

import pytest

from secctx import expect, report, runner, verdict


def test_case_file_is_valid(case_file):
    """A bad case file fails here, naming file and line, without asking for a cluster."""
    report.title(f"case file {case_file.path.name} is valid")
    if case_file.errors:
        pytest.fail("invalid case file: " + "\ninvalid case file: ".join(map(str, case_file.errors)),
                    pytrace=False)


@pytest.mark.e2e
def test_recipe_case(recipe_case, suite, namespace):
    case, storage, runtime = recipe_case.case, recipe_case.storage, recipe_case.runtime
    report.label_case(case, suite.env, storage, runtime)
    unavailable = expect.not_available(case, suite.kubernetes_version)
    if unavailable:
        pytest.skip(unavailable)
    suite.require_runtime(runtime)
    env = suite.env.under(runtime)
    outcome, _ = expect.outcome_for(case, env)
    with runner.dump_on_failure(suite, namespace):
        observed = runner.run(suite, case, namespace, storage, outcome, recipe_case.id, runtime)
        expected = expect.for_case(case, env, observed.learned)
        checks = verdict.compare(expected, observed)
        report.record_checks(checks, case.recipe_claim)
        verdict.assert_holds(expected, checks)
