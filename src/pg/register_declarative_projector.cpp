// viewmig.register_declarative_projector(): a projector given as rules (see
// core/declarative_rules.hpp). The rules are checked against the managed tables now; the
// PL/pgSQL handler generated from them is what increments and live projection run, and the
// initial replay runs the same rules in the compiled engine (declarative_replay.hpp).
#include "core/declarative_sql.hpp"
#include "pg/declarative_plan.hpp"
#include "pg/guard.hpp"
#include "pg/projector_registration.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/errcodes.h"
}

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_register_declarative_projector);
PGDLLEXPORT Datum viewmig_register_declarative_projector(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.register_declarative_projector()", 6);
        spi_connect();
        const std::string name = *arg_param(fcinfo, 0).text;
        if (name.empty()) throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "a projector needs a non-empty name");
        const std::string rules = *spi_value("SELECT $1::jsonb::text", {arg_param(fcinfo, 1)});
        const SqlParam tables = arg_param(fcinfo, 2), indexes = arg_param(fcinfo, 3);
        const bool live = PG_GETARG_BOOL(4);
        const std::string json_column = *arg_param(fcinfo, 5).text;

        const EventStore es = load_event_store();
        auto [view_schema, table_names] = check_managed_tables(es, tables);
        check_against_other_projectors(name, view_schema, table_names);
        check_patterns(indexes, text_array_param(std::nullopt));
        const core::Plan plan = compile_declarative_plan(es, rules, view_schema, table_names, json_column);

        // The row path: one function per distinct generated body, owned by the extension (users may
        // not create objects in schema viewmig); it runs with its caller's rights like any handler.
        const std::string row_type = es.qualified();  // a table's row type has its name
        const std::string body_key = core::handler_sql(plan, "f", row_type);
        const std::string function =
            "viewmig." + quote_ident("declarative_" + *spi_value("SELECT left(md5($1), 20)", {text_param(body_key)}));
        spi_run_as_owner(core::handler_sql(plan, function, row_type));
        const std::string signature = function + "(" + row_type + ")";

        std::vector<std::string> event_types;
        for (const auto& et : plan.event_types) event_types.push_back(et.event_type);
        ProjectorDefinition d{name, text_param(signature), view_schema, table_names, indexes, text_array_param(event_types),
                              live, "declarative", rules, json_column};
        const int version = record_projector_version(d, es);
        spi_finish();
        PG_RETURN_INT32(version);
    });
}
}
