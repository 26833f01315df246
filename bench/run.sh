#!/usr/bin/env bash
# make bench: times viewmig's replay against two plain PL/pgSQL loops on the same event store,
# in the same run, for each history shape in bench/shapes/ (a fresh database per shape). In the
# order they run:
#   baseline A  a DO block calling the projector for every event, in ONE transaction;
#   baseline B  the same loop as a procedure that COMMITs every $BATCH events;
#   viewmig     prepare_initial, replay_initial (one background worker, groups of ~$BATCH events),
#               replay_increment, prepare_completion, complete - each step timed on its own; the
#               1000 events of increment 1 (below) are appended between replay_initial and
#               replay_increment, so replay_increment replays them;
#   parallel    replay_initial again on the same events, from a fresh prepare_initial each time
#               (abort, prepare_initial), with workers => 1 and then workers => 2; the speed-up is
#               (1-worker seconds / 2-worker seconds), both measured in this run.
#   batch       the same tables from bench_batch (bench/batch_projector.sql), the projector written
#               set-based as a batch projector (mode => 'batch'), one worker;
#   ceiling     hand-written set-based SQL over all events at once (bench/set_based.sql);
#   declarative the same tables from rules (bench/declarative_rules.sql), registered with
#               register_declarative_projector as a new version of projector 'bench' over the same
#               four view tables: replay_initial(workers => 1) - the compiled engine - then the 1000
#               events of increment 2 (below) and a timed replay_increment - the generated PL/pgSQL
#               handler - then abort, prepare_initial and replay_initial(workers => 2), which
#               replays increment 2 too. Each replay_initial is timed like the parallel ones (CPU,
#               memory). "vs A" is its events/s over baseline A's; "vs ceil" its events/s over the
#               set-based SQL's, which is (set-based s / declarative s) for workers => 1: both
#               replay the same events (the ceiling runs just before it); the target is >= 1.2.
#               The 2-worker speed-up is the ratio of the two runs' events/s.
#   writers     complete() of that 2-worker declarative replay while pgbench inserts events (last,
#               see "complete() with concurrent writers" below).
# Each set of tables is checked against both baselines' (see "Equality checks"); one results table
# per shape is printed. Exits non-zero if any tables differ or a step fails.
#
# Runs on a throwaway cluster made with pg_virtualenv, or in the current one when PGPORT is set
# and psql connects. Needs the extension installed (make install); installs nothing itself.
#   BENCH_EVENTS  events per shape (default 1000000; e.g. 50000 for a quick run)
#   BENCH_SHAPES  shapes to run (default "uniform skewed"; files bench/shapes/<shape>.sql; the third
#                 shape, one event per aggregate: BENCH_SHAPES="uniform skewed single")
#   BENCH_WRITER_RATE  inserts/s of the concurrent writers during complete() (default 1000, in all)
#   BENCH_KEEP=1  keep the benchmark databases and the step logs afterwards
# The 10 M-event figures, the complete() stall included (every step at 10 M events: hours):
#   BENCH_EVENTS=10000000 BENCH_SHAPES=uniform make bench
#
# Times are wall-clock seconds of one psql call each (date +%s.%N around it), taken after a
# CHECKPOINT so no step pays for the previous step's dirty buffers (except complete() with
# writers: its CHECKPOINT comes before pgbench starts).
#
# Increments. The history grows twice while a shape runs, by exactly 1000 events each time
# (bench_generate_increment in bench/generate.sql: new posts of existing authors - PostDrafted,
# PostTagged, PostPublished, so an increment inserts, updates and upserts - with aggregate ids no
# other event has), inserted by one psql call that is not timed, committed before the timed step:
#   increment 1  after the lifecycle's replay_initial; "replay_increment latency for 1000 new events
#                over the N-event history" (N = the events before these) is the lifecycle's next
#                step, SELECT viewmig.replay_increment(): the per-event handler applies the 1000
#                events in the calling backend's transaction, to the replay tables of the history.
#   increment 2  after the declarative replay_initial(workers => 1); then replay_increment is timed
#                the same way: the declarative projector's generated PL/pgSQL handler.
# Each time the baselines' tables are brought up to date with the new events (bench_catch_up in
# bench/baselines.sql), so every later check, of replays that replay these events too, stays
# meaningful. Every run's events/s is computed from the events that run replayed (the column
# "events"), and speed-ups between runs are ratios of events/s, which are the ratios of their
# seconds when both replayed the same events.
#
# Equality checks (check_equal, bench/compare.sql): a set of tables is compared with baseline A's
# and baseline B's, table by table (authors, posts, post_tags, author_stats), every column but the
# serial post_tags.line, as multisets (EXCEPT ALL both ways). Equal when no row is on one side only
# - so a table that is empty on viewmig's side must be empty in the baseline too (the "single" shape
# has no post events: posts, post_tags and author_stats are empty until increment 1) - and at least
# one table has rows. Checked: the lifecycle's replay_schema right after replay_initial (before any
# event is appended; column "tables equal") and view_schema after complete (the history + increment
# 1); the replay_schema of each parallel, batch and declarative replay_initial; the set-based SQL's
# tables; the declarative replay_schema again after its replay_increment (+ increment 2).
#
# CPU use of the parallel and declarative runs, two numbers per run:
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
# "retried" counts batches rolled back after a lock conflict between workers (deadlock victims),
# "early" the batches that committed before their batch_size events because another worker waited
# for a row they held, out of all committed batches (both from the call's NOTICEs).
# Memory of the same worker processes, read by the same sampler from /proc/<pid>/status:
#   VmHWM MB       "peak worker memory (VmHWM, MB)": the largest VmHWM among the call's workers.
#                  VmHWM is the process's peak resident set size (RSS high-water mark) as the
#                  kernel keeps it: private memory (heap, the declarative engine's row cache,
#                  sorts, caches) plus every page of shared memory and of mapped files the process
#                  has touched - the shared_buffers pages it read or wrote count in full although
#                  all backends share them, so a worker that reads a prewarmed 300 MB event table
#                  shows 300 MB or more. It starts from the RSS the worker inherits from the
#                  postmaster at fork (a few MB). It never decreases, so each worker's last read
#                  counts; only a rise in its last 0.1 s is missed.
#   anon MB        the largest RssAnon (private anonymous memory only, no shared buffers) seen in
#                  those reads, max over the workers: a sample, a peak shorter than 0.1 s can be missed.
#
# complete() with concurrent writers, last in each shape, after every equality check (the writers'
# events land in the event table and in the swapped-in tables; nothing is compared afterwards):
# the 2-worker declarative replay gets prepare_completion (not timed), then, after a CHECKPOINT,
# pgbench starts 2 clients (-c 2 -j 2) that insert one AuthorCreated event of a new author
# (aggregate id gen_random_uuid()) per transaction into event_records, $BENCH_WRITER_RATE
# transactions/s in all (--rate), logging every transaction (-l, --log-prefix in the log directory);
# 1.2 s later SELECT viewmig.complete() is timed (one psql call), and pgbench is stopped (SIGTERM)
# 1 s after it returns (600 / BENCH_WRITER_RATE s if longer: SIGTERM loses the lines still in each
# client's 4 kB log buffer, so every client must have logged a few hundred more; the run fails if a
# client's log ends before the call did). With --rate, pgbench schedules each transaction; its
# latency (the log's time) runs from the scheduled start, so a transaction that had to wait for the
# previous one counts that wait, and ends at the log's time stamp (epoch s and us, the same clock
# as date +%s.%N):
#   longest writer stall  the largest latency of the transactions that overlapped the complete()
#                         call (scheduled start before the call returned, end after it started);
#   reference             the largest latency of the transactions that ended in the second before
#                         the call started.
# complete() first replays, without a lock, the events committed since the last increment (here
# since replay_initial: the writers' events so far), then takes its locks - inserts into the event table wait
# from here - replays the events left, swaps the tables and commits; its NOTICE gives the events
# replayed before and under the lock and the ms from its first lock attempt to the swap, printed
# too (also for the lifecycle's complete, without writers).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

EVENTS=${BENCH_EVENTS:-1000000}
SHAPES=${BENCH_SHAPES:-uniform skewed}
WRITER_RATE=${BENCH_WRITER_RATE:-1000}
BATCH=10000
INCREMENT=1000   # events appended before each timed replay_increment

[[ "$EVENTS" =~ ^[0-9]+$ && "$EVENTS" -ge 1000 ]] || { echo "BENCH_EVENTS must be an integer >= 1000" >&2; exit 2; }
[[ "$WRITER_RATE" =~ ^[0-9]+$ && "$WRITER_RATE" -ge 2 ]] || { echo "BENCH_WRITER_RATE must be an integer >= 2" >&2; exit 2; }
for shape in $SHAPES; do
    [[ -f "bench/shapes/$shape.sql" ]] || { echo "no such shape: bench/shapes/$shape.sql" >&2; exit 2; }
done
PGBENCH=$(pg_config --bindir 2>/dev/null)/pgbench
[[ -x "$PGBENCH" ]] || PGBENCH=$(command -v pgbench) || { echo "pgbench not found (needed for complete() with writers)" >&2; exit 2; }

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
# or as the cluster's owner; otherwise the worker CPU and memory columns say n/a).
postmaster=$(head -1 "$(psql -X -Atqc 'SHOW data_directory')/postmaster.pid" 2>/dev/null) || true
if ! [[ "$postmaster" =~ ^[0-9]+$ ]]; then
    postmaster=
    echo "can not read the postmaster's pid from its data directory: no worker CPU or memory figures" >&2
fi

logdir=$(mktemp -d -t viewmig-bench.XXXXXX)
declare -A R   # results, keyed "<shape>:<name>"
started=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
writers=   # pid of a running pgbench, stopped if the script exits early
trap '[[ -z "$writers" ]] || kill -TERM "$writers" 2>/dev/null || true' EXIT

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

# timed <key> <psql args...>: a CHECKPOINT, then timed_call.
timed() {
    q -c 'CHECKPOINT' >>"$log" 2>&1 || die_with_log "CHECKPOINT before $1"
    timed_call "$@"
}

# timed_call <key> <psql args...>: one psql call; seconds in R[shape:key], the machine's average
# busy cores and steal cores during the call in R[shape:key:busy] and R[shape:key:steal], what it
# printed (unaligned) in $out, its stderr (NOTICEs) in $err, its start and end (epoch seconds) in
# $T0 and $T1.
timed_call() {
    local key=$1 c0 c1 rc=0
    shift
    echo "-- $key" >>"$log"
    c0=$(proc_stat_cpu)
    T0=$(date +%s.%N)
    out=$(q -At "$@" 2>"$logdir/step.err") || rc=$?
    T1=$(date +%s.%N)
    c1=$(proc_stat_cpu)
    err=$(<"$logdir/step.err")
    cat "$logdir/step.err" >>"$log"
    ((rc == 0)) || die_with_log "$key"
    echo "$out" >>"$log"
    R[$shape:$key]=$(awk -v a="$T0" -v b="$T1" 'BEGIN { printf "%.2f", b - a }')
    read -r "R[$shape:$key:busy]" "R[$shape:$key:steal]" < <(awk -v a="$T0" -v b="$T1" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" '
        BEGIN { split(c0, x, " "); split(c1, y, " "); d = (b - a) * hz
                if (d > 0) printf "%.2f %.2f\n", (y[1] - x[1]) / d, (y[2] - x[2]) / d; else print "n/a n/a" }')
    say "  $key: ${R[$shape:$key]} s"
}

# worker_cpu_sampler <file> <workers>: until sent TERM, reads utime + stime (/proc/<pid>/stat)
# and VmHWM and RssAnon (/proc/<pid>/status, kB) of every 'viewmig worker' process (children of
# this cluster's postmaster titled "... viewmig replay_initial for replay ...") every 0.1 s (pgrep
# only until it has seen <workers> of them: workers never restart), keeping each one's last CPU
# and VmHWM and its largest RssAnon; on TERM writes "<pid> <ticks> <VmHWM kB> <RssAnon kB>" lines
# to <file>.
worker_cpu_sampler() {
    local file=$1 want=$2 p line sfd k v
    local -A ticks=() hwm=() anon=()
    local -a f
    trap 'for p in "${!ticks[@]}"; do echo "$p ${ticks[$p]} ${hwm[$p]:-0} ${anon[$p]:-0}"; done >"$file"; exit 0' TERM
    exec {sfd}<> <(:)   # read -t on this is a sleep without a fork
    while :; do
        if [[ -n "$postmaster" ]] && ((${#ticks[@]} < want)); then
            for p in $(pgrep -P "$postmaster" -f 'viewmig replay_initial for replay' || true); do : "${ticks[$p]:=0}"; done
        fi
        for p in "${!ticks[@]}"; do
            { read -r line <"/proc/$p/stat"; } 2>/dev/null || continue
            read -r -a f <<<"${line##*) }"   # fields from 3 (state) on: utime is f[11], stime f[12]
            ticks[$p]=$((f[11] + f[12]))
            # VmHWM comes before RssAnon in the file; nothing after RssAnon is needed.
            while read -r k v _; do
                case $k in
                    VmHWM:) hwm[$p]=$v ;;
                    RssAnon:) ((v <= ${anon[$p]:-0})) || anon[$p]=$v; break ;;
                esac
            done 2>/dev/null <"/proc/$p/status" || true
        done
        read -r -t 0.1 -u "$sfd" || true
    done
}

# worker_timed <key> <workers> <psql args...>: timed, and of the worker processes: their CPU in
# R[shape:key:cpu] (seconds), how many the sampler saw in R[shape:key:nworkers], the largest VmHWM
# and RssAnon in R[shape:key:hwm] and R[shape:key:anon] (MB).
worker_timed() {
    local key=$1 nw=$2 sampler file=$logdir/$shape.$1.cpu
    shift 2
    worker_cpu_sampler "$file" "$nw" &
    sampler=$!
    timed "$key" "$@"
    kill -TERM "$sampler"
    wait "$sampler" || true
    R[$shape:$key:nworkers]=$(wc -l <"$file")
    read -r "R[$shape:$key:cpu]" "R[$shape:$key:hwm]" "R[$shape:$key:anon]" < <(awk -v hz="$CLK_TCK" '
        { s += $2; if ($3 > h) h = $3; if ($4 > a) a = $4 }
        END { if (NR) printf "%.2f %.0f %.0f\n", s / hz, h / 1024, a / 1024; else print "n/a n/a n/a" }' "$file")
}

div() { awk -v a="$1" -v b="$2" -v f="${3:-%.2f}" 'BEGIN { if (a ~ /^[0-9.]+$/ && b > 0) printf f, a / b; else printf "n/a" }'; }
add() { awk 'BEGIN { s = 0; for (i = 1; i < ARGC; i++) s += ARGV[i]; printf "%.2f", s }' "$@"; }

managed="ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags', 'view_schema.author_stats']::regclass[]"
baseline_tables="baseline_x.authors, baseline_x.posts, baseline_x.post_tags, baseline_x.author_stats"

# check_equal <key> <schema> <what>: the tables in <schema> against both baselines' (see
# "Equality checks" above); "yes" or "no" in R[shape:key], the comparison's lines in $diff.
check_equal() {
    local key=$1 built=$2 what=$3
    diff=$(q -At -F' ' -v built="$built" -f bench/compare.sql 2>>"$log") || die_with_log "compare $what"
    { echo "-- compare $built: $what"; echo "$diff"; } >>"$log"
    # 8 lines (2 baselines x 4 tables) "baseline table rows only_in_built only_in_baseline".
    R[$shape:$key]=$(awk 'NF == 5 { n++; if ($4 != 0 || $5 != 0) bad++; if ($3 > 0) filled++ }
                          END { print (n == 8 && !bad && filled) ? "yes" : "no" }' <<<"$diff")
    if [[ ${R[$shape:$key]} != yes ]]; then
        echo "tables differ in shape $shape, $what:" >&2
        echo "baseline table rows only_in_$built only_in_baseline" >&2
        echo "$diff" >&2
    fi
    say "shape $shape: $what: tables equal: ${R[$shape:$key]}"
}

# append_events <increment no>: appends exactly $INCREMENT events (bench_generate_increment) and
# brings both baselines' tables up to date with them (bench_catch_up); the events in the table
# before are kept in R[shape:history<no>], the count after in $events_now.
append_events() {
    local no=$1 n b
    R[$shape:history$no]=$events_now
    n=$(q -At -c "SELECT bench_generate_increment($no, $INCREMENT)" 2>>"$log") || die_with_log "increment $no"
    [[ "$n" == "$INCREMENT" ]] || die_with_log "increment $no: $n events appended, not $INCREMENT"
    for b in a b; do
        n=$(q -At -c "SELECT bench_catch_up('baseline_$b', $applied_id)" 2>>"$log") || die_with_log "baseline_$b catch-up"
        [[ "$n" == "$INCREMENT" ]] || die_with_log "baseline_$b caught up with $n events, not $INCREMENT"
    done
    applied_id=$(q -At -c 'SELECT max(id) FROM event_records' 2>>"$log") || die_with_log "max(id)"
    events_now=$(q -At -c 'SELECT count(*) FROM event_records' 2>>"$log") || die_with_log "count events"
    say "shape $shape: increment $no: $INCREMENT events appended, $events_now in all; baselines caught up"
}

# complete_notice <key>: from complete()'s NOTICE in $err, the events replayed before and under the
# lock, the lock attempts and the ms from the first lock attempt to the swap.
complete_notice() {
    read -r "R[$shape:$1:before_lock]" "R[$shape:$1:under_lock]" < <(
        sed -n 's/.* \([0-9]*\) events replayed before the lock, \([0-9]*\) under it.*/\1 \2/p' <<<"$err" | tail -1; echo)
    read -r "R[$shape:$1:attempts]" "R[$shape:$1:lock_ms]" < <(
        sed -n 's/.*Locks taken after \([0-9]*\) attempt(s); \([0-9]*\) ms from first lock attempt to swap.*/\1 \2/p' <<<"$err" | tail -1; echo)
}

# complete_with_writers <key>: SELECT viewmig.complete() of the prepared replay while pgbench writes
# events (see the header); the stall figures in R[shape:key:...].
complete_with_writers() {
    local key=$1 prefix=$logdir/$shape.writers script=$logdir/writer.sql
    echo "INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json) VALUES (gen_random_uuid(), 1, 'AuthorCreated', '{\"name\": \"writer\"}');" >"$script"
    q -c 'CHECKPOINT' >>"$log" 2>&1 || die_with_log "CHECKPOINT before $key"
    "$PGBENCH" -n -c 2 -j 2 -T 3600 --rate="$WRITER_RATE" -f "$script" -l --log-prefix="$prefix" "$db" \
        >"$logdir/$shape.pgbench.out" 2>&1 &
    writers=$!
    sleep 1.2
    kill -0 "$writers" 2>/dev/null || { cat "$logdir/$shape.pgbench.out" >>"$log"; die_with_log "pgbench ended early"; }
    timed_call "$key" -c 'SELECT viewmig.complete()'
    R[$shape:$key:events]=$out
    complete_notice "$key"
    # pgbench writes its log through a stdio buffer (4 kB, ~120 lines) per client, and SIGTERM loses
    # what is in it: wait until each client has logged at least 300 lines more (1 s at the default rate).
    sleep "$(awk -v r="$WRITER_RATE" 'BEGIN { w = 600 / r; printf "%.1f", (w > 1 ? w : 1) }')"
    kill -TERM "$writers" 2>/dev/null || true
    wait "$writers" 2>/dev/null || true
    writers=
    # Log lines "client tx latency_us script epoch_s epoch_us schedule_lag_us"; every client's log
    # must go on past the call's end, or a stalled transaction may be missing.
    cat "$logdir/$shape.pgbench.out" >>"$log"
    read -r "R[$shape:$key:writes]" "R[$shape:$key:overlapping]" "R[$shape:$key:stall_ms]" \
            "R[$shape:$key:before]" "R[$shape:$key:before_ms]" "R[$shape:$key:short_logs]" < <(
        awk -v t0="$T0" -v t1="$T1" '
            NF >= 6 { n++; end = $5 + $6 / 1e6; start = end - $3 / 1e6
                      if (end > last[FILENAME]) last[FILENAME] = end
                      if (start < t1 && end > t0) { o++; if ($3 > om) om = $3 }
                      else if (end >= t0 - 1 && end < t0) { r++; if ($3 > rm) rm = $3 } }
            END { for (f in last) if (last[f] <= t1) short++
                  printf "%d %d %s %d %s %d\n", n, o, o ? sprintf("%.1f", om / 1000) : "n/a",
                         r, r ? sprintf("%.1f", rm / 1000) : "n/a", short }' "$prefix".* 2>/dev/null || echo 0)
    ((${R[$shape:$key:writes]:-0} > 0)) || die_with_log "pgbench logged no transactions"
    ((${R[$shape:$key:short_logs]:-0} == 0)) ||
        die_with_log "${R[$shape:$key:short_logs]} pgbench client log(s) end before complete() returned: raise BENCH_WRITER_RATE"
    say "shape $shape: complete() with writers: ${R[$shape:$key:overlapping]} writes overlapped it, longest ${R[$shape:$key:stall_ms]} ms (the second before: ${R[$shape:$key:before_ms]} ms)"
}

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
    # The events the baselines reflect (max id) and the events in the table now.
    applied_id=$(q -At -c 'SELECT max(id) FROM event_records' 2>>"$log") || die_with_log "max(id)"
    events_now=${R[$shape:events]}
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
        R[$shape:baseline_$b:events]=$events_now
        # So that autovacuum has nothing left to do on them while later steps are timed; timed
        # too, as the counterpart of the VACUUM ANALYZE in viewmig's prepare_completion.
        timed "vacuum_$b" -c "VACUUM (ANALYZE) ${baseline_tables//baseline_x/baseline_$b}"
    done

    # The viewmig lifecycle with the per-event handler, into view_schema.
    q -c "SELECT viewmig.set_event_store('event_records')" \
      -c "SELECT viewmig.register_projector('bench', 'bench_projector(event_records)', $managed)" \
        >>"$log" 2>&1 || die_with_log "register"
    timed prepare_initial -c 'SELECT viewmig.prepare_initial()'
    timed replay_initial -c "SELECT viewmig.replay_initial(batch_size => $BATCH)"
    R[$shape:replay_initial:events]=$out
    [[ "$out" == "$events_now" ]] || die_with_log "replay_initial replayed $out events of $events_now"
    R[$shape:groups]=$(q -At -c 'SELECT groups_total FROM viewmig.status LIMIT 1' 2>>"$log")
    R[$shape:deferred]=$(q -At -c "SELECT count(*) FROM viewmig.replay_deferred_ddl WHERE kind = 'index'" 2>>"$log")
    check_equal equal replay_schema "replay_initial (per-event handler), before the increment"
    R[$shape:rows]=$(awk '$1 == "baseline_a" { printf "%s%s %s", sep, $2, $3; sep = ", " }' <<<"$diff")
    append_events 1
    timed replay_increment -c 'SELECT viewmig.replay_increment()'
    R[$shape:increment_events]=$out
    [[ "$out" == "$INCREMENT" ]] || die_with_log "replay_increment replayed $out events, not the $INCREMENT appended"
    timed prepare_completion -c 'SELECT viewmig.prepare_completion()'
    timed complete -c 'SELECT viewmig.complete()'
    R[$shape:complete:events]=$out
    complete_notice complete
    check_equal equal_complete view_schema "view_schema after complete (history + increment 1)"

    # Parallel replay: replay_initial again on the same events, with 1 and then 2 workers, each
    # from a fresh prepare_initial, into replay_schema; its tables are compared with the baselines'.
    local w
    for w in 1 2; do
        q -c 'SELECT viewmig.prepare_initial()' >>"$log" 2>&1 || die_with_log "prepare_initial before workers => $w"
        worker_timed "replay_w$w" "$w" -c "SELECT viewmig.replay_initial(batch_size => $BATCH, workers => $w)"
        R[$shape:replay_w$w:events]=$out
        [[ "$out" == "$events_now" ]] ||
            die_with_log "replay_initial(workers => $w) replayed $out events of $events_now"
        R[$shape:replay_w$w:retries]=$(sed -n 's/.*replay_initial: \([0-9]*\) batches were replayed again.*/\1/p' <<<"$err" | tail -1)
        R[$shape:replay_w$w:early]=$(sed -n 's/.*replay_initial: \([0-9]*\) of \([0-9]*\) batches were committed early.*/\1\/\2/p' <<<"$err" | tail -1)
        check_equal "equal_w$w" replay_schema "replay_initial(workers => $w)"
        say "shape $shape: workers => $w: ${R[$shape:replay_w$w:cpu]} worker CPU s, VmHWM ${R[$shape:replay_w$w:hwm]} MB"
        q -c 'SELECT viewmig.abort()' >>"$log" 2>&1 || die_with_log "abort after workers => $w"
    done

    # Batch projector: the same tables from bench_batch, the set-based handler of
    # bench/batch_projector.sql (mode => 'batch'), one worker, into replay_schema.
    q -c "SELECT viewmig.register_projector('bench', 'bench_batch(event_records[])', $managed, mode => 'batch')" \
        >>"$log" 2>&1 || die_with_log "register the batch projector"
    q -c 'SELECT viewmig.prepare_initial()' >>"$log" 2>&1 || die_with_log "prepare_initial before the batch projector"
    timed replay_batch -c "SELECT viewmig.replay_initial(batch_size => $BATCH)"
    R[$shape:replay_batch:events]=$out
    [[ "$out" == "$events_now" ]] || die_with_log "the batch projector replayed $out events of $events_now"
    check_equal equal_batch replay_schema "batch projector"
    q -c 'SELECT viewmig.abort()' >>"$log" 2>&1 || die_with_log "abort after the batch projector"

    # The practical ceiling: hand-written set-based SQL over all events (bench/set_based.sql).
    q -c "SELECT bench_copy_tables('set_based')" >>"$log" 2>&1 || die_with_log "set_based tables"
    timed set_based -v target=set_based -f bench/set_based.sql
    R[$shape:set_based:events]=$events_now
    check_equal equal_set set_based "set-based SQL"

    # Declarative projector: the rules of bench/declarative_rules.sql as a new version of 'bench'
    # (\gset variables live in one psql session: the SELECT comes in the same call, from stdin).
    q -f bench/declarative_rules.sql -f - >>"$log" 2>&1 <<<"SELECT viewmig.register_declarative_projector('bench', :'rules', $managed);" ||
        die_with_log "register the declarative projector"
    for w in 1 2; do
        q -c 'SELECT viewmig.prepare_initial()' >>"$log" 2>&1 || die_with_log "prepare_initial before declarative workers => $w"
        worker_timed "replay_decl_w$w" "$w" -c "SELECT viewmig.replay_initial(batch_size => $BATCH, workers => $w)"
        R[$shape:replay_decl_w$w:events]=$out
        [[ "$out" == "$events_now" ]] ||
            die_with_log "declarative replay_initial(workers => $w) replayed $out events of $events_now"
        R[$shape:replay_decl_w$w:retries]=$(sed -n 's/.*replay_initial: \([0-9]*\) batches were replayed again.*/\1/p' <<<"$err" | tail -1)
        check_equal "equal_decl_w$w" replay_schema "declarative replay_initial(workers => $w)"
        say "shape $shape: declarative, workers => $w: ${R[$shape:replay_decl_w$w:cpu]} worker CPU s, VmHWM ${R[$shape:replay_decl_w$w:hwm]} MB"
        if ((w == 1)); then
            append_events 2
            timed decl_increment -c 'SELECT viewmig.replay_increment()'
            R[$shape:decl_increment_events]=$out
            [[ "$out" == "$INCREMENT" ]] ||
                die_with_log "declarative replay_increment replayed $out events, not the $INCREMENT appended"
            check_equal equal_decl_increment replay_schema "declarative replay_increment (history + increments 1 and 2)"
            q -c 'SELECT viewmig.abort()' >>"$log" 2>&1 || die_with_log "abort after the declarative projector"
        fi
    done

    # Last, after every check: complete() of the 2-worker declarative replay with concurrent writers.
    q -c 'SELECT viewmig.prepare_completion()' >>"$log" 2>&1 || die_with_log "prepare_completion before complete() with writers"
    complete_with_writers complete_writers

    [[ -n "${BENCH_KEEP:-}" ]] || psql -X -q -d postgres -c "DROP DATABASE $db" >>"$log" 2>&1 || true
}

report() {
    local s=$1 ev=${R[$1:events]} a=${R[$1:baseline_a]} b=${R[$1:baseline_b]} v=${R[$1:replay_initial]}
    local total
    total=$(add "${R[$s:prepare_initial]}" "$v" "${R[$s:replay_increment]}" "${R[$s:prepare_completion]}" "${R[$s:complete]}")
    local description
    description=$(sed -n '1s/^-- Shape "[^"]*": //p' "bench/shapes/$s.sql")
    # rate <key>: events/s of a timed run; speedup <key> <over key>: the ratio of their events/s.
    rate() { div "${R[$s:$1:events]}" "${R[$s:$1]}" %.0f; }
    speedup() {
        awk -v e1="${R[$s:$1:events]}" -v t1="${R[$s:$1]}" -v e0="${R[$s:$2:events]}" -v t0="${R[$s:$2]}" \
            'BEGIN { if (e1 > 0 && t1 > 0 && e0 > 0 && t0 > 0) printf "%.2fx", (e1 / t1) / (e0 / t0); else printf "n/a" }'
    }
    echo
    echo "== shape $s: $description"
    printf '   %-44s %12s\n' "events" "$ev"
    printf '   %-44s %12s   (%s authors, %s posts)\n' "aggregates" "${R[$s:aggregates]}" "${R[$s:authors]}" "${R[$s:posts]}"
    printf '   %-44s %12s   (author_stats row of the busiest author; its authors row: %s)\n' \
        "max updates of one row" "${R[$s:max_updates]}" "${R[$s:max_updates_authors]}"
    printf '   %-44s %s\n' "rows built" "${R[$s:rows]}"
    printf '   %-44s %12s   (before the two timed replay_increment calls; later runs replay them too)\n' \
        "events appended later" "2 x $INCREMENT"
    echo
    printf '   %-66s %8s %9s %10s\n' "replaying every event through bench_projector" "events" "seconds" "events/s"
    printf '   %-66s %8s %9s %10s\n' "baseline A  DO loop, one transaction" "${R[$s:baseline_a:events]}" "$a" "$(rate baseline_a)"
    printf '   %-66s %8s %9s %10s\n' "baseline B  procedure loop, COMMIT every $BATCH events" "${R[$s:baseline_b:events]}" "$b" "$(rate baseline_b)"
    printf '   %-66s %8s %9s %10s\n' "viewmig     replay_initial, 1 worker, ${R[$s:groups]} groups of ~$BATCH events" \
        "${R[$s:replay_initial:events]}" "$v" "$(rate replay_initial)"
    printf '   %-75s %9s\n' "viewmig/loop-1tx speed-up (baseline A s / replay_initial s)" "$(div "$a" "$v")x"
    printf '   %-75s %9s\n' "viewmig/loop-commit speed-up (baseline B s / replay_initial s)" "$(div "$b" "$v")x"
    printf '   %-66s %8s %9s %10s\n' "viewmig     batch projector (set-based bench_batch), 1 worker" \
        "${R[$s:replay_batch:events]}" "${R[$s:replay_batch]}" "$(rate replay_batch)"
    printf '   %-75s %9s\n' "batch/loop-1tx speed-up (batch events/s / baseline A events/s)" "$(speedup replay_batch baseline_a)"
    printf '   %-75s %9s\n' "batch/per-event speed-up (batch events/s / replay_initial events/s)" "$(speedup replay_batch replay_initial)"
    printf '   %-66s %8s %9s %10s\n' "ceiling     hand-written set-based SQL, all events at once" \
        "${R[$s:set_based:events]}" "${R[$s:set_based]}" "$(rate set_based)"
    printf '   %-75s %9s\n' "batch projector / set-based SQL (set-based s / batch s; 1.00 = ceiling)" \
        "$(speedup replay_batch set_based)"
    echo "   (the baselines maintain every index while they loop; replay_initial maintains only"
    echo "    primary keys and unique constraints, and prepare_completion builds the other indexes)"
    echo
    printf '   %-66s %9s\n' "viewmig lifecycle step" "seconds"
    printf '   %-66s %9s\n' "prepare_initial     replay schema with empty copies" "${R[$s:prepare_initial]}"
    printf '   %-66s %9s\n' "replay_initial      as above" "$v"
    printf '   %-66s %9s\n' "replay_increment    ${R[$s:increment_events]} events appended after replay_initial" "${R[$s:replay_increment]}"
    printf '   %-66s %9s\n' "prepare_completion  ${R[$s:deferred]} deferred indexes, VACUUM ANALYZE" "${R[$s:prepare_completion]}"
    printf '   %-66s %9s\n' "complete            lock, last increment (${R[$s:complete:events]} events), swap" "${R[$s:complete]}"
    printf '   %-66s %9s\n' "all five steps (the history and the $INCREMENT appended events)" "$total"
    printf '   %-66s %9s\n' "baseline A + VACUUM ANALYZE of its tables (the history)" "$(add "$a" "${R[$s:vacuum_a]}")"
    printf '   %-66s %9s\n' "baseline B + VACUUM ANALYZE of its tables (the history)" "$(add "$b" "${R[$s:vacuum_b]}")"
    printf '   %-66s %9s\n' "viewmig all steps vs baseline A + VACUUM ANALYZE speed-up" "$(div "$(add "$a" "${R[$s:vacuum_a]}")" "$total")x"
    printf '   %-66s %9s\n' "viewmig all steps vs baseline B + VACUUM ANALYZE speed-up" "$(div "$(add "$b" "${R[$s:vacuum_b]}")" "$total")x"
    printf '   %-66s %9s\n' "complete: ms from its first lock attempt to the swap (NOTICE)" "${R[$s:complete:lock_ms]:-n/a}"
    echo
    printf '   %-66s %9s %10s\n' "replay_increment latency for $INCREMENT new events over the N-event history" "seconds" "events/s"
    printf '   %-66s %9s %10s\n' "  per-event handler bench_projector (lifecycle), N = ${R[$s:history1]}" \
        "${R[$s:replay_increment]}" "$(div "${R[$s:increment_events]}" "${R[$s:replay_increment]}" %.0f)"
    printf '   %-66s %9s %10s\n' "  declarative, generated PL/pgSQL handler, N = ${R[$s:history2]}" \
        "${R[$s:decl_increment]}" "$(div "${R[$s:decl_increment_events]}" "${R[$s:decl_increment]}" %.0f)"
    echo
    local fmt='   %-30s %7s %8s %8s %8s %7s %6s %7s %5s %7s %9s %6s %6s %5s\n' w k
    printf "$fmt" "parallel replay_initial" "seconds" "events" "events/s" "speed-up" "worker" "worker" "machine" "steal" "retried" "early" "VmHWM" "anon" "equal"
    printf "$fmt" " (fresh prepare_initial each)" "" "" "" "" "CPU s" "cores" "cores" "cores" "batches" "/batches" "MB" "MB" ""
    for w in 1 2; do
        k=$s:replay_w$w
        printf "$fmt" "replay_initial(workers => $w)" "${R[$k]}" "${R[$k:events]}" "$(rate "replay_w$w")" \
            "$(speedup "replay_w$w" replay_w1)" "${R[$k:cpu]}" "$(div "${R[$k:cpu]}" "${R[$k]}")" "${R[$k:busy]}" \
            "${R[$k:steal]}" "${R[$k:retries]:-0}" "${R[$k:early]:-0}" "${R[$k:hwm]}" "${R[$k:anon]}" "${R[$s:equal_w$w]}"
    done
    printf '   %-66s %9s\n' "speed-up with 2 workers (workers => 1 s / workers => 2 s)" "$(speedup replay_w2 replay_w1)"
    printf '   %-66s %9s\n' "worker CPU with 2 workers / with 1 (1.00: no extra work)" "$(div "${R[$s:replay_w2:cpu]}" "${R[$s:replay_w1:cpu]}")"
    printf '   %-66s %9s\n' "peak worker memory (VmHWM, MB), workers => 1 / => 2" "${R[$s:replay_w1:hwm]} / ${R[$s:replay_w2:hwm]}"
    [[ ${R[$s:replay_w2:nworkers]} == 2 && ${R[$s:replay_w1:nworkers]} == 1 ]] ||
        echo "   (the CPU sampler saw ${R[$s:replay_w1:nworkers]} and ${R[$s:replay_w2:nworkers]} worker processes; one that ends within 0.1 s is missed)"
    echo
    fmt='   %-30s %7s %8s %8s %6s %7s %7s %6s %7s %5s %7s %6s %6s %5s\n'
    printf "$fmt" "declarative projector" "seconds" "events" "events/s" "vs A" "vs ceil" "worker" "worker" "machine" "steal" "retried" "VmHWM" "anon" "equal"
    printf "$fmt" " replay_initial (engine)" "" "" "" "" "" "CPU s" "cores" "cores" "cores" "batches" "MB" "MB" ""
    for w in 1 2; do
        k=$s:replay_decl_w$w
        printf "$fmt" "replay_initial(workers => $w)" "${R[$k]}" "${R[$k:events]}" "$(rate "replay_decl_w$w")" \
            "$(speedup "replay_decl_w$w" baseline_a)" "$(speedup "replay_decl_w$w" set_based)" "${R[$k:cpu]}" \
            "$(div "${R[$k:cpu]}" "${R[$k]}")" "${R[$k:busy]}" "${R[$k:steal]}" "${R[$k:retries]:-0}" "${R[$k:hwm]}" \
            "${R[$k:anon]}" "${R[$s:equal_decl_w$w]}"
    done
    local ceiling
    ceiling=$(speedup replay_decl_w1 set_based)
    printf '   %-66s %9s   (target >= 1.20: %s)\n' "declarative / set-based SQL, 1 worker (set-based s / declarative s)" "$ceiling" \
        "$(awk -v r="${ceiling%x}" 'BEGIN { if (r !~ /^[0-9.]+$/) print "n/a"; else print (r >= 1.2) ? "met" : "NOT met" }')"
    printf '   %-66s %9s\n' "declarative/loop-1tx speed-up, 1 worker (vs A: events/s ratio)" "$(speedup replay_decl_w1 baseline_a)"
    printf '   %-66s %9s\n' "declarative/per-event speed-up, 1 worker (vs replay_initial)" "$(speedup replay_decl_w1 replay_initial)"
    printf '   %-66s %9s\n' "speed-up with 2 workers (events/s workers => 2 / workers => 1)" "$(speedup replay_decl_w2 replay_decl_w1)"
    printf '   %-66s %9s\n' "worker CPU with 2 workers / with 1 (1.00: no extra work)" "$(div "${R[$s:replay_decl_w2:cpu]}" "${R[$s:replay_decl_w1:cpu]}")"
    printf '   %-66s %9s\n' "peak worker memory (VmHWM, MB), workers => 1 / => 2" "${R[$s:replay_decl_w1:hwm]} / ${R[$s:replay_decl_w2:hwm]}"
    printf '   %-66s %9s\n' "tables equal after its replay_increment (+ $INCREMENT events)" "${R[$s:equal_decl_increment]}"
    [[ ${R[$s:replay_decl_w2:nworkers]} == 2 && ${R[$s:replay_decl_w1:nworkers]} == 1 ]] ||
        echo "   (the CPU sampler saw ${R[$s:replay_decl_w1:nworkers]} and ${R[$s:replay_decl_w2:nworkers]} worker processes; one that ends within 0.1 s is missed)"
    echo "   (vs A, vs ceil: events/s over baseline A's and over the set-based SQL's; worker CPU and memory:"
    echo "    utime+stime, VmHWM and RssAnon of the worker processes; machine cores: busy cores of the whole"
    echo "    machine during the call, from /proc/stat; VmHWM counts the shared buffers a worker touched:"
    echo "    see the header of bench/run.sh)"
    echo
    k=$s:complete_writers
    echo "   complete() with 2 concurrent event writers (pgbench, $WRITER_RATE inserts/s in all), of the"
    echo "    declarative projector's 2-worker replay after prepare_completion"
    printf '   %-66s %9s\n' "complete() seconds" "${R[$k]}"
    printf '   %-66s %9s\n' "events complete() replayed: before the lock / under it" "${R[$k:before_lock]:-n/a} / ${R[$k:under_lock]:-n/a}"
    printf '   %-66s %9s\n' "lock attempts; ms from the first lock attempt to the swap" "${R[$k:attempts]:-n/a}; ${R[$k:lock_ms]:-n/a}"
    printf '   %-66s %9s\n' "writer transactions overlapping the call (of ${R[$k:writes]} logged)" "${R[$k:overlapping]}"
    printf '   %-66s %9s\n' "longest writer stall: max latency of those, ms" "${R[$k:stall_ms]}"
    printf '   %-66s %9s\n' "reference: max latency in the second before the call, ms (${R[$k:before]} tx)" "${R[$k:before_ms]}"
    echo
    echo "   tables equal: ${R[$s:equal]}   (replay_schema after the lifecycle's replay_initial vs baseline A's and"
    echo "    baseline B's tables: authors, posts, post_tags, author_stats; every column but the serial"
    echo "    post_tags.line; an empty table only where the baseline's is empty too. Checked the same way:"
    echo "    view_schema after complete, with the first $INCREMENT appended events: ${R[$s:equal_complete]};"
    echo "    the parallel and declarative runs' replay_schema tables, column \"equal\";"
    echo "    batch projector's tables: ${R[$s:equal_batch]}, set-based SQL's: ${R[$s:equal_set]})"
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
    for k in equal equal_complete equal_w1 equal_w2 equal_batch equal_set equal_decl_w1 equal_decl_increment equal_decl_w2; do
        [[ ${R[$shape:$k]} == yes ]] || { status=1; echo "   NOT EQUAL: $k"; }
    done
done
echo
echo "total run time: $(( $(date +%s) - started )) s (including generating the events and checking the tables)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the times)"
if [[ $status -eq 0 && -z "${BENCH_KEEP:-}" ]]; then rm -rf "$logdir"; else echo "logs kept in $logdir"; fi
exit $status
