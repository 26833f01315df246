#!/usr/bin/env bash
# make bench: times viewmig's replay against two plain PL/pgSQL loops on the same event store,
# in the same run, for each history shape in bench/shapes/ (a fresh database per shape):
#   baseline A  a DO block calling the projector for every event, in ONE transaction;
#   baseline B  the same loop as a procedure that COMMITs every $BATCH events;
#   viewmig     prepare_initial, replay_initial (one background worker, groups of ~$BATCH events),
#               replay_increment, prepare_completion, complete - each step timed on its own.
# Then checks that the viewmig-built view tables equal both baselines' tables, and prints one
# results table per shape. Exits non-zero if any tables differ or a step fails.
#
# Runs on a throwaway cluster made with pg_virtualenv, or in the current one when PGPORT is set
# and psql connects. Needs the extension installed (make install); installs nothing itself.
#   BENCH_EVENTS  events per shape (default 1000000; e.g. 50000 for a quick run)
#   BENCH_SHAPES  shapes to run (default "uniform skewed"; files bench/shapes/<shape>.sql)
#   BENCH_KEEP=1  keep the benchmark databases and the step logs afterwards
# Times are wall-clock seconds of one psql call each (date +%s.%N around it), taken after a
# CHECKPOINT so no step pays for the previous step's dirty buffers.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

EVENTS=${BENCH_EVENTS:-1000000}
SHAPES=${BENCH_SHAPES:-uniform skewed}
BATCH=10000

[[ "$EVENTS" =~ ^[0-9]+$ && "$EVENTS" -ge 1000 ]] || { echo "BENCH_EVENTS must be an integer >= 1000" >&2; exit 2; }
for shape in $SHAPES; do
    [[ -f "bench/shapes/$shape.sql" ]] || { echo "no such shape: bench/shapes/$shape.sql" >&2; exit 2; }
done

# A throwaway cluster unless we are in a usable one already. -t keeps its files in a temporary
# directory even as root, so it does not collide with a `make test` cluster.
if [[ -z "${VIEWMIG_BENCH_IN_ENV:-}" ]] && ! { [[ -n "${PGPORT:-}" ]] && psql -X -Atqc 'select 1' >/dev/null 2>&1; }; then
    export VIEWMIG_BENCH_IN_ENV=1
    exec pg_virtualenv -t -o shared_buffers=1GB -o max_wal_size=4GB -o checkpoint_timeout=30min \
        -o max_worker_processes=16 -o max_parallel_workers_per_gather=0 -o max_parallel_maintenance_workers=0 \
        bash -c '"$0"' "$repo/bench/run.sh"
fi

if [[ "$(psql -X -Atqc "SELECT count(*) FROM pg_available_extensions WHERE name = 'viewmig'")" != 1 ]]; then
    echo "the viewmig extension is not installed on this server: run 'make && make install' first" >&2
    exit 1
fi

logdir=$(mktemp -d -t viewmig-bench.XXXXXX)
declare -A R   # results, keyed "<shape>:<name>"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

say() { echo "[$(date +%H:%M:%S)] $*" >&2; }
q() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
die_with_log() { echo "FAILED: $1 (log follows)" >&2; tail -50 "$log" >&2; exit 1; }

# timed <key> <psql args...>: one psql call after a CHECKPOINT; seconds in R[shape:key],
# what it printed (unaligned) in $out.
timed() {
    local key=$1 t0 t1
    shift
    q -c 'CHECKPOINT' >>"$log" 2>&1 || die_with_log "CHECKPOINT before $key"
    echo "-- $key" >>"$log"
    t0=$(date +%s.%N)
    out=$(q -At "$@" 2>>"$log") || die_with_log "$key"
    t1=$(date +%s.%N)
    echo "$out" >>"$log"
    R[$shape:$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    say "  $key: ${R[$shape:$key]} s"
}

div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (b > 0) printf f, a / b; else printf "n/a" }'; }
add() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.2f", s }' "$@"; }

managed="ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags', 'view_schema.author_stats']::regclass[]"
baseline_tables="baseline_x.authors, baseline_x.posts, baseline_x.post_tags, baseline_x.author_stats"

run_shape() {
    shape=$1
    db=viewmig_bench_$shape
    log=$logdir/$shape.log
    say "shape $shape: $EVENTS events wanted (log: $log)"
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >>"$log" 2>&1 ||
        die_with_log "create database $db"
    # One core's worth of work in every session, the background workers' included (they read the
    # database's settings too), also when running in an existing cluster.
    q -c "ALTER DATABASE $db SET max_parallel_workers_per_gather = 0" \
      -c "ALTER DATABASE $db SET max_parallel_maintenance_workers = 0" >>"$log" 2>&1 || die_with_log "settings"
    q -c 'CREATE EXTENSION viewmig' -c 'CREATE EXTENSION pg_prewarm' -f test/fixtures/event_records.sql -f bench/schema.sql -f bench/generate.sql \
      -f bench/baselines.sql -f test/fixtures/compare.sql >>"$log" 2>&1 || die_with_log "schema"

    timed generate -v events="$EVENTS" -f "bench/shapes/$shape.sql"
    q -c 'VACUUM (FREEZE, ANALYZE) event_records' >>"$log" 2>&1 || die_with_log "vacuum event_records"
    IFS='|' read -r "R[$shape:events]" "R[$shape:aggregates]" "R[$shape:authors]" "R[$shape:posts]" \
        "R[$shape:max_updates]" "R[$shape:max_updates_authors]" < <(q -At -f bench/stats.sql 2>>"$log") ||
        die_with_log "stats"
    # The events (heap and the (aggregate_id, sequence_number) index) in shared buffers for all three.
    q -c "SELECT pg_prewarm('event_records'), pg_prewarm('event_records_aggregate_id_sequence_number_key')" \
        >>"$log" 2>&1 || die_with_log "prewarm"

    local b
    for b in a b; do
        q -c "SELECT bench_copy_tables('baseline_$b')" >>"$log" 2>&1 || die_with_log "baseline_$b tables"
        if [[ $b == a ]]; then
            timed baseline_a -v target=baseline_a -f bench/baseline_a.sql
        else
            timed baseline_b -v target=baseline_b -v every="$BATCH" -f bench/baseline_b.sql
        fi
        # So that autovacuum has nothing left to do on them while later steps are timed; timed
        # too, as the counterpart of the VACUUM ANALYZE in viewmig's prepare_completion.
        timed "vacuum_$b" -c "VACUUM (ANALYZE) ${baseline_tables//baseline_x/baseline_$b}"
    done

    q -c "SELECT viewmig.set_event_store('event_records')" \
      -c "SELECT viewmig.register_projector('bench', 'bench_projector(event_records)', $managed)" \
        >>"$log" 2>&1 || die_with_log "register"
    timed prepare_initial -c 'SELECT viewmig.prepare_initial()'
    timed replay_initial -c "SELECT viewmig.replay_initial(batch_size => $BATCH)"
    R[$shape:replayed]=$out
    R[$shape:groups]=$(q -At -c 'SELECT groups_total FROM viewmig.status LIMIT 1' 2>>"$log")
    R[$shape:deferred]=$(q -At -c "SELECT count(*) FROM viewmig.replay_deferred_ddl WHERE kind = 'index'" 2>>"$log")
    timed replay_increment -c 'SELECT viewmig.replay_increment()'
    R[$shape:increment_events]=$out
    timed prepare_completion -c 'SELECT viewmig.prepare_completion()'
    timed complete -c 'SELECT viewmig.complete()'
    [[ "${R[$shape:replayed]}" == "${R[$shape:events]}" ]] ||
        die_with_log "replay_initial replayed ${R[$shape:replayed]} events of ${R[$shape:events]}"

    local diff
    diff=$(q -At -F' ' -f bench/compare.sql 2>>"$log") || die_with_log "compare"
    echo "$diff" >>"$log"
    # Equal when nothing is only on one side and every table has rows (8 lines: 2 baselines x 4 tables).
    R[$shape:equal]=$(awk 'NF == 5 { n++; if ($4 != 0 || $5 != 0 || $3 == 0) bad++ }
                           END { print (n == 8 && !bad) ? "yes" : "no" }' <<<"$diff")
    R[$shape:rows]=$(awk '$1 == "baseline_a" { printf "%s%s %s", sep, $2, $3; sep = ", " }' <<<"$diff")
    if [[ ${R[$shape:equal]} != yes ]]; then
        echo "tables differ in shape $shape:" >&2
        echo "baseline table rows only_in_view_schema only_in_baseline" >&2
        echo "$diff" >&2
    fi
    say "shape $shape: tables equal: ${R[$shape:equal]}"

    [[ -n "${BENCH_KEEP:-}" ]] || psql -X -q -d postgres -c "DROP DATABASE $db" >>"$log" 2>&1 || true
}

report() {
    local s=$1 ev=${R[$1:events]} a=${R[$1:baseline_a]} b=${R[$1:baseline_b]} v=${R[$1:replay_initial]}
    local total
    total=$(add "${R[$s:prepare_initial]}" "$v" "${R[$s:replay_increment]}" "${R[$s:prepare_completion]}" "${R[$s:complete]}")
    local description
    description=$(sed -n '1s/^-- Shape "[^"]*": //p' "bench/shapes/$s.sql")
    echo
    echo "== shape $s: $description"
    printf '   %-44s %12s\n' "events" "$ev"
    printf '   %-44s %12s   (%s authors, %s posts)\n' "aggregates" "${R[$s:aggregates]}" "${R[$s:authors]}" "${R[$s:posts]}"
    printf '   %-44s %12s   (author_stats row of the busiest author; its authors row: %s)\n' \
        "max updates of one row" "${R[$s:max_updates]}" "${R[$s:max_updates_authors]}"
    printf '   %-44s %s\n' "rows built" "${R[$s:rows]}"
    echo
    printf '   %-66s %9s %10s\n' "replaying every event through bench_projector" "seconds" "events/s"
    printf '   %-66s %9s %10s\n' "baseline A  DO loop, one transaction" "$a" "$(div "$ev" "$a" %.0f)"
    printf '   %-66s %9s %10s\n' "baseline B  procedure loop, COMMIT every $BATCH events" "$b" "$(div "$ev" "$b" %.0f)"
    printf '   %-66s %9s %10s\n' "viewmig     replay_initial, 1 worker, ${R[$s:groups]} groups of ~$BATCH events" "$v" "$(div "$ev" "$v" %.0f)"
    printf '   %-66s %9s\n' "viewmig/loop-1tx speed-up (baseline A s / replay_initial s)" "$(div "$a" "$v")x"
    printf '   %-66s %9s\n' "viewmig/loop-commit speed-up (baseline B s / replay_initial s)" "$(div "$b" "$v")x"
    echo "   (the baselines maintain every index while they loop; replay_initial maintains only"
    echo "    primary keys and unique constraints, and prepare_completion builds the other indexes)"
    echo
    printf '   %-66s %9s\n' "viewmig lifecycle step" "seconds"
    printf '   %-66s %9s\n' "prepare_initial     replay schema with empty copies" "${R[$s:prepare_initial]}"
    printf '   %-66s %9s\n' "replay_initial      as above" "$v"
    printf '   %-66s %9s\n' "replay_increment    ${R[$s:increment_events]} new events" "${R[$s:replay_increment]}"
    printf '   %-66s %9s\n' "prepare_completion  ${R[$s:deferred]} deferred indexes, VACUUM ANALYZE" "${R[$s:prepare_completion]}"
    printf '   %-66s %9s\n' "complete            lock, last increment, swap" "${R[$s:complete]}"
    printf '   %-66s %9s\n' "all five steps" "$total"
    printf '   %-66s %9s\n' "baseline A + VACUUM ANALYZE of its tables" "$(add "$a" "${R[$s:vacuum_a]}")"
    printf '   %-66s %9s\n' "baseline B + VACUUM ANALYZE of its tables" "$(add "$b" "${R[$s:vacuum_b]}")"
    printf '   %-66s %9s\n' "viewmig all steps vs baseline A + VACUUM ANALYZE speed-up" "$(div "$(add "$a" "${R[$s:vacuum_a]}")" "$total")x"
    printf '   %-66s %9s\n' "viewmig all steps vs baseline B + VACUUM ANALYZE speed-up" "$(div "$(add "$b" "${R[$s:vacuum_b]}")" "$total")x"
    echo
    echo "   tables equal: ${R[$s:equal]}   (view_schema built by viewmig vs baseline A's and baseline B's tables:"
    echo "    authors, posts, post_tags, author_stats; every column but the serial post_tags.line)"
}

for shape in $SHAPES; do run_shape "$shape"; done

echo
echo "viewmig benchmark: BENCH_EVENTS=$EVENTS, shapes: $SHAPES, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "server: $(psql -X -Atqc "SELECT split_part(version(), ' on ', 1) || ', shared_buffers=' || current_setting('shared_buffers')
    || ', fsync=' || current_setting('fsync') || ', synchronous_commit=' || current_setting('synchronous_commit')
    || ', max_wal_size=' || current_setting('max_wal_size') || ', autovacuum=' || current_setting('autovacuum')")"
echo "load average at the start: $load_before"
echo "each time: wall-clock seconds of one psql call after a CHECKPOINT; no parallel query or parallel index builds"
status=0
for shape in $SHAPES; do
    report "$shape"
    [[ ${R[$shape:equal]} == yes ]] || status=1
done
echo
echo "total run time: $(( $(date +%s) - started )) s (including generating the events and checking the tables)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"
if [[ $status -eq 0 && -z "${BENCH_KEEP:-}" ]]; then rm -rf "$logdir"; else echo "logs kept in $logdir"; fi
exit $status
