// Running one background schema migration in a background worker that holds no other
// transaction, so CREATE INDEX CONCURRENTLY works and never waits for its own scheduler:
//  1. choose: under an advisory lock (schedulers choose one at a time), the oldest runnable row
//     whose table has no running migration; none while the throttle function says so;
//  2. run, as the role that queued it, each statement as a top-level command with the row's
//     statement_timeout, and a short lock_timeout retried with back-off for statements that
//     would otherwise queue behind a long transaction (and every writer behind them);
//  3. confirm from the catalog (the index exists, valid and ready; the constraint validated);
//  4. record: succeeded, or errored (retried later with back-off) / failed after max_attempts
//     (at once for errors that no retry can fix),
//     the error saved on the row and the error handler called. A cancelled migration drops the
//     INVALID index its interrupted build left behind.
// Index builds are idempotent: an INVALID index of the same name is dropped and rebuilt; a valid
// one with the same definition counts as done; one with another definition is an error.
#include "core/jobs.hpp"
#include "core/json_text.hpp"
#include "pg/guard.hpp"
#include "pg/gucs.hpp"
#include "pg/run_as.hpp"
#include "pg/schema_migrations.hpp"
#include "pg/spi.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/errcodes.h"
#include "utils/timestamp.h"
}

#include <algorithm>

namespace viewmig::pg {
namespace {

constexpr const char* kSchedulerLock = "SELECT pg_advisory_xact_lock(30317, 3)";

std::string label(const SchemaMigration& m) { return "viewmig schema migration " + std::to_string(m.id) + " (" + m.name + ")"; }

// Step 1; nullopt when nothing may run now.
std::optional<SchemaMigration> claim_next() {
    worker_begin("viewmig schema migrations: choosing");
    spi_run(kSchedulerLock);
    spi_run_as_owner("SELECT viewmig.schema_migrations_housekeeping()");
    const auto next = spi_value("SELECT viewmig.next_runnable_schema_migration()");
    if (!next) {
        worker_commit();
        return std::nullopt;
    }
    const int64_t id = to_int8(next);
    if (to_bool(spi_value("SELECT viewmig.schema_migrations_throttled($1)",
                          {text_param(std::string(viewmig_throttle_function ? viewmig_throttle_function : ""))}))) {
        worker_commit();
        return std::nullopt;
    }
    SchemaMigration m = *find_schema_migration(id, true);
    // Held until this process exits: how schedulers tell a live migration from one whose worker died.
    spi_run("SELECT pg_catalog.pg_advisory_lock(30319, $1::int4)", {int8_param(id)});
    spi_run_as_owner("UPDATE viewmig.background_schema_migrations SET status = 'running', attempts = attempts + 1, "
                     "started_at = now(), finished_at = NULL, error_class = NULL, error_message = NULL, backtrace = NULL, "
                     "worker_pid = pg_backend_pid() WHERE id = $1",
                     {int8_param(id)});
    if (m.parent_id) spi_run_as_owner("SELECT viewmig.refresh_composite_schema_migration($1)", {int8_param(*m.parent_id)});
    record_schema_migration_event(id, m.attempts == 0 ? "started" : "retried",
                                  core::JsonObject().add("attempt", m.attempts + 1).add("pid", MyProcPid).str());
    worker_commit();
    m.attempts += 1;
    return m;
}

struct IndexState {
    bool exists = false, valid = false;
    std::string schema;
};

// The index named `name` on the migration's table (schema of the table).
IndexState find_index(const SchemaMigration& m) {
    QueryResult r = spi_run("SELECT i.indisvalid AND i.indisready, n.nspname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE i.indrelid = $1 AND c.relname = $2",
                            {oid_param(m.table), text_param(m.name)});
    if (r.rows.empty()) return {};
    return IndexState{true, to_bool(r.rows[0][0]), *r.rows[0][1]};
}

void drop_invalid_index(const SchemaMigration& m, const std::string& schema) {
    execute_top_level("DROP INDEX CONCURRENTLY IF EXISTS " + quote_qualified(schema, m.name));
}

// True when the existing valid index `m.name` is the index the definition describes: the
// definition is built again on an empty temporary copy of the table and both are compared as
// pg_get_indexdef() prints them, after the index and table names.
bool same_index_definition(const SchemaMigration& m, const Statement& create) {
    const std::string prefix_from = "INDEX CONCURRENTLY IF NOT EXISTS " + quote_ident(m.name) + " ON " +
                                    quote_qualified(m.table_schema, m.table_name) + " USING ";
    const std::size_t at = create.sql.find(prefix_from);
    if (at == std::string::npos) return false;
    const std::string probe = create.sql.substr(0, at) + "INDEX viewmig_probe_idx ON pg_temp.viewmig_probe USING " +
                              create.sql.substr(at + prefix_from.size());
    worker_begin(label(m) + ": comparing with the existing index");
    bool same = false;
    in_rolled_back_subtransaction([&] {
        spi_run("CREATE TEMP TABLE viewmig_probe (LIKE " + quote_qualified(m.table_schema, m.table_name) + ")");
        spi_run(probe);
        const std::string normalize = "SELECT i.indisunique::text || ' ' || regexp_replace(pg_get_indexdef(i.indexrelid), "
                                      "'^.*? USING ', '') FROM pg_index i WHERE i.indexrelid = $1::regclass";
        const auto ours = spi_value(normalize, {text_param(std::string("pg_temp.viewmig_probe_idx"))});
        const auto theirs = spi_value(normalize, {text_param(quote_qualified(m.table_schema, m.name))});
        same = ours && ours == theirs;
    });
    worker_commit();
    return same;
}

void set_lock_timeout(bool bounded);

// Drops, each with DROP INDEX CONCURRENTLY, the INVALID indexes that interrupted runs of the
// migration's concurrent builds (CREATE INDEX / REINDEX CONCURRENTLY in a custom migration) left
// behind: before a retry and when it was cancelled. Only while no build runs on their table (its
// ShareUpdateExclusiveLock is free: every concurrent build holds it until it ends), never a valid
// index, never one the migration's role does not own. Returns how many it dropped.
int drop_concurrent_build_leftovers(const SchemaMigration& m, const std::vector<Statement>& statements) {
    const bool any = std::any_of(statements.begin(), statements.end(), [](const Statement& st) {
        return st.build != ConcurrentBuild::None;
    });
    if (!any) return 0;
    worker_begin(label(m) + ": looking for INVALID indexes left by an interrupted build");
    std::vector<InvalidLeftover> leftovers = concurrent_build_leftovers(statements);
    bool locked = true;
    for (const InvalidLeftover& l : leftovers) {
        const Oid table = l.table;
        locked = locked && pg_call([&] { return ConditionalLockRelationOid(table, ShareUpdateExclusiveLock); });
    }
    // Under the locks: what is INVALID now is no build's work in progress.
    if (locked) leftovers = concurrent_build_leftovers(statements);
    worker_commit();
    if (!locked) {
        ereport(LOG, (errmsg("%s: a build runs on the table; INVALID indexes are left for the next attempt", label(m).c_str())));
        return 0;
    }
    set_lock_timeout(false);
    for (const InvalidLeftover& l : leftovers) {
        ereport(LOG, (errmsg("%s: dropping INVALID index %s left by an interrupted build", label(m).c_str(),
                             quote_qualified(l.schema, l.name).c_str())));
        execute_top_level("DROP INDEX CONCURRENTLY IF EXISTS " + quote_qualified(l.schema, l.name));
    }
    return static_cast<int>(leftovers.size());
}

// After a custom migration's statements: every concurrent build it holds left a valid index and
// no INVALID copy behind (CREATE INDEX CONCURRENTLY IF NOT EXISTS skips an INVALID index).
void confirm_concurrent_builds(const SchemaMigration& m, const std::vector<Statement>& statements) {
    const std::vector<InvalidLeftover> left = concurrent_build_leftovers(statements);
    if (!left.empty())
        // Retryable (object in use): the next attempt drops it first.
        throw UserError(ERRCODE_OBJECT_IN_USE, "index " + quote_qualified(left[0].schema, left[0].name) + " is INVALID after " +
                                                   label(m))
            .hint("The next attempt drops it and builds again; a failed migration: SELECT viewmig.retry_schema_migration(" +
                  std::to_string(m.id) + ");");
}

// Runs one statement; lock waits of statements other than concurrent index builds are bounded
// by viewmig.lock_timeout and retried with back-off for up to viewmig.lock_max_wait.
void run_statement(const SchemaMigration& m, const Statement& st) {
    const TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), viewmig_lock_max_wait_ms);
    long backoff_ms = std::max(viewmig_lock_timeout_ms, 10);
    for (;;) {
        try {
            execute_top_level(st.sql);
            return;
        } catch (const PgError& e) {
            pg_call([] { AbortOutOfAnyTransaction(); });
            if (e.edata()->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE || st.concurrent_index || GetCurrentTimestamp() >= deadline)
                throw;
        }
        // Outside the catch block: a cancel arriving while we sleep raises an ERROR (via pg_call).
        ereport(LOG, (errmsg("%s: lock not available, trying again in %ld ms", label(m).c_str(), backoff_ms)));
        pg_call([&] {
            pg_usleep(backoff_ms * 1000L);
            CHECK_FOR_INTERRUPTS();
        });
        backoff_ms = std::min(backoff_ms * 2, 5000L);
    }
}

void set_timeouts(const SchemaMigration& m) {
    worker_begin(label(m) + ": settings");
    spi_run("SELECT set_config('statement_timeout', (extract(epoch FROM $1::interval) * 1000)::bigint::text, false)",
            {text_param(m.statement_timeout)});
    worker_commit();
}

void set_lock_timeout(bool bounded) {
    worker_begin("viewmig schema migration: settings");
    spi_run("SELECT set_config('lock_timeout', $1, false)",
            {text_param(bounded ? std::to_string(viewmig_lock_timeout_ms) : std::string("0"))});
    worker_commit();
}

// Steps 2 and 3. Returns details for the 'completed' event.
std::string execute(const SchemaMigration& m) {
    set_timeouts(m);
    const std::vector<Statement> statements = split_statements(m.definition);
    const bool index_on_partitioned = [&] {
        worker_begin(label(m));
        const bool p = spi_value("SELECT relkind::text FROM pg_class WHERE oid = $1", {oid_param(m.table)}) == "p";
        worker_commit();
        return p;
    }();
    core::JsonObject details;
    if (m.kind == "custom") {
        if (const int dropped = drop_concurrent_build_leftovers(m, statements)) details.add("dropped_invalid_indexes", dropped);
    }
    if (m.kind == "add_index" && !index_on_partitioned) {
        worker_begin(label(m) + ": looking for the index");
        const IndexState before = find_index(m);
        worker_commit();
        if (before.exists && !before.valid) {
            drop_invalid_index(m, before.schema);  // left by an earlier failed build
            details.add("dropped_invalid_index", true);
        } else if (before.exists) {
            if (!same_index_definition(m, statements.at(0)))
                throw UserError(ERRCODE_DUPLICATE_OBJECT, "index \"" + m.name + "\" already exists with another definition")
                    .hint("Remove it (viewmig.remove_index_in_background) or queue the index under another name.");
            details.add("existing_index", true);
            // A partition's index may still need attaching: run only the statements after the build.
            for (std::size_t i = 1; i < statements.size(); ++i) run_statement(m, statements[i]);
            return details.str();
        }
    }
    for (const Statement& st : statements) {
        set_lock_timeout(!st.concurrent_index);
        run_statement(m, st);
    }

    // Confirm from the catalog; never assume.
    worker_begin(label(m) + ": checking the result");
    if (m.kind == "add_index") {
        const IndexState after = find_index(m);
        if (!after.exists || (!after.valid && !index_on_partitioned))
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "index \"" + m.name + "\" is " + (after.exists ? "INVALID" : "missing") + " after its build");
    } else if (m.kind == "remove_index") {
        if (find_index(m).exists)
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "index \"" + m.name + "\" still exists after DROP INDEX");
    } else if (m.kind == "custom") {
        confirm_concurrent_builds(m, statements);
    } else if (m.kind == "validate_constraint") {
        if (spi_value("SELECT convalidated FROM pg_constraint WHERE conrelid = $1 AND conname = $2",
                      {oid_param(m.table), text_param(m.name)}) != "t")
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "constraint \"" + m.name + "\" is not validated");
    }
    worker_commit();
    return details.str();
}

void record_success(const SchemaMigration& m, const std::string& details) {
    worker_begin(label(m) + ": recording");
    const uint64_t n = spi_run_as_owner("UPDATE viewmig.background_schema_migrations SET status = 'succeeded', finished_at = now(), "
                                        "worker_pid = NULL WHERE id = $1 AND status = 'running'",
                                        {int8_param(m.id)})
                           .processed;
    if (n) record_schema_migration_event(m.id, "completed", details);
    if (m.parent_id) spi_run_as_owner("SELECT viewmig.refresh_composite_schema_migration($1)", {int8_param(*m.parent_id)});
    worker_commit();
}

void call_error_handler(const SchemaMigration& m) {
    if (viewmig_error_handler == nullptr || viewmig_error_handler[0] == '\0') return;
    worker_begin(label(m) + ": error handler");
    try {
        in_subtransaction([&] {
            const std::string fn = *spi_value("SELECT $1::regproc::text", {text_param(std::string(viewmig_error_handler))});
            // Someone who owns the function's schema could replace it: only a superuser's runs.
            if (!to_bool(spi_value("SELECT r.rolsuper FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner "
                                   "WHERE p.oid = $1::regproc",
                                   {text_param(std::string(viewmig_error_handler))})))
                throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "viewmig.error_handler " + fn + " is not owned by a superuser")
                    .hint("ALTER FUNCTION ... OWNER TO a superuser, or reset viewmig.error_handler.");
            spi_run("SELECT " + fn + "(m) FROM viewmig.background_schema_migrations m WHERE m.id = $1", {int8_param(m.id)});
        });
    } catch (const PgError& e) {
        ereport(WARNING, (errmsg("viewmig.error_handler failed for background schema migration %lld: %s",
                                 static_cast<long long>(m.id), e.what())));
    } catch (const UserError& e) {
        ereport(WARNING, (errmsg("viewmig.error_handler not called for background schema migration %lld: %s",
                                 static_cast<long long>(m.id), e.what()),
                          errhint("%s", e.hint_text().c_str())));
    }
    worker_commit();
}

struct Failure {
    std::string sqlstate, message, context;
};

Failure failure_of(const PgError& e) {
    const ErrorData* ed = e.edata();
    return Failure{pg_call([&] { return std::string(unpack_sql_state(ed->sqlerrcode)); }), ed->message ? ed->message : "error",
                   ed->context ? ed->context : ""};
}

Failure failure_of(const UserError& e) {
    std::string message = e.message();
    if (!e.hint_text().empty()) message += " (" + e.hint_text() + ")";
    return Failure{pg_call([&] { return std::string(unpack_sql_state(e.sqlstate())); }), message, ""};
}

// Step 4 after an ERROR. Returns true when the migration was cancelled meanwhile.
bool record_failure(const SchemaMigration& m, const Failure& f) {
    worker_begin(label(m) + ": recording its failure");
    const std::optional<SchemaMigration> now = find_schema_migration(m.id, true);
    if (!now || now->status != "running") {
        worker_commit();
        return now && now->status == "cancelled";
    }
    // Errors in the migration itself (an index with another definition, missing rights, bad SQL,
    // duplicate keys for a unique index) fail at once: trying again can not help.
    const bool final_attempt = now->attempts >= now->max_attempts || !core::is_retryable_sqlstate(f.sqlstate);
    const int delay = core::retry_delay_seconds(now->attempts + 1, viewmig_retry_delay_s);
    spi_run_as_owner("UPDATE viewmig.background_schema_migrations SET status = $2, finished_at = now(), worker_pid = NULL, "
                     "error_class = $3, error_message = $4, backtrace = string_to_array(nullif($5, ''), E'\\n'), "
                     "run_after = now() + make_interval(secs => $6) WHERE id = $1",
                     {int8_param(m.id), text_param(std::string(final_attempt ? "failed" : "errored")), text_param(f.sqlstate),
                      text_param(f.message), text_param(f.context), int4_param(final_attempt ? 0 : delay)});
    core::JsonObject details;
    details.add("error", f.message).add("sqlstate", f.sqlstate).add("attempt", now->attempts);
    if (!final_attempt) details.add("retry_in_s", delay);
    record_schema_migration_event(m.id, final_attempt ? "failed" : "errored", details.str());
    if (m.parent_id) spi_run_as_owner("SELECT viewmig.refresh_composite_schema_migration($1)", {int8_param(*m.parent_id)});
    worker_commit();
    call_error_handler(m);
    return false;
}

}  // namespace

uint64_t run_schema_migration_task(WorkerShared&) { return static_cast<uint64_t>(run_next_schema_migration()); }

int64_t run_next_schema_migration() {
    const std::optional<SchemaMigration> claimed = claim_next();
    if (!claimed) return 0;
    const SchemaMigration& m = *claimed;
    report_activity(label(m));
    const TimestampTz started = pg_call([] { return GetCurrentTimestamp(); });
    // The 'run' event (as online_migrations' instrumentation): how long the statements took.
    auto run_event = [&](bool ok) {
        const double seconds = static_cast<double>(pg_call([] { return GetCurrentTimestamp(); }) - started) / 1e6;
        worker_begin(label(m) + ": recording");
        record_schema_migration_event(m.id, "run", core::JsonObject().add("duration_s", seconds).add("ok", ok).str());
        worker_commit();
    };
    std::optional<Failure> failure;
    try {
        become_role(m.run_as, "background schema migration " + std::to_string(m.id));
        const std::string details = execute(m);
        run_event(true);
        record_success(m, details);
    } catch (const PgError& e) {
        failure = failure_of(e);
    } catch (const UserError& e) {
        failure = failure_of(e);
    }
    if (failure) {
        pg_call([] { AbortOutOfAnyTransaction(); });
        run_event(false);
        const bool cancelled = record_failure(m, *failure);
        // What an interrupted CREATE INDEX CONCURRENTLY leaves is an INVALID index: a retry drops
        // it anyway, a cancelled migration must not leave it behind.
        if (cancelled && m.kind == "custom") drop_concurrent_build_leftovers(m, split_statements(m.definition));
        if (cancelled && m.kind == "add_index") {
            set_lock_timeout(false);
            worker_begin(label(m) + ": cleaning up");
            const IndexState left = find_index(m);
            const bool partitioned = spi_value("SELECT relkind::text FROM pg_class WHERE oid = $1", {oid_param(m.table)}) == "p";
            worker_commit();
            if (left.exists && !left.valid && !partitioned) drop_invalid_index(m, left.schema);
            if (m.parent_id) {
                // The parent's ON ONLY index stays INVALID until every partition is attached.
                worker_begin(label(m) + ": cleaning up the parent's index");
                const auto parent = spi_run("SELECT table_name::oid, migration_name FROM viewmig.background_schema_migrations "
                                            "WHERE id = $1",
                                            {int8_param(*m.parent_id)})
                                        .rows.at(0);
                drop_invalid_parent_index(static_cast<Oid>(std::stoul(*parent[0])), *parent[1]);
                worker_commit();
            }
        }
    }
    return m.id;
}

}  // namespace viewmig::pg
