// viewmig.abort(): discards the active replay — its replay schema (only if viewmig created it)
// and its groups — and leaves the view schema untouched. Refused while another step runs.
//
// Who may abort. abort() must always be able to end a replay, also when its view tables are
// partly or wholly gone (such a replay can never complete), but never for someone without rights
// on it. Allowed, checked in C (never through SQL a caller could shadow):
//  1. a role with the privileges of the role that prepared it (viewmig.replays.prepared_by);
//  2. a role with the owner's rights on every managed table that still exists (at least one);
//  3. when none of them exists and the preparing role is unknown (a replay prepared by viewmig 1.0
//     whose replay schema is gone, or whose role was dropped): the owner of the view schema.
// Superusers pass every rule.
#include "pg/abort.hpp"

#include "pg/guard.hpp"
#include "pg/owned_schemas.hpp"
#include "pg/spi.hpp"
#include "pg/step_lock.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/errcodes.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace viewmig::pg {

namespace {

// The role recorded as having prepared the replay, if it still exists.
std::optional<Oid> preparing_role(int64_t replay_id) {
    const auto role = spi_run_as_owner("SELECT prepared_by::oid FROM viewmig.replays WHERE id = $1", {int8_param(replay_id)})
                          .rows.at(0)[0];
    if (!role) return std::nullopt;
    const Oid oid = static_cast<Oid>(std::stoul(*role));
    if (!pg_call([&] { return SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(oid)); })) return std::nullopt;
    return oid;
}

Oid namespace_oid(const std::string& schema) {
    const char* name = schema.c_str();
    return pg_call([&] { return get_namespace_oid(name, true); });
}

// Whether the replay's own view table is still there: a table of that name created after the
// replay's was dropped is someone else's and gives no right to end the replay.
bool table_exists(Oid nsp, const std::string& table, int64_t replay_id) {
    if (!OidIsValid(nsp)) return false;
    const char* name = table.c_str();
    const Oid relid = pg_call([&] { return get_relname_relid(name, nsp); });
    if (!OidIsValid(relid)) return false;
    const auto copied = spi_run("SELECT table_oid FROM viewmig.replay_copied_tables WHERE replay_id = $1 AND table_name = $2",
                                {int8_param(replay_id), text_param(table)});
    return copied.rows.empty() || static_cast<Oid>(std::stoul(*copied.rows[0][0])) == relid;
}

}  // namespace

void require_abort_rights(const Replay& replay) {
    const Oid me = GetUserId();
    const std::optional<Oid> preparer = preparing_role(replay.id);
    if (preparer && pg_call([&] { return has_privs_of_role(me, *preparer); })) return;

    const Oid view_nsp = namespace_oid(replay.view_schema);
    bool any_table = false;
    for (const std::string& table : replay.managed_tables) {
        if (!table_exists(view_nsp, table, replay.id)) continue;  // dropped: no one's rights to check
        any_table = true;
        require_table_owner_rights(replay.view_schema, table, "run viewmig.abort() on replay " + std::to_string(replay.id));
    }
    if (any_table) return;

    const std::string who = preparer ? "the role that prepared it (" + std::string(pg_call([&]() -> const char* {
                                                 const char* n = GetUserNameFromId(*preparer, true);
                                                 return n ? n : "?";
                                             })) + ")"
                                     : "the owner of schema " + quote_ident(replay.view_schema);
    const bool view_schema_owner =
        !preparer && OidIsValid(view_nsp) && pg_call([&] { return pg_namespace_ownercheck(view_nsp, me); });
    if (!view_schema_owner)
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to abort replay " + std::to_string(replay.id))
            .detail("None of its view tables exists any more, so only " + who + " or a superuser may end it.")
            .hint("Ask " + who + " to run SELECT viewmig.abort();");
}

void abort_replay(const Replay& replay) {
    const bool exists = spi_value("SELECT 1 FROM pg_namespace WHERE nspname = $1", {text_param(replay.replay_schema)}).has_value();
    if (exists && !schema_is_ours(replay.replay_schema))
        ereport(WARNING, (errmsg("schema %s was not created by viewmig and is left alone", quote_ident(replay.replay_schema).c_str())));
    drop_our_schema(replay.replay_schema);
    spi_run_as_owner("DELETE FROM viewmig.replay_groups WHERE replay_id = $1", {int8_param(replay.id)});
    spi_run_as_owner("DELETE FROM viewmig.increment_groups WHERE replay_id = $1", {int8_param(replay.id)});
    spi_run_as_owner("DELETE FROM viewmig.replay_deferred_ddl WHERE replay_id = $1", {int8_param(replay.id)});
    spi_run_as_owner("UPDATE viewmig.replays SET state = 'aborted', finished_at = now(), updated_at = now() WHERE id = $1",
                     {int8_param(replay.id)});
}

}  // namespace viewmig::pg

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
        require_abort_rights(*replay);
        abort_replay(*replay);
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}
}
