"""The exit codes of a suite run: one home (the README's table and docs/summary.md say the same).

pytest's own codes keep their meaning (0 green, 1 a test failed, 2 interrupted,
3 internal error, 4 bad input, 5 nothing collected). The suite adds 6 and 7 and
chooses between 1, 6 and 7 by what failed: `decide` is pure; the plugin applies
it at the end of the session (secctx.report.summary.Gate.pytest_sessionfinish).
"""
from __future__ import annotations

from collections.abc import Iterable

from .categories import INFRASTRUCTURE

OK = 0
NOT_ENFORCED = 1  # a check failed: an enforcement failure, a timeout, any failing test
INTERRUPTED = 2
INTERNAL_ERROR = 3
BAD_INPUT = 4  # an option or its value is wrong (pytest.UsageError)
NO_TESTS = 5
INFRASTRUCTURE_ERROR = 6  # the cluster or environment could not be used, and no check failed
REGRESSION = 7  # --secctx-fail-on-regression: regressed against --secctx-compare-to, and no check failed

MEANING = {
    OK: "green: every check passed (skips only with their reason) and, with --secctx-fail-on-regression, "
        "no regression",
    NOT_ENFORCED: "NOT ENFORCED / test failure: at least one check failed (an enforcement failure, "
                  "a timeout, any failing test)",
    INTERRUPTED: "interrupted (Ctrl-C, SIGTERM, a collection error)",
    INTERNAL_ERROR: "internal error of pytest or a plugin",
    BAD_INPUT: "bad input: an option or its value is wrong (the one INFRASTRUCTURE line names "
               "cause and fix)",
    NO_TESTS: "no tests collected",
    INFRASTRUCTURE_ERROR: "INFRASTRUCTURE: the cluster or environment could not be used "
                          "(unreachable API server, no engine, an image no node can get, a "
                          "refused permission), and no check failed",
    REGRESSION: "REGRESSION: --secctx-fail-on-regression with --secctx-compare-to, the run regressed against "
                "the baseline, and no check failed",
}


def decide(pytest_code: int, failing_categories: Iterable[str], regressions: int,
           fail_on_regression: bool) -> int:
    """The run's exit code. `failing_categories`: the category of each failed or erroring
    test (secctx.core.categories); `regressions`: how many changes against --secctx-compare-to are
    regressions. Precedence 1 > 6 > 7: a failed check is never hidden behind an
    infrastructure error, and an infrastructure error not behind a regression."""
    if pytest_code not in (OK, NOT_ENFORCED):  # interrupted, internal error, bad input, nothing
        return int(pytest_code)
    failing = list(failing_categories)
    if any(c != INFRASTRUCTURE for c in failing):
        return NOT_ENFORCED
    if failing:
        return INFRASTRUCTURE_ERROR
    if pytest_code != OK:  # pytest failed the run without a failed test (e.g. -W error at exit)
        return int(pytest_code)
    if fail_on_regression and regressions:
        return REGRESSION
    return OK
