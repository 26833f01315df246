#!/usr/bin/env bash
# Runs every viewmig test suite and ends with one line "N passed, N failed":
#   1. the C++ core's unit tests (CMake + CTest, GoogleTest),
#   2. the pg_regress suite (sql/, expected/) and the isolation suite (test/isolation/) against a
#      throwaway PostgreSQL 15 cluster made by pg_virtualenv,
#   3. the TAP suite (test/tap/t/*.pl, prove + PostgreSQL::Test::Cluster; see test/tap/run.sh),
#      each file on clusters of its own that preload viewmig,
#   4. the upgrade test (test/upgrade/run.sh): ALTER EXTENSION viewmig UPDATE from the previous
#      release on a cluster whose state that release made, counted as one test.
# Builds and installs the extension first (installing needs root, as on CI and the dev machine).
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
log_dir=$(mktemp -d)
count() {  # count <label> <passed> <failed>
    echo "== $1: $2 passed, $3 failed"
    passed=$((passed + $2))
    failed=$((failed + $3))
}

echo "== building and installing the extension"
if ! { make -s -j2 && make -s install; } >"$log_dir/build.log" 2>&1; then
    cat "$log_dir/build.log"
    echo "0 passed, 1 failed"
    exit 1
fi

echo "== C++ unit tests (ctest)"
if cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >"$log_dir/cmake.log" 2>&1 &&
   cmake --build build -j2 >>"$log_dir/cmake.log" 2>&1; then
    (cd build && ctest --output-on-failure) | tee "$log_dir/ctest.log"
    summary=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log_dir/ctest.log" | tail -1)
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
    bad=$(sed -E 's/.*tests passed, ([0-9]+) tests failed.*/\1/' <<<"$summary")
    if [[ -n "$summary" ]]; then count "unit" $((total - bad)) "$bad"; else count "unit" 0 1; fi
else
    cat "$log_dir/cmake.log"
    count "unit (build failed)" 0 1
fi

echo "== pg_regress and isolation suites on a throwaway cluster"
# Dynamic background workers run replay steps: leave room for them.
pg_virtualenv -o max_worker_processes=16 -o max_prepared_transactions=0 \
    make installcheck 2>&1 | tee "$log_dir/installcheck.log"
ok=$(grep -cE '^(test| ) *[^ ]+ +\.\.\. ok' "$log_dir/installcheck.log")
bad=$(grep -cE '\.\.\. FAILED' "$log_dir/installcheck.log")
ran=$(grep -cE 'tests? passed|tests? failed' "$log_dir/installcheck.log")
if [[ "$ran" -lt 2 ]]; then bad=$((bad + 1)); echo "installcheck did not run both suites"; fi
for diffs in regression.diffs output_iso/regression.diffs; do
    [[ -s "$diffs" ]] && { echo "== $diffs"; head -200 "$diffs"; }
done
count "pg_regress + isolation" "$ok" "$bad"

echo "== TAP suite (test/tap)"
# Counted in TAP test FILES, not assertions: each file is one scenario on its own clusters and
# passes when all its assertions pass and its plan is complete. test/tap/run.sh runs the files
# (as user postgres when root), prints the logs of failing files (tmp_check/log), and ends with
# "tap: N passed, N failed".
test/tap/run.sh 2>&1 | tee "$log_dir/tap.log"
summary=$(grep -E '^tap: [0-9]+ passed, [0-9]+ failed$' "$log_dir/tap.log" | tail -1)
if [[ -n "$summary" ]]; then
    count "tap (files)" "$(sed -E 's/^tap: ([0-9]+) passed.*/\1/' <<<"$summary")" \
        "$(sed -E 's/.* ([0-9]+) failed$/\1/' <<<"$summary")"
else
    count "tap (did not run)" 0 1
fi

echo "== upgrade from the previous release (test/upgrade)"
# One test: builds the previous release (cached), makes live state with it in a private mount
# namespace, then updates and checks with the installed build; ends "upgrade: N passed, N failed".
if test/upgrade/run.sh 2>&1 | tee "$log_dir/upgrade.log"; then
    count "upgrade" 1 0
else
    count "upgrade" 0 1
fi

rm -rf "$log_dir"
echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
