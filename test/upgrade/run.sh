#!/usr/bin/env bash
# The upgrade test (issue 14, class 14): ALTER EXTENSION viewmig UPDATE from the previous release,
# on a cluster whose state that release's own code made, then the work that state was waiting for.
#
#   test/upgrade/run.sh        # as root, after `make install` of the current build (run_all.sh does both)
#
#  1. Builds the previous release (commit $VIEWMIG_UPGRADE_FROM, default d1d10da = 1.0) from
#     `git archive` in a temporary folder, once: the build is cached in
#     ${VIEWMIG_UPGRADE_CACHE:-~/.cache/viewmig-upgrade}/<commit>-pg<version>/.
#  2. In a private mount namespace (unshare -m) whose PostgreSQL library and extension folders are
#     private copies holding the previous release instead of the installed build, initdb's a
#     cluster (as user postgres) and runs test/upgrade/old_state.sql there: projectors, a replay in
#     progress, a queued job, a delayed schema migration, view-schema definitions. Stops it.
#  3. Outside the namespace, with the current build installed and preloaded (its launcher serving
#     the database), starts the same cluster: the launcher must start nothing on the old catalog;
#     ALTER EXTENSION viewmig UPDATE must carry every row over (test/upgrade/state.sql) and reach
#     the installed default_version; the launcher then runs the queued job; the replay completes
#     and equals a rebuild from scratch; live projection, the delayed migration and a full replay
#     work; and the updated catalog equals a fresh CREATE EXTENSION's (test/upgrade/catalog.sql).
# Nothing here names a version or an object of the upgrade script: the checks compare states, so
# whatever a later upgrade script adds goes through them.
#
# Prints "ok - ..." / "not ok - ..." per check and ends with "upgrade: N passed, N failed"
# (test/run_all.sh counts the whole file as one test). VIEWMIG_UPGRADE_KEEP=1 keeps the cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
pg_config=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
[[ -x "$pg_config" ]] || pg_config=$(command -v pg_config)
bindir=$("$pg_config" --bindir)
pkglibdir=$("$pg_config" --pkglibdir)
extdir=$("$pg_config" --sharedir)/extension
from=${VIEWMIG_UPGRADE_FROM:-d1d10da}
port=${VIEWMIG_UPGRADE_PORT:-54391}

# ---- phase "old", run by this script inside its mount namespace: $2 = work dir, $3 = build ----
if [[ ${1:-} == --old-phase ]]; then
    work=$2 build=$3
    mount --bind "$work/lib" "$pkglibdir"
    mount --bind "$work/ext" "$extdir"
    as_pg() { runuser -u postgres -- "$@"; }
    as_pg "$bindir/initdb" -D "$work/data" -A trust -U postgres --no-sync >"$work/initdb.log" 2>&1
    cat >>"$work/data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work/sock'
port = $port
max_worker_processes = 16
shared_buffers = 16MB
fsync = off
EOF
    as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/old.log" -w start >/dev/null
    trap 'as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true' EXIT
    as_pg "$bindir/createdb" -h "$work/sock" -p "$port" app
    as_pg "$bindir/psql" -X -q -h "$work/sock" -p "$port" -d app -v fixtures="$work/fixtures" -v here="$work/sql" \
        -f "$work/sql/old_state.sql" >"$work/old_state.log" 2>&1 || { cat "$work/old_state.log"; exit 1; }
    as_pg "$bindir/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null
    trap - EXIT
    exit 0
fi

passed=0
failed=0
finished=
finish() {
    finished=1
    echo "upgrade: $passed passed, $failed failed"
    [[ $failed -eq 0 ]]
    exit
}
fail() {  # a precondition: nothing more can be checked
    echo "not ok - $*"
    failed=$((failed + 1))
    finish
}
check() {  # check <label> <expected> <got>
    if [[ "$2" == "$3" ]]; then
        echo "ok - $1"
        passed=$((passed + 1))
    else
        echo "not ok - $1"
        echo "#   expected: $2"
        echo "#   got:      $3"
        failed=$((failed + 1))
    fi
}

[[ $(id -u) -eq 0 ]] || fail "test/upgrade/run.sh must run as root (it uses unshare -m and runs the clusters as user postgres)"
id postgres >/dev/null 2>&1 || fail "there is no user postgres to run the clusters as"
cmp -s "$repo/viewmig.control" "$extdir/viewmig.control" && [[ -f "$pkglibdir/viewmig.so" ]] ||
    fail "the current build is not installed ($extdir/viewmig.control differs from the repository's): run make install first"

# ---- 1. The previous release's build (cached by commit). ----
commit=$(git -C "$repo" rev-parse --verify -q "$from^{commit}") ||
    fail "commit $from (the release to upgrade from) is not in this clone ($repo): a shallow clone? Run: git -C $repo fetch --unshallow (or git fetch origin $from)"
pg_version=$("$pg_config" --version | sed -E 's/^[^0-9]*([0-9]+).*/\1/')   # the major version
build=${VIEWMIG_UPGRADE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/viewmig-upgrade}/$commit-pg$pg_version
if [[ ! -f "$build/complete" ]]; then
    echo "# building $from ($commit) into $build"
    staging=$(mktemp -d "$(dirname "$build")/.build.XXXXXX" 2>/dev/null) ||
        { mkdir -p "$(dirname "$build")"; staging=$(mktemp -d "$(dirname "$build")/.build.XXXXXX"); }
    mkdir "$staging/src"
    git -C "$repo" archive "$commit" | tar -x -C "$staging/src"
    if ! { make -C "$staging/src" -s -j"$(nproc)" PG_CONFIG="$pg_config" &&
           make -C "$staging/src" -s install PG_CONFIG="$pg_config" DESTDIR="$staging/root"; } >"$staging/build.log" 2>&1; then
        tail -40 "$staging/build.log"
        fail "building $from failed (log: $staging/build.log)"
    fi
    cp -r "$staging/src/test/fixtures" "$staging/fixtures"
    rm -rf "$staging/src"
    touch "$staging/complete"
    # Another run may have finished the same build meanwhile: keep the first.
    mv -T "$staging" "$build" 2>/dev/null || rm -rf "$staging"
else
    echo "# using the cached build of $from: $build"
fi
[[ -f "$build/root$pkglibdir/viewmig.so" ]] || fail "the build of $from has no viewmig.so under $build/root$pkglibdir"

# ---- 2. The old release's cluster and state, in a private mount namespace. ----
work=$(mktemp -d /tmp/viewmig_upgrade.XXXXXX)
chmod 755 "$work"
mkdir "$work/sock" "$work/sql"
cp -r "$build/fixtures" "$work/fixtures"     # readable by postgres, unlike a cache under /root
cp "$here"/*.sql "$work/sql/"
chown postgres: "$work/sock"
cp -a "$pkglibdir" "$work/lib"
cp -a "$extdir" "$work/ext"
rm -f "$work/lib/viewmig.so" "$work/ext"/viewmig.control "$work/ext"/viewmig--*.sql
cp -a "$build/root$pkglibdir/." "$work/lib/"
cp -a "$build/root$extdir/." "$work/ext/"
mkdir "$work/data"
chown postgres: "$work/data"
chmod 700 "$work/data"
touch "$work/old.log" && chown postgres: "$work/old.log" "$work"
if ! unshare -m --propagation private bash "$0" --old-phase "$work" "$build"; then
    tail -30 "$work/old.log"
    fail "the previous release could not make its state (logs in $work)"
fi
echo "ok - the previous release ($from) made its state: projectors, a replay in progress, a queued job, a delayed migration"
passed=$((passed + 1))

# ---- 3. The current build on the same cluster. ----
as_pg() { runuser -u postgres -- "$@"; }
export PGOPTIONS='-c client_min_messages=warning'
q() {  # q <database> <sql>...: each statement in a transaction of its own; prints the values
    local db=$1 args=() sql
    shift
    for sql in "$@"; do args+=(-c "$sql"); done
    as_pg "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$work/sock" -p "$port" -d "$db" "${args[@]}"
}
wait_for() {  # wait_for <database> <sql returning true when done> [seconds]
    local i
    for ((i = 0; i < ${3:-120} * 5; i++)); do
        [[ $(q "$1" "$2" 2>/dev/null) == t ]] && return 0
        sleep 0.2
    done
    return 1
}
stop_cluster() {
    as_pg "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
    if [[ -z $finished ]]; then   # set -e ended the script at a command that failed
        failed=$((failed + 1))
        echo "not ok - a step failed unexpectedly (its error is above; server log: $work/new.log)"
        echo "upgrade: $passed passed, $failed failed"
    fi
    if [[ $failed -eq 0 && -z "${VIEWMIG_UPGRADE_KEEP:-}" ]]; then rm -rf "$work"; else echo "# cluster and logs kept in $work"; fi
}
trap stop_cluster EXIT
cat >>"$work/data/postgresql.conf" <<EOF
shared_preload_libraries = 'viewmig'
viewmig.database = 'app'
viewmig.naptime = '1s'
EOF
as_pg "$bindir/pg_ctl" -D "$work/data" -l "$work/new.log" -w start >/dev/null || { tail -30 "$work/new.log"; fail "the cluster does not start with the current build"; }

wait_for app "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'viewmig launcher'" 30 ||
    fail "the current build's launcher does not start"
sleep 3   # three launcher rounds
check "the launcher starts nothing while the catalog is not updated (the queued job waits)" \
    "enqueued" "$(q app "SELECT string_agg(status, ',') FROM viewmig.jobs")"
check "the launcher says why it waits" "1" "$(grep -c 'no jobs or schema migrations start until it is updated' "$work/new.log" || true)"

# ALTER EXTENSION viewmig UPDATE carries every row over. The state after it is read in its own
# transaction: the launcher may start the queued job as soon as the update commits.
q app "SELECT * FROM upgrade_check.state()" >"$work/state_before.txt"
if ! as_pg "$bindir/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$work/sock" -p "$port" -d app -c "BEGIN" \
        -c "ALTER EXTENSION viewmig UPDATE" -c "SELECT * FROM upgrade_check.state()" -c "COMMIT" \
        >"$work/state_after.txt" 2>"$work/update.log"; then
    cat "$work/update.log"
    fail "ALTER EXTENSION viewmig UPDATE failed"
fi
echo "ok - ALTER EXTENSION viewmig UPDATE"
passed=$((passed + 1))
check "the extension is at the installed default_version" "t" \
    "$(q app "SELECT e.extversion = a.default_version FROM pg_extension e JOIN pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'viewmig'")"
state_diff=$(diff "$work/state_before.txt" "$work/state_after.txt" || true)
check "every catalog row is carried over ($(wc -l <"$work/state_before.txt") lines of state)" "" "$state_diff"
check "the queued job is still there after the update" "replay_increment" \
    "$(q app "SELECT string_agg(kind, ',') FROM viewmig.jobs")"

# The launcher runs the queued job (the replay's increment).
wait_for app "SELECT status IN ('succeeded', 'failed', 'cancelled') FROM viewmig.jobs" 120 || true
check "the launcher ran the queued replay_increment job" "succeeded" \
    "$(q app "SELECT status || coalesce(' ' || last_error, '') FROM viewmig.jobs")"

# The replay in progress goes on to complete().
compare_blog="SELECT rebuild_from_scratch('view_schema', 'expected', ARRAY['authors', 'posts', 'post_tags'], 'blog_projector');
              SELECT string_agg(table_name || ':' || only_in_a || ':' || only_in_b, ' ' ORDER BY table_name)
              FROM compare_schemas('view_schema', 'expected', ARRAY['authors', 'posts', 'post_tags'])"
compare_decl3="SELECT rebuild_from_scratch('view_schema', 'expected3', ARRAY['d_seen', 'd_log'], 'decl3_reference');
               SELECT string_agg(table_name || ':' || only_in_a || ':' || only_in_b, ' ' ORDER BY table_name)
               FROM compare_schemas('view_schema', 'expected3', ARRAY['d_seen', 'd_log'])"
same_blog="authors:0:0 post_tags:0:0 posts:0:0"
same_decl3="d_log:0:0 d_seen:0:0"
out=$(q app "SELECT viewmig.prepare_completion()" "SELECT viewmig.complete()" 2>&1) || echo "# $out"
check "the replay begun before the update completes" "completed" \
    "$(q app "SELECT state FROM viewmig.replays ORDER BY id DESC LIMIT 1")"
check "the pending blog version became active" "1 retired,2 active" \
    "$(q app "SELECT string_agg(version || ' ' || status, ',' ORDER BY version) FROM viewmig.projector_versions WHERE projector = 'blog'")"
check "blog tables equal a rebuild from scratch" "$same_blog" "$(q app "$compare_blog" | tail -1)"

# Live projection, the delayed schema migration (run by the launcher once due).
q app "SELECT blog_events(101, 5, 2)" >/dev/null
check "live projection after the update (blog)" "$same_blog" "$(q app "$compare_blog" | tail -1)"
check "live projection after the update (declarative)" "$same_decl3" "$(q app "$compare_decl3" | tail -1)"
check "the delayed schema migration is still delayed" "delayed" \
    "$(q app "SELECT string_agg(status, ',') FROM viewmig.background_schema_migrations")"
q app "UPDATE viewmig.background_schema_migrations SET run_after = now()" >/dev/null
wait_for app "SELECT status IN ('succeeded', 'failed', 'cancelled') FROM viewmig.background_schema_migrations" 120 || true
check "the launcher ran the delayed schema migration once due" "succeeded" \
    "$(q app "SELECT string_agg(status || coalesce(' ' || error_message, ''), ',') FROM viewmig.background_schema_migrations")"

# A full replay of every projector.
out=$(q app "SELECT viewmig.prepare_initial()" "SELECT viewmig.replay_initial()" "SELECT viewmig.replay_increment()" \
           "SELECT viewmig.prepare_completion()" "SELECT viewmig.complete()" 2>&1) || echo "# $out"
check "a full replay after the update completes" "completed 2" \
    "$(q app "SELECT state || ' ' || cardinality(projectors) FROM viewmig.replays ORDER BY id DESC LIMIT 1")"
check "blog tables equal a rebuild after the full replay" "$same_blog" "$(q app "$compare_blog" | tail -1)"
check "declarative tables equal a rebuild after the full replay" "$same_decl3" "$(q app "$compare_decl3" | tail -1)"

# The updated catalog equals a fresh installation's.
q postgres "CREATE DATABASE fresh" >/dev/null
q fresh "CREATE EXTENSION viewmig" >/dev/null
for db in app fresh; do
    as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work/sock" -p "$port" -d "$db" -f "$work/sql/catalog.sql" \
        >"$work/catalog_$db.txt" || fail "test/upgrade/catalog.sql failed in database $db"
done
catalog_diff=$(diff "$work/catalog_fresh.txt" "$work/catalog_app.txt" || true)
check "the updated catalog equals a fresh CREATE EXTENSION's ($(wc -l <"$work/catalog_fresh.txt") lines; < fresh, > updated)" \
    "" "$catalog_diff"

check "no server process crashed" "0" "$(grep -c 'terminated by signal\|was terminated by exception' "$work/new.log" || true)"
finish
