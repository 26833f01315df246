// Versioned view-schema migrations on the replay engine (no second replay loop):
//  * migrate_online(): in a background worker, builds <table>_<new version> in the view schema
//    from the stored DDL for the tables of every projector of the versions after the current one,
//    and a replay schema of views named <table> onto them, so handlers keep writing unqualified
//    names; then replays all events committed before it started into them, exactly like
//    replay_initial (groups, checkpoints, resumable). What it replayed is remembered as a
//    transaction snapshot bound, not as a list of ids or a time window.
//  * migrate_offline(): in the caller's transaction, replays what was committed since, then
//    blocks inserts into the event table (brief lock, retried), replays the rest, renames each
//    live table to <table>_<current version> and each new one to <table>, records the version.
//    Any failure rolls all of it back: the old tables stay live.
//  * rollback_migration(): drops the new tables (only those migrate_online created).
#include "bgw/replay_worker.hpp"
#include "core/view_schema_versions.hpp"
#include "pg/abort.hpp"
#include "pg/brief_lock.hpp"
#include "pg/catalog.hpp"
#include "pg/gucs.hpp"
#include "pg/guard.hpp"
#include "pg/increment.hpp"
#include "pg/owned_schemas.hpp"
#include "pg/projector_rights.hpp"
#include "pg/schema_copy.hpp"
#include "pg/spi.hpp"
#include "pg/stored_ddl.hpp"
#include "pg/step_args.hpp"
#include "pg/step_lock.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

extern "C" {
#include "miscadmin.h"
#include "access/xact.h"
#include "utils/errcodes.h"
}

#include <algorithm>
#include <limits>
#include <variant>

namespace viewmig::pg {
namespace {

int current_version() { return static_cast<int>(to_int8(spi_value("SELECT viewmig.current_view_schema_version()"))); }

core::VersionPlan plan() {
    std::vector<int> defined;
    for (const Row& r : spi_run("SELECT version FROM viewmig.view_schema_version_definitions").rows)
        defined.push_back(static_cast<int>(to_int8(r[0])));
    return core::plan_versions(current_version(), defined);
}

[[noreturn]] void raise(const core::VersionError& e) {
    throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, e.message).hint(e.hint);
}

std::string shim_schema(int version) { return "viewmig_view_schema_v" + std::to_string(version); }

// Drops what an unfinished migration built: its recorded tables (by OID, so never a table
// somebody else created under that name) and its schema of views; the replay is aborted.
void discard(const Replay& replay) {
    drop_our_schema(replay.replay_schema);  // its views depend on the tables
    for (const Row& r : spi_run("SELECT t.table_oid::regclass::text FROM viewmig.view_schema_migration_tables t "
                                "JOIN pg_class c ON c.oid = t.table_oid WHERE t.version = $1",
                                {int8_param(replay.target_version.value_or(0))})
                            .rows)
        spi_exec("DROP TABLE " + *r[0]);
    spi_run_as_owner("DELETE FROM viewmig.view_schema_migration_tables WHERE version = $1",
                     {int8_param(replay.target_version.value_or(0))});
    spi_run_as_owner("DELETE FROM viewmig.replay_groups WHERE replay_id = $1", {int8_param(replay.id)});
    spi_run_as_owner("DELETE FROM viewmig.increment_groups WHERE replay_id = $1", {int8_param(replay.id)});
    spi_run_as_owner("UPDATE viewmig.replays SET state = 'aborted', finished_at = now(), updated_at = now() WHERE id = $1",
                     {int8_param(replay.id)});
}

// The first transaction of migrate_online: leftovers gone, new tables and views created, the
// replay recorded. Returns the replay id.
int64_t prepare(const core::MigrationTarget& target) {
    if (const std::optional<Replay> active = find_active_replay(true)) {
        if (!active->view_schema_migration)
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "cannot migrate the view schema while replay " + std::to_string(active->id) + " is active")
                .hint("Complete it or call viewmig.abort() first.");
        ereport(NOTICE, (errmsg("viewmig: dropping the leftovers of an unfinished migration to version %lld",
                                static_cast<long long>(active->target_version.value_or(0)))));
        discard(*active);
    }
    std::vector<std::string> names;
    for (const int v : target.versions)
        for (const auto& p : parse_text_array(spi_value("SELECT projectors::text FROM viewmig.view_schema_version_definitions "
                                                        "WHERE version = $1",
                                                        {int4_param(v)})))
            if (std::find(names.begin(), names.end(), p) == names.end()) names.push_back(p);
    const std::vector<ProjectorVersion> projectors = load_projectors_for_replay(names);
    const std::string view_schema = projectors.front().view_schema;
    const std::string suffix = "_" + std::to_string(target.target);
    const std::string shim = shim_schema(target.target);
    require_ours_or_absent(shim, "replay");
    drop_our_schema(shim);
    create_our_schema(shim, "replay");
    grant_schema_to_projector_owners(shim, projectors);

    std::vector<std::string> tables, projector_names, versions;
    for (const auto& p : projectors) {
        projector_names.push_back(p.projector);
        versions.push_back(std::to_string(p.version));
        for (const std::string& t : p.managed_tables) {
            require_table_owner_rights(p.view_schema, t, "migrate projector \"" + p.projector + "\"");
            const QueryResult stored = spi_run("SELECT ddl, defined_by::oid FROM viewmig.table_definitions "
                                               "WHERE table_name = $1 AND view_schema = $2",
                                               {text_param(t), text_param(p.view_schema)});
            if (stored.rows.empty())
                throw UserError(ERRCODE_UNDEFINED_OBJECT, "table " + quote_qualified(p.view_schema, t) + " of projector \"" +
                                                              p.projector + "\" has no DDL")
                    .hint("Store it with viewmig.define_table_sql().");
            const std::string new_table = t + suffix;
            if (spi_value("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
                          "AND c.relname = $2",
                          {text_param(view_schema), text_param(new_table)}))
                throw UserError(ERRCODE_DUPLICATE_TABLE, "table " + quote_qualified(view_schema, new_table) +
                                                             " exists and was not created by viewmig.migrate_online()")
                    .hint("Drop or rename it; viewmig never drops a table it did not create.");
            run_stored_ddl(static_cast<Oid>(std::stoul(*stored.rows[0][1])), t, view_schema,
                           core::replace_suffix(*stored.rows[0][0], suffix));
            const std::string oid = *spi_value("SELECT $1::regclass::oid::text", {text_param(quote_qualified(view_schema, new_table))});
            spi_run_as_owner("INSERT INTO viewmig.view_schema_migration_tables (version, view_schema, table_name, new_table, table_oid) "
                             "VALUES ($1, $2, $3, $4, $5::oid)",
                             {int4_param(target.target), text_param(view_schema), text_param(t), text_param(new_table),
                              text_param(oid)});
            // Handlers write "accounts"; with the schema of views first in search_path that is accounts_2.
            spi_exec("CREATE VIEW " + quote_qualified(shim, t) + " AS SELECT * FROM " + quote_qualified(view_schema, new_table));
            // The handler writes through the view as the projector's owner (projector_rights.hpp).
            if (OidIsValid(role_to_switch_to(p.owner)))
                spi_exec("GRANT SELECT, INSERT, UPDATE, DELETE ON " + quote_qualified(shim, t) + " TO " +
                         quote_ident(*spi_value("SELECT $1::oid::regrole::text", {oid_param(p.owner)})));
            tables.push_back(t);
        }
    }
    return to_int8(spi_run_as_owner(
        "INSERT INTO viewmig.replays (state, kind, target_version, projectors, versions, view_schema, replay_schema, "
        "archive_schema, managed_tables, prepared_by) "
        "VALUES ('prepared', 'view_schema', $1, $2::text[], $3::text[]::int[], $4, $5, $4, $6::text[]::name[], $7::oid::regrole) "
        "RETURNING id",
        {int4_param(target.target), text_array_param(projector_names), text_array_param(versions), text_param(view_schema),
         text_param(shim), text_array_param(tables), oid_param(pg_call([] { return GetUserId(); }))})
                       .rows.at(0)[0]);
}

Replay require_view_schema_migration(const char* step) {
    const std::optional<Replay> active = find_active_replay(true);
    if (!active || !active->view_schema_migration)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, std::string("cannot run viewmig.") + step +
                                                                      "(): no view-schema migration is in progress")
            .hint("Start one with viewmig.migrate_online().");
    return *active;
}

}  // namespace

uint64_t run_migrate_online_task(WorkerShared& shared) {
    worker_begin("viewmig migrate_online: preparing");
    const core::VersionPlan p = plan();
    if (const auto* e = std::get_if<core::VersionError>(&p)) raise(*e);
    if (std::holds_alternative<core::NothingToMigrate>(p)) {
        worker_commit();
        return 0;
    }
    shared.replay_id = prepare(std::get<core::MigrationTarget>(p));
    worker_commit();
    return run_initial_replay_task(shared);
}

}  // namespace viewmig::pg

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {

PG_FUNCTION_INFO_V1(viewmig_migrate_online);
PGDLLEXPORT Datum viewmig_migrate_online(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        const int32_t batch_size = resolve_batch_size(fcinfo);
        spi_connect();
        lock_replay_steps("migrate_online");
        const core::VersionPlan p = plan();
        if (const auto* e = std::get_if<core::VersionError>(&p)) raise(*e);
        if (std::holds_alternative<core::NothingToMigrate>(p)) {
            ereport(NOTICE, (errmsg("viewmig: the view schema is at the newest defined version (%d); nothing to migrate",
                                    current_version())));
            spi_finish();
            PG_RETURN_INT64(0);
        }
        if (const std::optional<Replay> active = find_active_replay(false); active && !active->view_schema_migration)
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "cannot migrate the view schema while replay " + std::to_string(active->id) + " is active")
                .hint("Complete it or call viewmig.abort() first.");
        else if (active)  // resumed or replaced: only by the owner of its tables
            for (const std::string& t : active->managed_tables)
                require_table_owner_rights(active->view_schema, t, "run viewmig.migrate_online() on replay " + std::to_string(active->id));
        spi_finish();
        const uint64_t events = bgw::run_in_workers(WorkerTask::MigrateOnline, 0, batch_size, 1);
        ereport(NOTICE, (errmsg("viewmig: migrate_online replayed %llu events into the tables of version %d",
                                static_cast<unsigned long long>(events), std::get<core::MigrationTarget>(p).target),
                         errhint("Next, with the application in maintenance: SELECT viewmig.migrate_offline();")));
        PG_RETURN_INT64(static_cast<int64_t>(events));
    });
}

PG_FUNCTION_INFO_V1(viewmig_migrate_offline);
PGDLLEXPORT Datum viewmig_migrate_offline(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        if (pg_call([] { return IsolationUsesXactSnapshot(); }))
            throw UserError(ERRCODE_ACTIVE_SQL_TRANSACTION, "viewmig.migrate_offline() must run in a READ COMMITTED transaction")
                .detail("Its last increment must see every event committed while it waited for its locks.");
        spi_connect();
        lock_replay_steps("migrate_offline");
        const Replay replay = require_view_schema_migration("migrate_offline");
        for (const std::string& t : replay.managed_tables)
            require_table_owner_rights(replay.view_schema, t, "run viewmig.migrate_offline() on replay " + std::to_string(replay.id));
        if (replay.state != core::ReplayState::Replayed)
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "migrate_online() has not finished its replay (state " +
                                                                          std::string(core::to_string(replay.state)) + ")")
                .hint("Run SELECT viewmig.migrate_online(); again: it resumes.");
        const int current = current_version();
        const int target = static_cast<int>(replay.target_version.value_or(0));
        const EventStore es = load_event_store();

        // Catch up unlocked, then block inserts briefly and replay the rest.
        const IncrementResult before = replay_increment_now(replay, es, std::nullopt);
        Replay caught_up = replay;
        caught_up.replayed_bound = before.new_bound;
        std::vector<TableLock> locks = event_table_locks(es);
        QueryResult tables = spi_run("SELECT table_name, new_table, table_oid, "
                                     "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                     " WHERE n.nspname = t.view_schema AND c.relname = t.table_name) "
                                     "FROM viewmig.view_schema_migration_tables t WHERE version = $1 ORDER BY table_name",
                                     {int4_param(target)});
        for (const Row& r : tables.rows) {
            locks.push_back({static_cast<Oid>(std::stoul(*r[2])), AccessExclusiveLock});
            if (r[3]) locks.push_back({static_cast<Oid>(std::stoul(*r[3])), AccessExclusiveLock});
        }
        const int attempts = lock_tables_briefly(locks, viewmig_lock_timeout_ms, viewmig_lock_max_wait_ms);
        const IncrementResult last = replay_increment_now(caught_up, es, std::numeric_limits<int64_t>::max());

        drop_our_schema(replay.replay_schema);  // the views onto the new tables
        const std::string old_suffix = "_" + std::to_string(current);
        for (const Row& r : tables.rows) {
            const std::string& table = *r[0];
            if (r[3]) {
                if (spi_value("SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
                              "AND c.relname = $2",
                              {text_param(replay.view_schema), text_param(table + old_suffix)}))
                    throw UserError(ERRCODE_DUPLICATE_TABLE, "cannot keep the current table " + quote_ident(table) + " as " +
                                                                 quote_ident(table + old_suffix) + ": that table exists")
                        .hint("Drop or rename " + quote_qualified(replay.view_schema, table + old_suffix) +
                              ", then run viewmig.migrate_offline() again; nothing was changed.");
                spi_exec("ALTER TABLE " + quote_qualified(replay.view_schema, table) + " RENAME TO " + quote_ident(table + old_suffix));
            }
            spi_exec("ALTER TABLE " + quote_qualified(replay.view_schema, *r[1]) + " RENAME TO " + quote_ident(table));
            // The application's grants on the table it reads go with the name.
            if (r[3]) carry_grants(quote_qualified(replay.view_schema, table + old_suffix), quote_qualified(replay.view_schema, table));
        }
        spi_run_as_owner("INSERT INTO viewmig.view_schema_versions (version) VALUES ($1)", {int4_param(target)});
        spi_run_as_owner("DELETE FROM viewmig.view_schema_migration_tables WHERE version = $1", {int4_param(target)});
        finish_replay(replay);
        ereport(NOTICE, (errmsg("viewmig: view schema migrated from version %d to %d: %zu tables renamed; %llu events replayed "
                                "before the lock, %llu under it",
                                current, target, tables.rows.size(), static_cast<unsigned long long>(before.events),
                                static_cast<unsigned long long>(last.events)),
                         errdetail("Inserts into the event table waited from the lock (taken after %d attempt(s)) until this "
                                   "transaction ends. The previous tables are named <table>%s.",
                                   attempts, old_suffix.c_str())));
        spi_finish();
        PG_RETURN_INT64(static_cast<int64_t>(before.events + last.events));
    });
}

PG_FUNCTION_INFO_V1(viewmig_rollback_migration);
PGDLLEXPORT Datum viewmig_rollback_migration(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        spi_connect();
        lock_replay_steps("rollback_migration");
        const std::optional<Replay> active = find_active_replay(true);
        if (!active || !active->view_schema_migration) {
            ereport(NOTICE, (errmsg("viewmig: no view-schema migration is in progress")));
            spi_finish();
            PG_RETURN_BOOL(false);
        }
        require_abort_rights(*active);  // as abort(): possible even when a table was dropped meanwhile
        discard(*active);
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}

}  // extern "C"
