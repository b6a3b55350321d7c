#!/usr/bin/env bash
# The project's own tests: unit tests and the end-to-end suite on a real kind
# cluster (built offline when no registry is reachable). CI runs exactly this.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_host_packages chromium  # the report test opens the HTML report in a real browser
ensure_venv
"$PY" -m secctx engine
# Builds come before the tests (offline: 15-25 minutes cold), not inside a test's bounded wait.
"$PY" -m secctx prepare
trap restore_host EXIT
# Not exec: the EXIT trap (restore_host) must run after pytest; pytest's
# status stays the script's status.
status=0
"$PY" -m pytest tests suites --alluredir "$ROOT/reports/allure-results" \
  --junitxml "$ROOT/reports/junit.xml" "$@" || status=$?
exit "$status"
