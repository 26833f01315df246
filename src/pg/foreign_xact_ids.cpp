// Transaction ids from another cluster in the event table (see foreign_xact_ids.hpp).
#include "pg/foreign_xact_ids.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {

namespace {

// SQL for the transaction id given by `function` (pg_catalog, no argument) in the column's type.
std::string xact_id_of(const EventStore& es, const std::string& function) {
    const std::string call = "pg_catalog." + function + "()";
    return es.xact_id_type == "xid8" ? call : call + "::pg_catalog.text::pg_catalog.int8";
}

}  // namespace

std::string assign_current_xact_id_sql(const EventStore& es, const std::string& condition) {
    const std::string x = quote_ident(es.xact_id_column);
    const std::string current = es.xact_id_type == "xid8" ? "pg_current_xact_id()" : "pg_current_xact_id()::text::bigint";
    return "UPDATE " + es.qualified() + " SET " + x + " = " + current + " WHERE " + x + " " + condition + ";";
}

void refuse_foreign_xact_ids(const EventStore& es) {
    const std::string x = "e." + quote_ident(es.xact_id_column);
    const std::string xmax = es.xact_id_type == "xid8"
                                 ? "pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())"
                                 : "pg_catalog.pg_snapshot_xmax(pg_catalog.pg_current_snapshot())::pg_catalog.text::pg_catalog.int8";
    const std::string own = xact_id_of(es, "pg_current_xact_id_if_assigned");
    // Names pinned to pg_catalog: this may run in a worker with more rights than the caller.
    const Row r = spi_run("SELECT pg_catalog.count(*), "
                          "       pg_catalog.max(" + x + "::pg_catalog.text::pg_catalog.numeric)::pg_catalog.text, " +
                          xmax + "::pg_catalog.text FROM " + es.qualified() + " e WHERE " + x +
                          " OPERATOR(pg_catalog.>=) " + xmax + " AND (" + own + " IS NULL OR " + x +
                          " OPERATOR(pg_catalog.<>) " + own + ")")
                      .rows.at(0);
    const int64_t count = to_int8(r[0]);
    if (count == 0) return;
    const std::string x_name = quote_ident(es.xact_id_column);
    throw UserError(ERRCODE_DATA_EXCEPTION,
                    "event table " + es.qualified() + " has " + std::to_string(count) + " row(s) whose " + x_name +
                        " this cluster has not assigned yet (highest " + *r[1] + ")")
        .detail("Transaction ids of this cluster are below " + *r[2] +
                " so far. Such rows were usually restored from another cluster; every snapshot bound of a replay lies "
                "below them, so replay_initial and replay_increment would skip them and complete() would replay them "
                "all under its lock.")
        .hint("Give them a transaction id of this cluster, in one transaction, so that the next step replays them: " +
              assign_current_xact_id_sql(es, es.xact_id_type == "xid8" ? "> pg_current_xact_id()"
                                                                    : "> pg_current_xact_id()::text::bigint") +
              " If a replay has already replayed later events of the same aggregates, start it again "
              "(viewmig.abort(), viewmig.prepare_initial()).");
}

}  // namespace viewmig::pg
