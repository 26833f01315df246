// viewmig.register_projector(): validates a projector (handler signature, managed tables, rights)
// and records it as a version. The first version of a projector is active at once; a changed
// definition becomes a pending version, activated by the replay's complete().
#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/live_projection.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/builtins.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {
namespace {

// An event handler takes one event (the event table's row type); a batch handler an array of them.
void check_handler(const EventStore& es, const SqlParam& handler, bool batch) {
    QueryResult r = spi_run(
        "SELECT p.oid::regprocedure::text, p.pronargs, p.proargtypes[0], p.prokind::text, "
        "       has_function_privilege(p.oid, 'EXECUTE'), format_type($2, NULL), "
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
    if (!to_bool(row[4]))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied for handler " + signature);
}

// Returns the view schema and the table names (in the given order).
std::pair<std::string, std::vector<std::string>> check_managed_tables(const EventStore& es, const SqlParam& tables) {
    QueryResult r = spi_run(
        "SELECT u.t::oid, n.nspname, c.relname, c.relkind::text, pg_has_role(c.relowner, 'USAGE') "
        "FROM unnest($1::regclass[]) WITH ORDINALITY u(t, ord) "
        "LEFT JOIN pg_class c ON c.oid = u.t LEFT JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY u.ord",
        {tables});
    if (r.rows.empty())
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "a projector needs at least one managed table");
    std::string view_schema;
    std::vector<std::string> names;
    for (const Row& row : r.rows) {
        if (!row[0]) throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "managed_tables must not contain NULL");
        const std::string qualified = quote_qualified(*row[1], *row[2]);
        if (static_cast<Oid>(std::stoul(*row[0])) == es.events)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "the event table " + qualified + " can not be a managed table");
        if (*row[3] != "r")
            throw UserError(ERRCODE_WRONG_OBJECT_TYPE, qualified + " is not a plain table")
                .hint("Managed tables must be ordinary tables.");
        if (view_schema.empty()) view_schema = *row[1];
        if (*row[1] != view_schema)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "managed table " + qualified + " is outside the view schema " +
                                                                 quote_ident(view_schema))
                .detail("All managed tables of all projectors live in one view schema.");
        if (!to_bool(row[4]))
            throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "must be owner of table " + qualified)
                .detail("viewmig rebuilds and swaps managed tables, which needs their owner's rights.");
        for (const auto& n : names)
            if (n == *row[2]) throw UserError(ERRCODE_DUPLICATE_OBJECT, "table " + qualified + " is listed twice");
        names.push_back(*row[2]);
    }
    return {view_schema, names};
}

void check_against_other_projectors(const std::string& projector, const std::string& view_schema,
                                    const std::vector<std::string>& tables) {
    auto other_schema = spi_value(
        "SELECT view_schema FROM viewmig.projector_versions WHERE status IN ('active', 'pending') "
        "AND projector <> $1 AND view_schema <> $2 LIMIT 1",
        {text_param(projector), text_param(view_schema)});
    if (other_schema)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "the view schema is " + quote_ident(*other_schema) +
                                                             ", but these managed tables are in " + quote_ident(view_schema))
            .detail("All managed tables of all projectors live in one view schema.");
    QueryResult taken = spi_run(
        "SELECT projector, t FROM viewmig.projector_versions, unnest(managed_tables) t "
        "WHERE status IN ('active', 'pending') AND projector <> $1 AND t = ANY($2::name[]) LIMIT 1",
        {text_param(projector), text_array_param(tables)});
    if (!taken.rows.empty())
        throw UserError(ERRCODE_DUPLICATE_OBJECT, "table " + quote_ident(*taken.rows[0][1]) +
                                                      " is already managed by projector \"" + *taken.rows[0][0] + "\"")
            .detail("Each managed table belongs to exactly one projector.");
}

void check_patterns(const SqlParam& patterns, const SqlParam& event_types) {
    if (to_bool(spi_value("SELECT $1::text[] IS NULL OR array_position($1, NULL) IS NOT NULL", {patterns})))
        throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "additional_replay_indexes must not be or contain NULL");
    // Compiling each pattern once reports an invalid regular expression now, not at prepare time.
    spi_run("SELECT '' ~ ('^(' || p || ')$') FROM unnest($1::text[]) p", {patterns});
    if (to_bool(spi_value("SELECT array_position($1::text[], NULL) IS NOT NULL", {event_types})))
        throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "event_types must not contain NULL")
            .hint("Pass NULL (not an array with NULL) to receive every event type.");
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
        check_handler(es, handler, mode == "batch");
        auto [view_schema, table_names] = check_managed_tables(es, tables);
        check_against_other_projectors(name, view_schema, table_names);
        check_patterns(indexes, event_types);

        const std::vector<SqlParam> definition = {text_param(name),       handler, text_param(view_schema),
                                                  text_array_param(table_names), indexes, event_types, bool_param(live),
                                                  text_param(mode)};
        const std::string same_definition =
            "projector = $1 AND handler = $2::regprocedure AND view_schema = $3 AND managed_tables = $4::name[] "
            "AND additional_replay_indexes = $5::text[] AND event_types IS NOT DISTINCT FROM $6::text[] AND live = $7 "
            "AND mode = $8";

        // Serialise registrations of one projector.
        spi_run("SELECT pg_advisory_xact_lock(hashtext('viewmig.register_projector'), hashtext($1))", {text_param(name)});
        QueryResult existing = spi_run(
            "SELECT version, status, (" + same_definition + ") FROM viewmig.projector_versions "
            "WHERE projector = $1 AND status IN ('active', 'pending') ORDER BY status DESC",
            definition);
        int version = 0;
        for (const Row& row : existing.rows) {
            if (to_bool(row[2])) {
                version = static_cast<int>(to_int8(row[0]));
                if (*row[1] == "active")  // back to the active definition: the pending change is withdrawn
                    spi_run_as_owner("UPDATE viewmig.projector_versions SET status = 'retired' "
                                     "WHERE projector = $1 AND status = 'pending'", {text_param(name)});
                break;
            }
        }
        if (version == 0) {
            const bool has_active = !existing.rows.empty() && *existing.rows.back()[1] == "active";
            spi_run_as_owner("UPDATE viewmig.projector_versions SET status = 'retired' "
                             "WHERE projector = $1 AND status = 'pending'", {text_param(name)});
            version = static_cast<int>(to_int8(spi_run_as_owner(
                "INSERT INTO viewmig.projector_versions (projector, version, handler, view_schema, managed_tables, "
                "  additional_replay_indexes, event_types, live, mode, status, activated_at) "
                "SELECT $1, coalesce((SELECT max(version) FROM viewmig.projector_versions WHERE projector = $1), 0) + 1, "
                "  $2::regprocedure, $3, $4::name[], $5::text[], $6::text[], $7, $8, "
                "  CASE WHEN $9 THEN 'pending' ELSE 'active' END, CASE WHEN $9 THEN NULL ELSE now() END "
                "RETURNING version",
                {definition[0], definition[1], definition[2], definition[3], definition[4], definition[5],
                 definition[6], definition[7], bool_param(has_active)}).rows.at(0)[0]));
            if (has_active) {
                const std::string hint = "It becomes active when a replay that includes it completes: viewmig.prepare_initial(ARRAY[" +
                                         quote_literal(name) + "]), ..., viewmig.complete().";
                ereport(NOTICE, (errmsg("projector \"%s\" version %d is pending", name.c_str(), version),
                                 errhint("%s", hint.c_str())));
            }
        }
        if (live) ensure_live_trigger(es);
        spi_finish();
        PG_RETURN_INT32(version);
    });
}
}
