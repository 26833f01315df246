// viewmig.complete(): the switch. Everything slow happened before (prepare_completion, the
// increments); here viewmig refuses early if other objects depend on the view tables, then takes
// its locks briefly (inserts into the event table blocked, view and replay tables exclusive),
// replays the last events under the lock, moves the view tables to the archive schema and the
// replay tables into the view schema, activates the replayed projector versions and commits with
// the caller's transaction. Any error rolls all of it back: the view tables stay live.
#include "pg/brief_lock.hpp"
#include "pg/gucs.hpp"
#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/increment.hpp"
#include "pg/owned_schemas.hpp"
#include "pg/schema_copy.hpp"
#include "pg/spi.hpp"
#include "pg/step_lock.hpp"
#include "pg/table_definition.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/errcodes.h"
#include "utils/timestamp.h"
}

#include <cstdint>
#include <limits>


namespace viewmig::pg {
namespace {

// Extended statistics objects live in a schema of their own choosing, not their table's: they go
// with their table, so the archive holds the archived table's and the view schema the new table's
// (left behind, they would tie the view schema to the archive, whose next drop would refuse).
void move_statistics(const std::string& table, const std::string& schema) {
    for (const Row& r : spi_run("SELECT pg_catalog.format('%I.%I', n.nspname, s.stxname) FROM pg_catalog.pg_statistic_ext s "
                                "JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace "
                                "WHERE s.stxrelid = $1::pg_catalog.regclass AND n.nspname <> $2",
                                {text_param(table), text_param(schema)})
                            .rows)
        spi_exec("ALTER STATISTICS " + *r[0] + " SET SCHEMA " + quote_ident(schema));
}

// Objects outside the replay that would keep pointing at the archived tables after the swap.
void refuse_dependent_objects(const Replay& replay) {
    QueryResult deps = spi_run(
        "WITH t AS (SELECT c.oid FROM unnest($2::name[]) n(name) JOIN pg_class c ON c.relname = n.name "
        "           AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1)) "
        "SELECT DISTINCT format('%s depends on %s', pg_describe_object('pg_class'::regclass, r.ev_class, 0), "
        "                       d.refobjid::regclass) "
        "FROM pg_depend d JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid "
        "WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT oid FROM t) AND r.ev_class <> d.refobjid "
        "UNION "
        "SELECT format('%s on %s references %s', pg_describe_object('pg_constraint'::regclass, k.oid, 0), "
        "              k.conrelid::regclass, k.confrelid::regclass) "
        "FROM pg_constraint k WHERE k.contype = 'f' AND k.confrelid IN (SELECT oid FROM t) "
        "  AND k.conrelid NOT IN (SELECT oid FROM t) "
        "ORDER BY 1",
        {text_param(replay.view_schema), text_array_param(replay.managed_tables)});
    if (deps.rows.empty()) return;
    std::string list;
    for (const Row& r : deps.rows) list += (list.empty() ? "" : "\n") + *r[0];
    throw UserError(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST, "cannot complete: other objects depend on the view tables")
        .detail(list)
        .hint("After the swap they would keep pointing at the archived tables. Drop them, complete, and create them "
              "again (in one transaction if they must not be missing).");
}

// Foreign keys were DEFERRABLE INITIALLY DEFERRED during the replay (see replay_deferred_ddl):
// check them now, with every event in, and give them back their original deferrability.
void restore_deferrability(const Replay& replay) {
    QueryResult rows = spi_run("SELECT object_name, definition FROM viewmig.replay_deferred_ddl "
                               "WHERE replay_id = $1 AND kind = 'restore_deferrability' ORDER BY table_name, object_name",
                               {int8_param(replay.id)});
    for (const Row& r : rows.rows) {
        spi_exec("SET CONSTRAINTS " + quote_qualified(replay.replay_schema, *r[0]) + " IMMEDIATE");
        exec_with_search_path(replay_first_path(replay.view_schema, replay.replay_schema), *r[1]);
    }
}

std::vector<TableLock> locks_for(const Replay& replay, const EventStore& es) {
    std::vector<TableLock> locks = event_table_locks(es);
    for (const std::string& schema : {replay.view_schema, replay.replay_schema}) {
        QueryResult oids = spi_run(
            "SELECT c.oid FROM unnest($2::name[]) WITH ORDINALITY n(name, ord) JOIN pg_class c ON c.relname = n.name "
            "AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) ORDER BY n.ord",
            {text_param(schema), text_array_param(replay.managed_tables)});
        if (oids.rows.size() != replay.managed_tables.size())
            throw UserError(ERRCODE_UNDEFINED_TABLE, "some managed tables are missing from schema " + quote_ident(schema))
                .hint("Call viewmig.abort() and start the replay again with viewmig.prepare_initial().");
        for (const Row& r : oids.rows) locks.push_back({static_cast<Oid>(std::stoul(*r[0])), AccessExclusiveLock});
    }
    return locks;
}

}  // namespace
}  // namespace viewmig::pg

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_complete);
PGDLLEXPORT Datum viewmig_complete(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        if (pg_call([] { return IsolationUsesXactSnapshot(); }))
            throw UserError(ERRCODE_ACTIVE_SQL_TRANSACTION, "viewmig.complete() must run in a READ COMMITTED transaction")
                .detail("Its last increment must see every event committed while it waited for its locks.")
                .hint("Call it outside an explicit REPEATABLE READ or SERIALIZABLE transaction.");
        spi_connect();
        lock_replay_steps("complete");
        const Replay replay = *require_step(core::ReplayStep::Complete);
        refuse_view_schema_migration(replay, "complete");
        const EventStore es = load_event_store();
        require_ours_or_absent(replay.archive_schema, "archive");
        refuse_dependent_objects(replay);
        // Fail early, before the catch-up; both are checked again under the lock.
        if (schema_is_ours(replay.archive_schema)) refuse_foreign_dependents(replay.archive_schema, "viewmig.complete()");
        refuse_changed_view_tables(replay);

        // Catch up before locking, so that the part under the lock replays only what arrives meanwhile.
        const IncrementResult before = replay_increment_now(replay, es, std::nullopt);
        Replay caught_up = replay;
        caught_up.replayed_bound = before.new_bound;

        const TimestampTz lock_start = GetCurrentTimestamp();
        const int attempts = lock_tables_briefly(locks_for(replay, es), viewmig_lock_timeout_ms, viewmig_lock_max_wait_ms);
        // Under the lock no event can be added and every inserter has finished: replay all that is left.
        // Under the lock nobody can change a view table's definition any more.
        refuse_changed_view_tables(replay, false);
        const IncrementResult last = replay_increment_now(caught_up, es, std::numeric_limits<int64_t>::max());
        restore_deferrability(replay);

        drop_our_schema(replay.archive_schema, "viewmig.complete()");
        create_our_schema(replay.archive_schema, "archive");
        std::vector<std::string> regranted;
        for (const std::string& table : replay.managed_tables) {
            // Grants made or revoked on the view table since prepare_initial copied them go with the swap.
            if (carry_grants(quote_qualified(replay.view_schema, table), quote_qualified(replay.replay_schema, table)))
                regranted.push_back(quote_qualified(replay.view_schema, table));
            spi_exec("ALTER TABLE " + quote_qualified(replay.view_schema, table) + " SET SCHEMA " + quote_ident(replay.archive_schema));
            spi_exec("ALTER TABLE " + quote_qualified(replay.replay_schema, table) + " SET SCHEMA " + quote_ident(replay.view_schema));
            move_statistics(quote_qualified(replay.archive_schema, table), replay.archive_schema);
            move_statistics(quote_qualified(replay.view_schema, table), replay.view_schema);
        }
        drop_our_schema(replay.replay_schema, "viewmig.complete()");
        finish_replay(replay);
        if (!regranted.empty()) {
            std::string list;
            for (const std::string& t : regranted) list += (list.empty() ? "" : ", ") + t;
            ereport(NOTICE, (errmsg("viewmig: grants changed since prepare_initial were carried over to the swapped-in tables: %s",
                                    list.c_str())));
        }

        const long stall_ms = TimestampDifferenceMilliseconds(lock_start, GetCurrentTimestamp());
        ereport(NOTICE, (errmsg("viewmig: replay %lld completed: %zu tables swapped; %llu events replayed before the lock, %llu under it",
                                static_cast<long long>(replay.id), replay.managed_tables.size(),
                                static_cast<unsigned long long>(before.events), static_cast<unsigned long long>(last.events)),
                         errdetail("Locks taken after %d attempt(s); %ld ms from first lock attempt to swap. "
                                   "The previous tables are in schema %s.",
                                   attempts, stall_ms, quote_ident(replay.archive_schema).c_str())));
        spi_finish();
        PG_RETURN_INT64(static_cast<int64_t>(before.events + last.events));
    });
}
}
