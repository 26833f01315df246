// viewmig.prepare_initial(): starts a replay. Checks the schema names (never a schema viewmig did
// not create), re-creates the replay schema with copies of the managed tables, records the
// replay with the projector versions it builds and the indexes to build at completion.
#include "core/replay_state.hpp"
#include "core/schema_rules.hpp"
#include "pg/catalog.hpp"
#include "pg/declarative_plan.hpp"
#include "pg/guard.hpp"
#include "pg/owned_schemas.hpp"
#include "pg/schema_copy.hpp"
#include "pg/projector_rights.hpp"
#include "pg/spi.hpp"
#include "pg/step_args.hpp"
#include "pg/step_lock.hpp"
#include "pg/table_definition.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {
namespace {

void check_managed_tables(const std::vector<ProjectorVersion>& projectors) {
    for (const auto& p : projectors)
        for (const auto& t : p.managed_tables) require_table_owner_rights(p.view_schema, t, "replay projector \"" + p.projector + "\"");
}

}  // namespace
}  // namespace viewmig::pg

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_prepare_initial);
PGDLLEXPORT Datum viewmig_prepare_initial(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.prepare_initial()", 0);
        if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
            throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "replay_schema and archive_schema must not be NULL");
        spi_connect();
        std::optional<std::vector<std::string>> names;
        if (!PG_ARGISNULL(0)) names = parse_text_array(arg_param(fcinfo, 0).text);
        const std::string replay_schema = NameStr(*PG_GETARG_NAME(1));
        const std::string archive_schema = NameStr(*PG_GETARG_NAME(2));

        lock_replay_steps("prepare_initial");
        require_step(core::ReplayStep::PrepareInitial);
        const EventStore es = load_event_store();
        const std::vector<ProjectorVersion> projectors = load_projectors_for_replay(names);
        const std::string view_schema = projectors.front().view_schema;
        check_prepare_arguments(names, replay_schema, archive_schema);  // the checks viewmig.enqueue() makes too
        check_managed_tables(projectors);

        drop_our_schema(replay_schema, "viewmig.prepare_initial()");
        create_our_schema(replay_schema, "replay");
        grant_schema_to_projector_owners(replay_schema, projectors);

        std::vector<TableToCopy> tables;
        std::vector<std::string> table_names, projector_names, versions;
        for (const auto& p : projectors) {
            projector_names.push_back(p.projector);
            versions.push_back(std::to_string(p.version));
            std::optional<core::Plan> plan;
            if (p.rules) plan = compile_declarative_plan(es, p);
            for (std::size_t i = 0; i < p.managed_tables.size(); ++i) {
                // Keys after the load for every table of a declarative projector (shared ones too:
                // their rows are written at the end, or from the moment they need reading by key,
                // which adds their keys first; see declarative_replay.hpp).
                const bool bulk = plan.has_value();
                tables.push_back({p.managed_tables[i], p.additional_replay_indexes, bulk});
                table_names.push_back(p.managed_tables[i]);
            }
        }
        const std::vector<CopiedDefinition> copied = describe_before_copy(view_schema, table_names);
        const std::vector<DeferredDdl> deferred = copy_tables(view_schema, replay_schema, tables);

        const int64_t replay_id = to_int8(spi_run_as_owner(
            "INSERT INTO viewmig.replays (state, projectors, versions, view_schema, replay_schema, archive_schema, managed_tables, "
            "prepared_by) VALUES ('prepared', $1::text[], $2::text[]::int[], $3, $4, $5, $6::text[]::name[], $7) RETURNING id",
            {text_array_param(projector_names), text_array_param(versions), text_param(view_schema),
             text_param(replay_schema), text_param(archive_schema), text_array_param(table_names), oid_param(GetUserId())}).rows.at(0)[0]);
        // What was copied, so complete() can tell whether a view table changed meanwhile.
        record_copied_definitions(replay_id, copied);
        std::size_t kept = 0;
        for (const auto& d : deferred) {
            kept += d.kind == "index" || d.kind == "foreign_key";
            spi_run_as_owner("INSERT INTO viewmig.replay_deferred_ddl (replay_id, kind, table_name, object_name, definition) "
                             "VALUES ($1, $2, $3, $4, $5)",
                             {int8_param(replay_id), text_param(d.kind), text_param(d.table), text_param(d.object),
                              text_param(d.definition)});
        }
        ereport(NOTICE, (errmsg("viewmig: replay %lld prepared in schema %s: %zu tables, %zu indexes and foreign keys kept for prepare_completion",
                                static_cast<long long>(replay_id), quote_ident(replay_schema).c_str(), tables.size(),
                                kept),
                         errhint("Next: SELECT viewmig.replay_initial();")));
        spi_finish();
        PG_RETURN_INT64(replay_id);
    });
}
}
