#!/usr/bin/env bash
# make bench: times viewmig's replay against two plain PL/pgSQL loops on the same event store,
# in the same run, for each history shape in bench/shapes/ (a fresh database per shape):
#   baseline A  a DO block calling the projector for every event, in ONE transaction;
#   baseline B  the same loop as a procedure that COMMITs every $BATCH events;
#   viewmig     prepare_initial, replay_initial (one background worker, groups of ~$BATCH events),
#               replay_increment, prepare_completion, complete - each step timed on its own.
#   batch       the same tables from bench_batch (bench/batch_projector.sql), the projector written
#               set-based as a batch projector (mode => 'batch'), one worker;
#   ceiling     hand-written set-based SQL over all events at once (bench/set_based.sql);
#   parallel    replay_initial again on the same events, from a fresh prepare_initial each time
#               (abort, prepare_initial), with workers => 1 and then workers => 2; the speed-up is
#               (1-worker seconds / 2-worker seconds), both measured in this run.
# Then checks that the viewmig-built view tables (and the replay tables of each parallel run)
# equal both baselines' tables, and prints one results table per shape. Exits non-zero if any
# tables differ or a step fails.
#
# Runs on a throwaway cluster made with pg_virtualenv, or in the current one when PGPORT is set
# and psql connects. Needs the extension installed (make install); installs nothing itself.
#   BENCH_EVENTS  events per shape (default 1000000; e.g. 50000 for a quick run)
#   BENCH_SHAPES  shapes to run (default "uniform skewed"; files bench/shapes/<shape>.sql)
#   BENCH_KEEP=1  keep the benchmark databases and the step logs afterwards
# Times are wall-clock seconds of one psql call each (date +%s.%N around it), taken after a
# CHECKPOINT so no step pays for the previous step's dirty buffers.
# CPU use of the parallel runs, two numbers per run:
#   worker CPU s   utime + stime of the 'viewmig worker' background processes of that call
#                  (/proc/<pid>/stat fields 14 + 15, in CLK_TCK ticks), read every 0.1 s while the
#                  call runs; the value of each worker's last read counts, so up to 0.1 s of each
#                  worker's CPU (its very end) is missed. "worker cores" = worker CPU s / seconds.
#   machine cores  average busy cores of the whole machine during the psql call: the delta of
#                  user+nice+system+irq+softirq jiffies of the "cpu" line of /proc/stat between the
#                  two timestamps / seconds / CLK_TCK. It includes the workers, the waiting caller
#                  backend, PostgreSQL's own processes (WAL writer, checkpointer, autovacuum), the
#                  0.1 s sampler itself, and anything else running on the machine; steal (time
#                  the hypervisor gave to other guests) is not in it and is shown apart.
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

# The postmaster's pid, to find its 'viewmig worker' children (reads the data directory: as root,
# or as the cluster's owner; otherwise the worker CPU columns say n/a).
postmaster=$(head -1 "$(psql -X -Atqc 'SHOW data_directory')/postmaster.pid" 2>/dev/null) || true
if ! [[ "$postmaster" =~ ^[0-9]+$ ]]; then
    postmaster=
    echo "can not read the postmaster's pid from its data directory: no worker CPU figures" >&2
fi

logdir=$(mktemp -d -t viewmig-bench.XXXXXX)
declare -A R   # results, keyed "<shape>:<name>"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

say() { echo "[$(date +%H:%M:%S)] $*" >&2; }
q() { psql -X -q -v ON_ERROR_STOP=1 -d "$db" "$@"; }
die_with_log() { echo "FAILED: $1 (log follows)" >&2; tail -50 "$log" >&2; exit 1; }

CLK_TCK=$(getconf CLK_TCK)

# proc_stat_cpu: "busy steal" jiffies of the whole machine so far (the "cpu" line of /proc/stat).
proc_stat_cpu() {
    local _cpu user nice system idle iowait irq softirq steal _rest
    read -r _cpu user nice system idle iowait irq softirq steal _rest </proc/stat
    echo "$((user + nice + system + irq + softirq)) $steal"
}

# timed <key> <psql args...>: one psql call after a CHECKPOINT; seconds in R[shape:key], the
# machine's average busy cores and steal cores during the call in R[shape:key:busy] and
# R[shape:key:steal], what it printed (unaligned) in $out, its stderr (NOTICEs) in $err.
timed() {
    local key=$1 t0 t1 c0 c1 rc=0
    shift
    q -c 'CHECKPOINT' >>"$log" 2>&1 || die_with_log "CHECKPOINT before $key"
    echo "-- $key" >>"$log"
    c0=$(proc_stat_cpu)
    t0=$(date +%s.%N)
    out=$(q -At "$@" 2>"$logdir/step.err") || rc=$?
    t1=$(date +%s.%N)
    c1=$(proc_stat_cpu)
    err=$(<"$logdir/step.err")
    cat "$logdir/step.err" >>"$log"
    ((rc == 0)) || die_with_log "$key"
    echo "$out" >>"$log"
    R[$shape:$key]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    read -r "R[$shape:$key:busy]" "R[$shape:$key:steal]" < <(awk -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" '
        BEGIN { split(c0, x, " "); split(c1, y, " "); d = (b - a) * hz
                if (d > 0) printf "%.2f %.2f\n", (y[1] - x[1]) / d, (y[2] - x[2]) / d; else print "n/a n/a" }')
    say "  $key: ${R[$shape:$key]} s"
}

# worker_cpu_sampler <file> <workers>: until sent TERM, reads utime + stime of every 'viewmig
# worker' process (children of this cluster's postmaster titled "... viewmig replay_initial for
# replay ...") every 0.1 s (pgrep only until it has seen <workers> of them: workers never
# restart), keeping each one's last value; on TERM writes "<pid> <ticks>" lines to <file>.
worker_cpu_sampler() {
    local file=$1 want=$2 p line sfd
    local -A ticks=()
    local -a f
    trap 'for p in "${!ticks[@]}"; do echo "$p ${ticks[$p]}"; done >"$file"; exit 0' TERM
    exec {sfd}<> <(:)   # read -t on this is a sleep without a fork
    while :; do
        if [[ -n "$postmaster" ]] && ((${#ticks[@]} < want)); then
            for p in $(pgrep -P "$postmaster" -f 'viewmig replay_initial for replay' || true); do : "${ticks[$p]:=0}"; done
        fi
        for p in "${!ticks[@]}"; do
            read -r line <"/proc/$p/stat" 2>/dev/null || continue
            read -r -a f <<<"${line##*) }"   # fields from 3 (state) on: utime is f[11], stime f[12]
            ticks[$p]=$((f[11] + f[12]))
        done
        read -r -t 0.1 -u "$sfd" || true
    done
}

# worker_timed <key> <workers> <psql args...>: timed, and the CPU of the worker processes in
# R[shape:key:cpu] (seconds) and R[shape:key:nworkers] (how many the sampler saw).
worker_timed() {
    local key=$1 nw=$2 sampler file=$logdir/$shape.$1.cpu
    shift 2
    worker_cpu_sampler "$file" "$nw" &
    sampler=$!
    timed "$key" "$@"
    kill -TERM "$sampler"
    wait "$sampler" || true
    R[$shape:$key:nworkers]=$(wc -l <"$file")
    R[$shape:$key:cpu]=$(awk -v hz="$CLK_TCK" '{ s += $2 } END { if (NR) printf "%.2f", s / hz; else printf "n/a" }' "$file")
}

div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (a ~ /^[0-9.]+$/ && b > 0) printf f, a / b; else printf "n/a" }'; }
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
    q -c 'CREATE EXTENSION viewmig' -c 'CREATE EXTENSION pg_prewarm' -f test/fixtures/event_records.sql -f bench/schema.sql -f bench/batch_projector.sql -f bench/generate.sql \
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
    diff=$(q -At -F' ' -v built=view_schema -f bench/compare.sql 2>>"$log") || die_with_log "compare"
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

    # Parallel replay: replay_initial again on the same events, with 1 and then 2 workers, each
    # from a fresh prepare_initial, into replay_schema; its tables are compared with the baselines'.
    local w
    for w in 1 2; do
        q -c 'SELECT viewmig.prepare_initial()' >>"$log" 2>&1 || die_with_log "prepare_initial before workers => $w"
        worker_timed "replay_w$w" "$w" -c "SELECT viewmig.replay_initial(batch_size => $BATCH, workers => $w)"
        [[ "$out" == "${R[$shape:events]}" ]] ||
            die_with_log "replay_initial(workers => $w) replayed $out events of ${R[$shape:events]}"
        R[$shape:replay_w$w:retries]=$(sed -n 's/.*replay_initial: \([0-9]*\) batches were replayed again.*/\1/p' <<<"$err" | tail -1)
        diff=$(q -At -F' ' -v built=replay_schema -f bench/compare.sql 2>>"$log") || die_with_log "compare workers => $w"
        echo "$diff" >>"$log"
        R[$shape:equal_w$w]=$(awk 'NF == 5 { n++; if ($4 != 0 || $5 != 0 || $3 == 0) bad++ }
                                   END { print (n == 8 && !bad) ? "yes" : "no" }' <<<"$diff")
        if [[ ${R[$shape:equal_w$w]} != yes ]]; then
            echo "tables differ in shape $shape, replay_initial(workers => $w):" >&2
            echo "baseline table rows only_in_replay_schema only_in_baseline" >&2
            echo "$diff" >&2
        fi
        say "shape $shape: workers => $w: ${R[$shape:replay_w$w:cpu]} worker CPU s, tables equal: ${R[$shape:equal_w$w]}"
        q -c 'SELECT viewmig.abort()' >>"$log" 2>&1 || die_with_log "abort after workers => $w"
    done

    # Batch projector: the same tables from bench_batch, the set-based handler of
    # bench/batch_projector.sql (mode => 'batch'), one worker, into replay_schema.
    q -c "SELECT viewmig.register_projector('bench', 'bench_batch(event_records[])', $managed, mode => 'batch')" \
        >>"$log" 2>&1 || die_with_log "register the batch projector"
    q -c 'SELECT viewmig.prepare_initial()' >>"$log" 2>&1 || die_with_log "prepare_initial before the batch projector"
    timed replay_batch -c "SELECT viewmig.replay_initial(batch_size => $BATCH)"
    [[ "$out" == "${R[$shape:events]}" ]] || die_with_log "the batch projector replayed $out events of ${R[$shape:events]}"
    diff=$(q -At -F' ' -v built=replay_schema -f bench/compare.sql 2>>"$log") || die_with_log "compare batch projector"
    echo "$diff" >>"$log"
    R[$shape:equal_batch]=$(awk 'NF == 5 { n++; if ($4 != 0 || $5 != 0 || $3 == 0) bad++ }
                                 END { print (n == 8 && !bad) ? "yes" : "no" }' <<<"$diff")
    if [[ ${R[$shape:equal_batch]} != yes ]]; then
        echo "tables differ in shape $shape, batch projector:" >&2
        echo "baseline table rows only_in_replay_schema only_in_baseline" >&2
        echo "$diff" >&2
    fi
    say "shape $shape: batch projector: tables equal: ${R[$shape:equal_batch]}"
    q -c 'SELECT viewmig.abort()' >>"$log" 2>&1 || die_with_log "abort after the batch projector"

    # The practical ceiling: hand-written set-based SQL over all events (bench/set_based.sql).
    q -c "SELECT bench_copy_tables('set_based')" >>"$log" 2>&1 || die_with_log "set_based tables"
    timed set_based -v target=set_based -f bench/set_based.sql
    diff=$(q -At -F' ' -v built=set_based -f bench/compare.sql 2>>"$log") || die_with_log "compare set-based SQL"
    echo "$diff" >>"$log"
    R[$shape:equal_set]=$(awk 'NF == 5 { n++; if ($4 != 0 || $5 != 0 || $3 == 0) bad++ }
                               END { print (n == 8 && !bad) ? "yes" : "no" }' <<<"$diff")
    say "shape $shape: set-based SQL: tables equal: ${R[$shape:equal_set]}"

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
    printf '   %-66s %9s %10s\n' "viewmig     batch projector (set-based bench_batch), 1 worker" "${R[$s:replay_batch]}" \
        "$(div "$ev" "${R[$s:replay_batch]}" %.0f)"
    printf '   %-66s %9s\n' "batch/loop-1tx speed-up (baseline A s / batch projector s)" "$(div "$a" "${R[$s:replay_batch]}")x"
    printf '   %-66s %9s\n' "batch/per-event speed-up (replay_initial s / batch projector s)" "$(div "$v" "${R[$s:replay_batch]}")x"
    printf '   %-66s %9s %10s\n' "ceiling     hand-written set-based SQL, all events at once" "${R[$s:set_based]}" \
        "$(div "$ev" "${R[$s:set_based]}" %.0f)"
    printf '   %-66s %9s\n' "batch projector / set-based SQL (set-based s / batch s; 1.00 = ceiling)" \
        "$(div "${R[$s:set_based]}" "${R[$s:replay_batch]}")x"
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
    printf '   %-40s %7s %8s %8s %7s %7s %7s %6s %7s %5s\n' "parallel replay_initial (same events," \
        "seconds" "events/s" "speed-up" "worker" "worker" "machine" "steal" "retried" "equal"
    printf '   %-40s %7s %8s %8s %7s %7s %7s %6s %7s %5s\n' " fresh prepare_initial each)" \
        "" "" "" "CPU s" "cores" "cores" "cores" "batches" ""
    local w k
    for w in 1 2; do
        k=$s:replay_w$w
        printf '   %-40s %7s %8s %8s %7s %7s %7s %6s %7s %5s\n' "replay_initial(workers => $w)" "${R[$k]}" \
            "$(div "$ev" "${R[$k]}" %.0f)" "$(div "${R[$s:replay_w1]}" "${R[$k]}")x" "${R[$k:cpu]}" \
            "$(div "${R[$k:cpu]}" "${R[$k]}")" "${R[$k:busy]}" "${R[$k:steal]}" "${R[$k:retries]:-0}" "${R[$s:equal_w$w]}"
    done
    printf '   %-66s %9s\n' "speed-up with 2 workers (workers => 1 s / workers => 2 s)" "$(div "${R[$s:replay_w1]}" "${R[$s:replay_w2]}")x"
    printf '   %-66s %9s\n' "worker CPU with 2 workers / with 1 (1.00: no extra work)" "$(div "${R[$s:replay_w2:cpu]}" "${R[$s:replay_w1:cpu]}")"
    [[ ${R[$s:replay_w2:nworkers]} == 2 && ${R[$s:replay_w1:nworkers]} == 1 ]] ||
        echo "   (the CPU sampler saw ${R[$s:replay_w1:nworkers]} and ${R[$s:replay_w2:nworkers]} worker processes)"
    echo "   (worker CPU: utime+stime of the worker processes; machine cores: busy cores of the whole"
    echo "    machine during the call, from /proc/stat; see the header of bench/run.sh)"
    echo
    echo "   tables equal: ${R[$s:equal]}   (view_schema built by viewmig vs baseline A's and baseline B's tables:"
    echo "    authors, posts, post_tags, author_stats; every column but the serial post_tags.line;"
    echo "    the parallel runs' replay_schema tables are checked the same way, column \"equal\";"
    echo "    batch projector's tables equal: ${R[$s:equal_batch]}, set-based SQL's: ${R[$s:equal_set]})"
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
    [[ ${R[$shape:equal]} == yes && ${R[$shape:equal_w1]} == yes && ${R[$shape:equal_w2]} == yes &&
       ${R[$shape:equal_batch]} == yes && ${R[$shape:equal_set]} == yes ]] || status=1
done
echo
echo "total run time: $(( $(date +%s) - started )) s (including generating the events and checking the tables)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"
if [[ $status -eq 0 && -z "${BENCH_KEEP:-}" ]]; then rm -rf "$logdir"; else echo "logs kept in $logdir"; fi
exit $status
