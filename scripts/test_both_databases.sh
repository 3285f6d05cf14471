#!/usr/bin/env bash
# `make pytest`: every test on SQLite and, at the same time, every test that touches a database on a
# PostgreSQL server that the run starts. The two runs share nothing but the machine (each test server
# listens on a free port in its own temporary folder), so running them side by side uses both cores of a
# CI machine; one after the other they took 23 of CI's 30 minutes
# (2026-12-05), side by side 22.6 (2026-12-06, with the Expo and Hermes tests added).
#
# The SQLite run prints as it goes; the PostgreSQL run's output goes to a log, printed when both end.
# The exit status is non-zero when either run fails.
set -u
bin=${1:-.venv/bin}
log=test-artifacts/pytest-postgresql.log
mkdir -p test-artifacts

# --durations: the slowest tests, at the end of each run, for whoever trims the run next
OVERAIR_TEST_DATABASE=postgresql "$bin/pytest" -q -p no:cacheprovider --durations=15 >"$log" 2>&1 &
postgres_pid=$!
trap 'kill "$postgres_pid" 2>/dev/null; exit 130' INT TERM
echo "The PostgreSQL run goes on beside this one; its output: $log"

"$bin/pytest" -q --durations=15
sqlite=$?
wait "$postgres_pid"
postgres=$?

echo
echo "== the PostgreSQL run ($log) =="
cat "$log"
echo
echo "SQLite run: $([ $sqlite -eq 0 ] && echo passed || echo "failed ($sqlite)");" \
    "PostgreSQL run: $([ $postgres -eq 0 ] && echo passed || echo "failed ($postgres)")"
[ "$sqlite" -eq 0 ] && [ "$postgres" -eq 0 ]
