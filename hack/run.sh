#!/usr/bin/env bash
# The main job: set everything up, run the whole conformance suite on a kind
# cluster (created, or reused when kept), and write the HTML report.
# Any pytest option of the suite may follow, e.g.
#   hack/run.sh --secctx-kubernetes-version v1.36.3 --keep-cluster -n auto
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
ensure_host_packages "$@"  # only what the mode needs; --secctx-existing-cluster: nothing
ensure_engine
results=$ROOT/reports/allure-results
rm -rf "$results"
rm -f "$ROOT/reports/observations.diff.json"  # only this run's --secctx-compare-to diff goes in the report
status=0
"$PY" -m pytest suites --alluredir "$results" --junitxml "$ROOT/reports/junit.xml" "$@" || status=$?
pages=()  # the version matrix (python -m secctx.matrix compare) and the --secctx-compare-to diff
[ -f "$ROOT/reports/matrix/matrix.json" ] && pages+=(--matrix "$ROOT/reports/matrix")
[ -f "$ROOT/reports/observations.diff.json" ] && pages+=(--diff "$ROOT/reports/observations.diff.json")
"$PY" -m secctx.report.html --results "$results" --out "$ROOT/reports/html" \
  --history "$ROOT/reports/history.jsonl" ${pages[@]+"${pages[@]}"} \
  || say "the HTML report could not be generated"
say "report: $ROOT/reports/html/index.html (JUnit: reports/junit.xml)"
exit $status
