#!/usr/bin/env bash
# The project's own tests: unit tests and the end-to-end suite on a real kind
# cluster (built offline when no registry is reachable). CI runs exactly this.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
ensure_host_packages --report-test "$@"  # --report-test: chromium, for the report test
ensure_engine
# Builds come before the tests (offline: 15-25 minutes cold), not inside a test's bounded wait.
# The CRI-O node image only when CRI-O's Go build is cached (cold it is 17-25 min more, over
# a cold run's budget): else one "left out" line, and test_crio_node skips saying so.
"$PY" -m secctx prepare --if-cached crio
# Not exec: the EXIT trap (restore_host) must run after pytest; pytest's
# status stays the script's status.
status=0
# -m "not nightly": what does not fit CI's 60 minutes runs in .github/workflows/nightly.yml.
"$PY" -m pytest tests suites -m "not nightly" --alluredir "$ROOT/reports/allure-results" \
  --junitxml "$ROOT/reports/junit.xml" "$@" || status=$?
exit "$status"
