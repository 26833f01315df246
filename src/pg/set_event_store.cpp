// viewmig.set_event_store(): validates the event table's layout and records it.
// The defaults are Sequent's event_records layout; other layouts work through the column
// overrides. A missing column is an ERROR whose HINT shows the ALTER TABLE that adds it.
#include "pg/catalog.hpp"
#include "pg/event_row_checks.hpp"
#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {
namespace {

struct ColumnRole {
    const char* parameter;
    std::string name;
    std::vector<std::string> accepted_types;
    const char* sequent_definition;  // for the HINT
};

void require_column(const EventStore& es, const ColumnRole& role) {
    auto type = spi_value("SELECT format_type(atttypid, NULL) FROM pg_attribute "
                          "WHERE attrelid = $1 AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                          {oid_param(es.events), text_param(role.name)});
    if (!type)
        throw UserError(ERRCODE_UNDEFINED_COLUMN,
                        "column \"" + role.name + "\" of event table " + es.qualified() + " does not exist")
            .detail(std::string("viewmig reads it as the ") + role.parameter + ".")
            .hint("Add it with ALTER TABLE " + es.qualified() + " ADD COLUMN " + quote_ident(role.name) + " " +
                  role.sequent_definition + "; or name the existing column with " + role.parameter + " => '...'.");
    for (const auto& t : role.accepted_types)
        if (*type == t) return;
    std::string accepted;
    for (const auto& t : role.accepted_types) accepted += (accepted.empty() ? "" : ", ") + t;
    throw UserError(ERRCODE_DATATYPE_MISMATCH, "column \"" + role.name + "\" of event table " + es.qualified() +
                                                   " has type " + *type + ", which viewmig can not use as " +
                                                   role.parameter)
        .hint("Accepted types: " + accepted + ".");
}

// True when some valid index of the table (or, for a partitioned table, of the parent) starts with
// the given columns, in order.
bool has_index_leading_with(Oid table, const std::vector<std::string>& columns) {
    std::string wanted;
    for (std::size_t i = 0; i < columns.size(); ++i) wanted += (i ? " " : "") + std::string("%s");
    auto found = spi_value(
        "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND i.indisvalid "
        "  AND (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
        "       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "       WHERE k.ord <= cardinality($2::name[]))::name[] = $2::name[])",
        {oid_param(table), text_array_param(columns)});
    return to_bool(found);
}

}  // namespace
}  // namespace viewmig::pg

using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_set_event_store);
PGDLLEXPORT Datum viewmig_set_event_store(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.set_event_store()");
        const Oid events = PG_GETARG_OID(0);
        const std::string names[4] = {NameStr(*PG_GETARG_NAME(1)), NameStr(*PG_GETARG_NAME(2)),
                                      NameStr(*PG_GETARG_NAME(3)), NameStr(*PG_GETARG_NAME(4))};
        spi_connect();
        if (auto active = find_active_replay(false))
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "cannot change the event store while a replay is active")
                .hint("Finish it with viewmig.complete() or discard it with viewmig.abort() first.");

        QueryResult rel = spi_run(
            "SELECT n.nspname, c.relname, c.relkind::text, c.reltype "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            {oid_param(events)});
        EventStore es;
        es.events = events;
        es.schema = *rel.rows.at(0)[0];
        es.table = *rel.rows[0][1];
        if (*rel.rows[0][2] != "r" && *rel.rows[0][2] != "p")
            throw UserError(ERRCODE_WRONG_OBJECT_TYPE, es.qualified() + " is not a table")
                .hint("The event store must be a table or a partitioned table.");
        // What every replay reads is shared configuration: only the owner of the event table may
        // name it, and only the owner of the current one may replace it (checked in C, where no
        // function of the caller's can answer).
        if (!pg_call([&] { return pg_class_ownercheck(events, GetUserId()); }))
            throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "must be owner of table " + es.qualified() + " to make it the event store")
                .detail("Every projector replays the event store; naming it is its owner's decision.")
                .hint("Call viewmig.set_event_store() as the owner of " + es.qualified() + " (or a member of that role).");
        if (auto current = spi_value("SELECT events::oid FROM viewmig.event_store")) {
            const Oid current_oid = static_cast<Oid>(std::stoul(*current));
            const bool may_replace = pg_call([&] {
                return current_oid == events || !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(current_oid)) ||
                       pg_class_ownercheck(current_oid, GetUserId());
            });
            if (!may_replace)
                throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "must be owner of the current event store " +
                                                                    *spi_value("SELECT $1::oid::regclass::text", {text_param(current)}) +
                                                                    " to replace it")
                    .hint("Ask its owner to call viewmig.set_event_store().");
        }

        require_column(es, {"aggregate_id_column", names[0], {"uuid", "text", "character varying"}, "uuid NOT NULL"});
        require_column(es, {"sequence_number_column", names[1], {"integer", "bigint", "smallint"}, "integer NOT NULL"});
        require_column(es, {"event_type_column", names[2], {"text", "character varying"}, "text NOT NULL"});
        require_column(es, {"xact_id_column", names[3], {"bigint", "xid8"},
                            "bigint DEFAULT pg_current_xact_id()::text::bigint"});

        if (!has_index_leading_with(events, {names[3]}))
            ereport(WARNING,
                    (errmsg("no index of event table %s starts with column \"%s\"", es.qualified().c_str(), names[3].c_str()),
                     errdetail("Every viewmig.replay_increment() would read the whole event table."),
                     errhint("CREATE INDEX CONCURRENTLY ON %s (%s);", es.qualified().c_str(), quote_ident(names[3]).c_str())));
        if (!has_index_leading_with(events, {names[0], names[1]}))
            ereport(WARNING,
                    (errmsg("no index of event table %s starts with (%s, %s)", es.qualified().c_str(), names[0].c_str(), names[1].c_str()),
                     errdetail("Each replay group would be read by a sequential scan and a sort."),
                     errhint("CREATE UNIQUE INDEX CONCURRENTLY ON %s (%s, %s);", es.qualified().c_str(),
                             quote_ident(names[0]).c_str(), quote_ident(names[1]).c_str())));

        // Registered handlers take the event table's row type: a different table would break them.
        QueryResult mismatched = spi_run(
            "SELECT v.projector, v.handler::text FROM viewmig.projector_versions v JOIN pg_proc p ON p.oid = v.handler "
            "WHERE v.status IN ('active', 'pending') "
            "  AND p.proargtypes[0] <> CASE WHEN v.mode = 'batch' THEN (SELECT typarray FROM pg_type WHERE oid = $1) ELSE $1 END "
            "ORDER BY 1",
            {oid_param(static_cast<Oid>(std::stoul(*rel.rows[0][3])))});
        if (!mismatched.rows.empty())
            throw UserError(ERRCODE_DATATYPE_MISMATCH, "projector \"" + *mismatched.rows[0][0] + "\" has handler " +
                                                           *mismatched.rows[0][1] + ", which does not take rows of " + es.qualified())
                .hint("Register the projectors again with handlers for the new event table first.");

        es.aggregate_id_column = names[0];
        es.sequence_number_column = names[1];
        es.event_type_column = names[2];
        es.xact_id_column = names[3];
        warn_nullable_key_columns(es);

        spi_run_as_owner(
            "INSERT INTO viewmig.event_store AS s (events, aggregate_id_column, sequence_number_column, "
            "                                   event_type_column, xact_id_column) VALUES ($1::oid::regclass, $2, $3, $4, $5) "
            "ON CONFLICT (singleton) DO UPDATE SET events = EXCLUDED.events, aggregate_id_column = EXCLUDED.aggregate_id_column, "
            "  sequence_number_column = EXCLUDED.sequence_number_column, event_type_column = EXCLUDED.event_type_column, "
            "  xact_id_column = EXCLUDED.xact_id_column, updated_at = now()",
            {oid_param(events), text_param(names[0]), text_param(names[1]), text_param(names[2]), text_param(names[3])});
        spi_finish();
        PG_RETURN_VOID();
    });
}
}
