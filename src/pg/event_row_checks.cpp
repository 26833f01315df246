// Event rows no replay step can read (see event_row_checks.hpp).
#include "pg/event_row_checks.hpp"

#include "pg/foreign_xact_ids.hpp"
#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {

namespace {

struct KeyColumn {
    const char* role;  // the set_event_store() parameter
    std::string name;
    bool nullable;
};

// The four columns viewmig orders, routes and bounds events by, with whether they may be NULL.
std::vector<KeyColumn> key_columns(const EventStore& es) {
    std::vector<KeyColumn> out{{"aggregate_id_column", es.aggregate_id_column, true},
                               {"sequence_number_column", es.sequence_number_column, true},
                               {"event_type_column", es.event_type_column, true},
                               {"xact_id_column", es.xact_id_column, true}};
    std::vector<std::string> names;
    for (const auto& c : out) names.push_back(c.name);
    QueryResult r = spi_run("SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a WHERE a.attrelid "
                            "OPERATOR(pg_catalog.=) $1 AND a.attnotnull AND a.attname::pg_catalog.text "
                            "OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[])",
                            {oid_param(es.events), text_array_param(names)});
    for (const Row& row : r.rows)
        for (auto& c : out)
            if (row[0] && c.name == *row[0]) c.nullable = false;
    return out;
}

std::string shown(const SqlText& v) { return v ? *v : "NULL"; }

std::string xact_range_sql(const std::string& x, const EventStore& es, std::optional<int64_t> lower,
                           std::optional<int64_t> upper, std::vector<SqlParam>& params) {
    std::string sql;
    auto bound = [&](const char* op, int64_t v) {
        params.push_back(int8_param(v));
        sql += " AND " + x + " OPERATOR(pg_catalog." + op + ") " + es.xact_bound_param(static_cast<int>(params.size()));
    };
    if (lower) bound(">=", *lower);
    if (upper) bound("<", *upper);
    return sql;
}

}  // namespace

void refuse_unreplayable_events(const EventStore& es, std::optional<int64_t> xact_lower, std::optional<int64_t> xact_upper) {
    const std::vector<KeyColumn> columns = key_columns(es);
    const std::string agg = "e." + quote_ident(es.aggregate_id_column), seq = "e." + quote_ident(es.sequence_number_column),
                      type = "e." + quote_ident(es.event_type_column), x = "e." + quote_ident(es.xact_id_column);
    const std::string row_sql = "SELECT e.tableoid::pg_catalog.regclass::pg_catalog.text, e.ctid::pg_catalog.text, " + agg +
                                "::pg_catalog.text, " + seq + "::pg_catalog.text, " + type + "::pg_catalog.text, " + x +
                                "::pg_catalog.text, pg_catalog.count(*) OVER () FROM " + es.qualified() + " e WHERE ";
    auto describe = [&](const Row& r) {
        return "ctid " + shown(r[1]) + " of " + shown(r[0]) + ": " + es.aggregate_id_column + "=" + shown(r[2]) + ", " +
               es.sequence_number_column + "=" + shown(r[3]) + ", " + es.event_type_column + "=" + shown(r[4]) + ", " +
               es.xact_id_column + "=" + shown(r[5]);
    };

    // NULL transaction ids: no snapshot window ever holds them (x < bound is never true).
    if (columns[3].nullable) {
        QueryResult r = spi_run(row_sql + x + " IS NULL ORDER BY e.tableoid, e.ctid LIMIT 1");
        if (!r.rows.empty())
            throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED,
                            "event table " + es.qualified() + " has " + shown(r.rows[0][6]) + " row(s) with a NULL " +
                                quote_ident(es.xact_id_column) + ", which no replay step would ever read")
                .detail("The first is at " + describe(r.rows[0]) + ".")
                .hint("Give them a transaction id, so that the next step replays them: " +
                      assign_current_xact_id_sql(es, "IS NULL") + " Then ALTER TABLE " + es.qualified() +
                      " ALTER COLUMN " + quote_ident(es.xact_id_column) + " SET NOT NULL;");
    }

    std::string any_null;
    for (int i = 0; i < 3; ++i)
        if (columns[i].nullable)
            any_null += (any_null.empty() ? "" : " OR ") + std::string("e.") + quote_ident(columns[i].name) + " IS NULL";
    if (any_null.empty()) return;
    std::vector<SqlParam> params;
    const std::string range = xact_range_sql(x, es, xact_lower, xact_upper, params);
    QueryResult r = spi_run(row_sql + "(" + any_null + ")" + range + " ORDER BY " + x + ", e.tableoid, e.ctid LIMIT 1", params);
    if (r.rows.empty()) return;
    const Row& row = r.rows[0];
    std::string which, set_not_null;
    for (int i = 0; i < 3; ++i) {
        if (!row[2 + i]) which += (which.empty() ? "" : ", ") + quote_ident(columns[i].name);
        if (columns[i].nullable)
            set_not_null += (set_not_null.empty() ? "" : ", ") + std::string("ALTER COLUMN ") + quote_ident(columns[i].name) +
                            " SET NOT NULL";
    }
    throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED,
                    "event row with a NULL " + which + " in event table " + es.qualified() + " can not be replayed")
        .detail("The row is at " + describe(row) + "; " + shown(row[6]) +
                " row(s) to replay have a NULL aggregate id, sequence number or event type. A NULL has no place in "
                "the replay order (aggregate id, sequence number) and no projector to go to.")
        .hint("Give those rows values or delete them, then ALTER TABLE " + es.qualified() + " " + set_not_null +
              "; and call this step again.");
}

void warn_nullable_key_columns(const EventStore& es) {
    for (const KeyColumn& c : key_columns(es)) {
        if (!c.nullable) continue;
        const std::string table = es.qualified(), column = quote_ident(c.name);
        ereport(WARNING,
                (errmsg("column \"%s\" of event table %s may be NULL", c.name.c_str(), table.c_str()),
                 errdetail("viewmig reads it as the %s; replay steps refuse event rows where it is NULL, and checking "
                           "for them reads the event table.", c.role),
                 errhint("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;", table.c_str(), column.c_str())));
    }
}

}  // namespace viewmig::pg
