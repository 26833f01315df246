// viewmig.register_projector(): validates a projector (handler signature, managed tables, rights)
// and records it as a version (the checks and the recording are shared with
// register_declarative_projector, see projector_registration.hpp). The first version of a projector is active at once; a changed
// definition becomes a pending version, activated by the replay's complete().
#include "pg/projector_registration.hpp"
#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/live_projection.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {
namespace {

// An event handler takes one event (the event table's row type); a batch handler an array of them.
void check_handler(const EventStore& es, const SqlParam& handler, bool batch, Oid owner) {
    QueryResult r = spi_run(
        "SELECT p.oid::regprocedure::text, p.pronargs, p.proargtypes[0], p.prokind::text, "
        "       NULL, format_type($2, NULL), "
        "       CASE WHEN $3 THEN (SELECT typarray FROM pg_type WHERE oid = $2) ELSE $2 END "
        "FROM pg_proc p WHERE p.oid = $1",
        {handler, oid_param(es.rowtype), bool_param(batch)});
    const Row& row = r.rows.at(0);
    const std::string signature = *row[0];
    if (*row[3] != "f" || to_int8(row[1]) != 1 || to_int8(row[2]) != to_int8(row[6]))
        throw UserError(ERRCODE_INVALID_FUNCTION_DEFINITION, "handler " + signature + " has the wrong signature")
            .detail(batch ? "A batch handler takes exactly one argument, an array of the event table's row type " + *row[5] + "."
                          : "A handler takes exactly one argument of the event table's row type " + *row[5] + ".")
            .hint(batch ? "CREATE FUNCTION my_handler(events " + *row[5] + "[]) RETURNS void ..., or register it with mode => 'event'."
                        : "CREATE FUNCTION my_handler(e " + *row[5] + ") RETURNS void ...");
    // In C: a caller's functions can not answer these checks. The handler runs as the projector's
    // owner (projector_rights.hpp), so that role must control its code, not just be allowed to run it.
    const Oid handler_oid = static_cast<Oid>(std::stoul(*handler.text));
    if (!pg_call([&] { return pg_proc_aclcheck(handler_oid, GetUserId(), ACL_EXECUTE) == ACLCHECK_OK; }))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied for handler " + signature);
    Oid handler_owner = InvalidOid;
    const bool controlled = pg_call([&] {
        HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler_oid));
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for function %u", handler_oid);
        handler_owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->proowner;
        ReleaseSysCache(tuple);
        return has_privs_of_role(handler_owner, owner);
    });
    if (!controlled)
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        "handler " + signature + " is owned by role " +
                            std::string(pg_call([&] { return GetUserNameFromId(handler_owner, false); })) +
                            ", which could change the code that runs with the rights of the projector's owner")
            .detail("A handler runs with the rights of the projector's owner; its owner must already have those rights.")
            .hint("Register the projector as the handler's owner, or ALTER FUNCTION ... OWNER TO a role with the projector owner's rights.");
}

}  // namespace

}  // namespace viewmig::pg

using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_register_projector);
PGDLLEXPORT Datum viewmig_register_projector(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.register_projector()", 4);
        if (PG_ARGISNULL(5)) throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "live must not be NULL");
        const std::string mode = PG_ARGISNULL(6) ? "event" : text_to_cstring(PG_GETARG_TEXT_PP(6));
        if (mode != "event" && mode != "batch")
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "mode must be 'event' or 'batch', not '" + mode + "'")
                .hint("'event': the handler takes one event; 'batch': an array of the events of whole aggregates.");
        spi_connect();
        const std::string name = *arg_param(fcinfo, 0).text;
        if (name.empty()) throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "a projector needs a non-empty name");
        const SqlParam handler = arg_param(fcinfo, 1), tables = arg_param(fcinfo, 2), indexes = arg_param(fcinfo, 3),
                       event_types = arg_param(fcinfo, 4);
        const bool live = PG_GETARG_BOOL(5);

        const EventStore es = load_event_store();
        check_handler(es, handler, mode == "batch", projector_owner(name));
        auto [view_schema, table_names] = check_managed_tables(es, tables);
        check_against_other_projectors(name, view_schema, table_names);
        check_patterns(indexes, event_types);

        ProjectorDefinition d{name, handler, view_schema, table_names, indexes, event_types, live, mode, std::nullopt, std::nullopt};
        const int version = record_projector_version(d, es);
        spi_finish();
        PG_RETURN_INT32(version);
    });
}
}
