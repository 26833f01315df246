// viewmig.prepare_completion(): gets the replay tables ready to serve queries — the indexes and
// checking foreign keys kept by prepare_initial, CLUSTER where the view table is clustered, then
// VACUUM ANALYZE. Runs in a
// background worker because VACUUM refuses to run inside a function or transaction block; each
// index commits on its own, so a failed or cancelled call resumes where it stopped.
#include "bgw/replay_worker.hpp"
#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/schema_copy.hpp"
#include "pg/spi.hpp"
#include "pg/step_lock.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {

uint64_t run_prepare_completion_task(WorkerShared& shared) {
    worker_begin("viewmig prepare_completion: planning");
    const Replay replay = load_replay(shared.replay_id);
    if (replay.state != core::ReplayState::Replayed && replay.state != core::ReplayState::CompletionPrepared)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "replay " + std::to_string(replay.id) + " is not ready for prepare_completion");
    // Indexes first: the foreign keys' validation then finds the referenced keys' indexes.
    QueryResult ddl = spi_run(
        "SELECT kind, table_name, object_name, definition FROM viewmig.replay_deferred_ddl "
        "WHERE replay_id = $1 AND kind IN ('index', 'foreign_key') AND NOT done ORDER BY kind DESC, table_name, object_name",
        {int8_param(replay.id)});
    // The view tables' clustered indexes exist under the same names in the replay schema once
    // the kept indexes are built (constraint indexes were copied by prepare_initial).
    QueryResult clustered = spi_run(
        "SELECT c.relname, i.relname FROM unnest($2::name[]) t(name) "
        "JOIN pg_class c ON c.relname = t.name AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $1) "
        "JOIN pg_index x ON x.indrelid = c.oid AND x.indisclustered JOIN pg_class i ON i.oid = x.indexrelid",
        {text_param(replay.view_schema), text_array_param(replay.managed_tables)});
    pg_atomic_write_u64(&shared.progress.groups_total, ddl.rows.size() + clustered.rows.size() + replay.managed_tables.size());
    worker_commit();

    const std::string path = replay_first_path(replay.view_schema, replay.replay_schema);
    for (const Row& d : ddl.rows) {
        worker_begin("viewmig prepare_completion: " + *d[0] + " " + quote_ident(*d[2]));
        exec_with_search_path(path, *d[3]);
        spi_run_as_owner("UPDATE viewmig.replay_deferred_ddl SET done = true "
                         "WHERE replay_id = $1 AND kind = $2 AND table_name = $3 AND object_name = $4",
                         {int8_param(replay.id), text_param(d[0]), text_param(d[1]), text_param(d[2])});
        worker_commit();
        pg_atomic_fetch_add_u64(&shared.progress.groups_done, 1);
    }
    for (const Row& c : clustered.rows) {
        const std::string sql = "CLUSTER " + quote_qualified(replay.replay_schema, *c[0]) + " USING " + quote_ident(*c[1]);
        worker_begin("viewmig prepare_completion: " + sql);
        spi_exec(sql);
        worker_commit();
        pg_atomic_fetch_add_u64(&shared.progress.groups_done, 1);
    }
    for (const auto& table : replay.managed_tables) {
        execute_top_level("VACUUM (ANALYZE) " + quote_qualified(replay.replay_schema, table));
        pg_atomic_fetch_add_u64(&shared.progress.groups_done, 1);
    }

    worker_begin("viewmig prepare_completion: finishing");
    spi_run_as_owner("UPDATE viewmig.replays SET state = 'completion_prepared', last_error = NULL, updated_at = now() "
                     "WHERE id = $1",
                     {int8_param(replay.id)});
    worker_commit();
    return ddl.rows.size();
}

}  // namespace viewmig::pg

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_prepare_completion);
PGDLLEXPORT Datum viewmig_prepare_completion(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        spi_connect();
        lock_replay_steps("prepare_completion");
        const Replay replay = *require_step(core::ReplayStep::PrepareCompletion, false);
        refuse_view_schema_migration(replay, "prepare_completion");
        spi_finish();
        bgw::run_in_workers(WorkerTask::PrepareCompletion, replay.id, 0, 1);
        PG_RETURN_VOID();
    });
}
}
