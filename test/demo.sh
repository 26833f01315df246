#!/usr/bin/env bash
# Runs the demo on a throwaway PostgreSQL 15 cluster (pg_virtualenv) with the installed extension
# preloaded: test/demo.sql walks the replay lifecycle by hand (the tables before, each step with
# its progress, the tables after); test/demo_jobs*.sql then hands the same work to the launcher
# as background jobs and shows their events. Polling happens here, outside any transaction, so
# nothing the jobs wait for (a concurrent index build waits for older transactions) is held open.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${VIEWMIG_DEMO_IN_ENV:-}" ]]; then
    export VIEWMIG_DEMO_IN_ENV=1
    exec pg_virtualenv -o max_worker_processes=16 -o shared_preload_libraries=viewmig -o viewmig.naptime=1 \
        bash "$0"
fi

q() { psql -X -v ON_ERROR_STOP=1 "$@"; }
wait_until() {  # wait_until <sql returning true when done> <what>
    for _ in $(seq 1 600); do
        [[ "$(q -Atc "$1")" == t ]] && return 0
        sleep 0.5
    done
    echo "demo: gave up waiting for $2" >&2
    return 1
}

q -f test/demo.sql
q -f test/demo_jobs.sql
wait_until "SELECT status NOT IN ('enqueued', 'running') FROM viewmig.jobs ORDER BY id DESC LIMIT 1" "the replay job"
q -f test/demo_jobs_after.sql
wait_until "SELECT bool_and(status NOT IN ('enqueued', 'running', 'errored')) FROM viewmig.background_schema_migrations" \
    "the index build"
q -f test/demo_index_after.sql
