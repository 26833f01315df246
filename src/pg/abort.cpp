// viewmig.abort(): discards the active replay — its replay schema (only if viewmig created it)
// and its groups — and leaves the view schema untouched. Refused while another step runs.
#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/owned_schemas.hpp"
#include "pg/spi.hpp"
#include "pg/step_lock.hpp"

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_abort);
PGDLLEXPORT Datum viewmig_abort(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        spi_connect();
        lock_replay_steps("abort");
        const std::optional<Replay> replay = find_active_replay(true);
        if (!replay) {
            ereport(NOTICE, (errmsg("viewmig: there is no active replay to abort")));
            spi_finish();
            PG_RETURN_BOOL(false);
        }
        require_replay_owner_rights(*replay, core::ReplayStep::Abort);
        const bool exists = spi_value("SELECT 1 FROM pg_namespace WHERE nspname = $1", {text_param(replay->replay_schema)}).has_value();
        if (exists && !schema_is_ours(replay->replay_schema))
            ereport(WARNING, (errmsg("schema %s was not created by viewmig and is left alone",
                                     quote_ident(replay->replay_schema).c_str())));
        drop_our_schema(replay->replay_schema);
        spi_run_as_owner("DELETE FROM viewmig.replay_groups WHERE replay_id = $1", {int8_param(replay->id)});
        spi_run_as_owner("DELETE FROM viewmig.increment_groups WHERE replay_id = $1", {int8_param(replay->id)});
        spi_run_as_owner("DELETE FROM viewmig.replay_deferred_ddl WHERE replay_id = $1", {int8_param(replay->id)});
        spi_run_as_owner("UPDATE viewmig.replays SET state = 'aborted', finished_at = now(), updated_at = now() WHERE id = $1",
                         {int8_param(replay->id)});
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}
}
