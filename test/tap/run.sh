#!/usr/bin/env bash
# Runs the TAP suite (test/tap/t/*.pl: prove + PostgreSQL::Test::Cluster) against the INSTALLED
# extension (run `make install` first). Every test file starts its own clusters with
# shared_preload_libraries = 'viewmig' (see test/tap/lib/ViewmigTAP.pm).
#
#   test/tap/run.sh                      # every file
#   test/tap/run.sh 003_crash_resume.pl  # some files (names under test/tap/t/)
#
# initdb refuses to run as root, so as root the tests run as the `postgres` user, in a copy of
# test/tap and test/fixtures under /tmp owned by postgres; tmp_check/ (clusters, logs) lives there.
# The copy is removed when every file passes, and kept (its path is printed) otherwise.
#
# Counts test FILES, not assertions: a file is one scenario on its own clusters, and it passes
# when prove reports all of its assertions ok and its plan complete. Prints the logs of failing
# files (tmp_check/log: regress_log_<file> and the server logs <file>_<node>.log), then ends with
# one line "tap: N passed, N failed" (test/run_all.sh reads it). Exit status 0 when none failed.
#
# Environment: PG_CONFIG (default /usr/lib/postgresql/15/bin/pg_config); VIEWMIG_TAP_KEEP=1 keeps
# the work directory; VIEWMIG_TAP_FILE_TIMEOUT (seconds, default 1200) bounds one file;
# PG_TEST_TIMEOUT_DEFAULT (seconds, default 180) bounds each poll inside a test;
# VIEWMIG_TAP_LOG_LINES (default 150) is how much of each server log a failure prints (three
# times that of the test's own regress_log).
set -uo pipefail
cd "$(dirname "$0")"
src_tap=$(pwd)
src_fixtures=$(cd ../fixtures && pwd)

pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[[ -x "$pg_config" ]] || pg_config=$(command -v pg_config)
bindir=$("$pg_config" --bindir)
pgxs_dir=$(dirname "$(dirname "$(dirname "$("$pg_config" --pgxs)")")")   # .../lib/pgxs
perl_lib="$pgxs_dir/src/test/perl"
pg_regress="$pgxs_dir/src/test/regress/pg_regress"
file_timeout=${VIEWMIG_TAP_FILE_TIMEOUT:-1200}
log_lines=${VIEWMIG_TAP_LOG_LINES:-150}

if [[ $# -gt 0 ]]; then
    files=("$@")
else
    files=()
    for f in t/*.pl; do files+=("$(basename "$f")"); done
fi

work=$(mktemp -d /tmp/viewmig_tap.XXXXXX)
mkdir -p "$work/test"
cp -r "$src_tap" "$work/test/tap"
cp -r "$src_fixtures" "$work/test/fixtures"
rm -rf "$work/test/tap/tmp_check"
run_as=()
if [[ $(id -u) -eq 0 ]]; then
    chown -R postgres: "$work"
    run_as=(runuser -u postgres --)
fi
tap="$work/test/tap"

# Stops clusters a killed test file left running: only those whose data directory is in $work.
stop_leftover_clusters() {
    local pidfile
    while IFS= read -r pidfile; do
        "${run_as[@]}" "$bindir/pg_ctl" -D "$(dirname "$pidfile")" -m immediate stop >/dev/null 2>&1
    done < <(find "$work" -name postmaster.pid 2>/dev/null)
}

passed=0
failed=0
failed_files=()
for f in "${files[@]}"; do
    f=$(basename "$f")
    if [[ ! -f "$tap/t/$f" ]]; then
        echo "tap: no such test file t/$f"
        failed=$((failed + 1)); failed_files+=("$f"); continue
    fi
    (cd "$tap" && "${run_as[@]}" timeout -k 30 "$file_timeout" env \
        PATH="$bindir:$PATH" PG_REGRESS="$pg_regress" TESTDIR="$tap" PG_CONFIG="$pg_config" \
        PG_TEST_TIMEOUT_DEFAULT="${PG_TEST_TIMEOUT_DEFAULT:-180}" \
        prove -I "$perl_lib" -I lib --timer "t/$f")
    rc=$?
    if [[ $rc -eq 0 ]]; then
        passed=$((passed + 1))
    else
        [[ $rc -eq 124 ]] && echo "tap: t/$f timed out after ${file_timeout}s"
        failed=$((failed + 1)); failed_files+=("$f")
        stop_leftover_clusters
    fi
done

for f in "${failed_files[@]}"; do
    name=${f%.pl}
    for log in "$tap/tmp_check/log/regress_log_$name" "$tap/tmp_check/log/${name}"_*.log; do
        [[ -f "$log" ]] || continue
        n=$log_lines
        [[ "$log" == */regress_log_* ]] && n=$((log_lines * 3))   # the test's own log: assertions, diag
        echo "======== $f: last $n lines of ${log#"$tap"/}"
        tail -n "$n" "$log"
    done
done

if [[ $failed -eq 0 && -z "${VIEWMIG_TAP_KEEP:-}" ]]; then
    rm -rf "$work"
else
    echo "tap: clusters and logs kept in $tap/tmp_check"
fi
echo "tap: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
