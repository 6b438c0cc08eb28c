#!/usr/bin/env bash
# The whole test suite: lint, types, layer contracts, then pytest on SQLite and Postgres.
# Extra arguments go to pytest (e.g. scripts/test.sh -k ingest).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
echo "== ruff"
$BIN/ruff check .
$BIN/ruff format --check .
echo "== mypy"; $BIN/mypy service forecasting policies
echo "== pytest"
# The end-to-end Prometheus tests run in a pytest process of their own: after the rest of the suite has run
# in the same process, the Prometheus they start never delivered its remote-write to the in-process server
# (seen only in full runs; standalone they pass every time; cause not found yet).
ISOLATED=tests/integrations/test_prometheus.py
isolated_args=()
for arg in "$@"; do
  case "$arg" in
    --junitxml=*) isolated_args+=("${arg%.xml}-prometheus.xml") ;;
    *) isolated_args+=("$arg") ;;
  esac
done
set +e
$BIN/pytest "$@" --ignore="$ISOLATED"
status=$?
$BIN/pytest "${isolated_args[@]}" "$ISOLATED"
isolated_status=$?
set -e
# pytest exits 5 when nothing was collected: a failure for the main run, but the isolated run collects
# nothing when the arguments select other tests (e.g. -k ingest)
[ "$isolated_status" -eq 5 ] && isolated_status=0
[ "$status" -ne 0 ] && exit $status
exit $isolated_status
