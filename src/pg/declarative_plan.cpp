// Catalog side of declarative rule compilation (see declarative_plan.hpp).
#include "pg/declarative_plan.hpp"

#include "pg/guard.hpp"
#include "pg/projector_rights.hpp"
#include "pg/schema_copy.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "nodes/nodes.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {
namespace {

class CatalogTypes : public core::TypeOracle {
public:
    std::optional<std::string> resolve_type(const std::string& name) const override {
        // to_regtype() reports a syntax error in the name as an ERROR; treat it as unknown.
        try {
            return in_subtransaction([&] { return spi_value("SELECT format_type(to_regtype($1), NULL)", {text_param(name)}); });
        } catch (const PgError&) {
            return std::nullopt;
        }
    }
    bool can_assign(const std::string& from, const std::string& to) const override {
        if (from == to) return true;
        const Row r = spi_run("SELECT to_regtype($1)::oid, to_regtype($2)::oid", {text_param(from), text_param(to)}).rows.at(0);
        if (!r[0] || !r[1]) return false;
        const Oid f = static_cast<Oid>(std::stoul(*r[0])), t = static_cast<Oid>(std::stoul(*r[1]));
        return pg_call([&] {
            Oid in = f;
            return can_coerce_type(1, &in, &t, COERCION_ASSIGNMENT);
        });
    }
};

// Whether a stored default expression (pg_attrdef.adbin) calls anything but immutable functions.
bool mutable_default(const std::string& adbin) {
    const char* text = adbin.c_str();
    return pg_call([&] { return contain_mutable_functions(static_cast<Node*>(stringToNode(text))); });
}

core::TableInfo load_table(const std::string& schema, const std::string& table) {
    const SqlParam rel = text_param(quote_qualified(schema, table));
    core::TableInfo info;
    info.name = table;
    const Oid owner = static_cast<Oid>(std::stoul(*spi_value("SELECT relowner FROM pg_class WHERE oid = $1::regclass", {rel})));
    QueryResult cols = spi_run(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL), a.atttypid::int8, "
        "       a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attidentity <> '', a.attgenerated <> '', "
        "       d.adbin::text, pg_get_expr(d.adbin, d.adrelid) "
        "FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        {rel});
    for (const Row& r : cols.rows) {
        core::ColumnInfo c;
        c.name = *r[0];
        c.type = *r[1];
        c.base_type = *r[2];
        const Oid type = static_cast<Oid>(to_int8(r[3]));
        if (type == INT2OID || type == INT4OID || type == INT8OID) {
            c.kind = core::ValueKind::Integer;
            c.integer_bits = type == INT2OID ? 16 : type == INT4OID ? 32 : 64;
        } else if (type == TIMESTAMPOID || type == TIMESTAMPTZOID) {
            c.kind = core::ValueKind::Timestamp;
            c.timestamp_with_zone = type == TIMESTAMPTZOID;
        }
        c.not_null = to_bool(r[4]);
        c.has_default = to_bool(r[5]);
        c.generated = to_bool(r[7]);
        if (c.has_default && !c.generated) {
            if (to_bool(r[6]) || (r[8] && mutable_default(*r[8]))) {
                c.volatile_default = true;
            } else if (r[9]) {
                // A constant default, in the engine's form (see core/declarative_engine.hpp).
                const std::string value = "CAST((" + *r[9] + ") AS " + c.base_type + ")";
                const std::string sql = "SELECT " + (c.kind == core::ValueKind::Timestamp
                                                          ? "(extract(epoch FROM " + value + ") * 1000000)::int8::text"
                                                          : value + "::text");
                // Evaluated as the table's owner, security-restricted: an "immutable" function in a
                // default is the owner's code, never to run with the rights of whoever replays.
                ActingAs table_owner(role_to_switch_to(owner));
                c.default_text = run_with_search_path(quote_ident(schema), sql, {}).rows.at(0)[0];
            }
        }
        info.columns.push_back(std::move(c));
    }
    QueryResult keys = spi_run(
        "SELECT array_agg(a.attname ORDER BY k.ord)::text FROM pg_constraint c "
        "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
        "WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u') "
        "GROUP BY c.oid, c.contype, c.conname HAVING bool_and(a.attnotnull) "
        "ORDER BY c.contype = 'p' DESC, c.conname",
        {rel});
    for (const Row& r : keys.rows) info.unique_keys.push_back(parse_text_array(r[0]));
    return info;
}

}  // namespace

core::Plan compile_declarative_plan(const EventStore& es, const std::string& rules, const std::string& schema,
                                    const std::vector<std::string>& tables, const std::string& json_column) {
    core::RuleContext ctx;
    for (const auto& t : tables) ctx.tables.push_back(load_table(schema, t));
    QueryResult cols = spi_run(
        "SELECT attname, format_type(atttypid, NULL), atttypid IN ('json'::regtype, 'jsonb'::regtype) FROM pg_attribute "
        "WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        {oid_param(es.events)});
    for (const Row& r : cols.rows) {
        ctx.event_columns.push_back(core::EventColumn{*r[0], *r[1]});
        if (*r[0] == json_column && to_bool(r[2])) ctx.json_column = json_column;
    }
    ctx.aggregate_id_column = es.aggregate_id_column;
    ctx.event_type_column = es.event_type_column;
    CatalogTypes types;
    try {
        return core::compile_rules(rules, ctx, types);
    } catch (const core::RuleError& e) {
        auto error = UserError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid rule at " + e.where + ": " + e.what());
        if (!e.hint.empty()) throw std::move(error).hint(e.hint);
        throw error;
    } catch (const core::JsonParseError& e) {
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, std::string("rules are not valid JSON: ") + e.what());
    }
}

core::Plan compile_declarative_plan(const EventStore& es, const ProjectorVersion& p) {
    return compile_declarative_plan(es, *p.rules, p.view_schema, p.managed_tables, p.json_column);
}

}  // namespace viewmig::pg
