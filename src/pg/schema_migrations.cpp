// Queuing schema migrations and checking their SQL (see schema_migrations.hpp).
#include "pg/schema_migrations.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {

std::optional<SchemaMigration> find_schema_migration(int64_t id, bool for_update) {
    QueryResult r = spi_run_as_owner(
        "SELECT m.parent_id, m.kind, m.migration_name, m.status, m.definition, m.table_name::oid, n.nspname, c.relname, "
        "m.composite, m.statement_timeout::text, m.attempts, m.max_attempts, m.run_as::oid, m.worker_pid "
        "FROM viewmig.background_schema_migrations m LEFT JOIN pg_class c ON c.oid = m.table_name "
        "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace WHERE m.id = $1" +
            std::string(for_update ? " FOR UPDATE OF m" : ""),
        {int8_param(id)});
    if (r.rows.empty()) return std::nullopt;
    const Row& row = r.rows[0];
    SchemaMigration m;
    m.id = id;
    if (row[0]) m.parent_id = to_int8(row[0]);
    m.kind = *row[1];
    m.name = *row[2];
    m.status = *row[3];
    m.definition = *row[4];
    m.table = static_cast<Oid>(std::stoul(*row[5]));
    m.table_schema = row[6].value_or("");
    m.table_name = row[7].value_or("");
    m.composite = to_bool(row[8]);
    m.statement_timeout = *row[9];
    m.attempts = static_cast<int>(to_int8(row[10]));
    m.max_attempts = static_cast<int>(to_int8(row[11]));
    m.run_as = static_cast<Oid>(std::stoul(*row[12]));
    if (row[13]) m.worker_pid = static_cast<int>(to_int8(row[13]));
    return m;
}

void record_schema_migration_event(int64_t id, const std::string& event, const std::string& details) {
    spi_run_as_owner("SELECT viewmig.record_schema_migration_event($1, $2, $3::jsonb)",
                     {int8_param(id), text_param(event), text_param(details)});
}

void report_schema_migration_outcome(int64_t id) {
    const Row row = spi_run("SELECT status, migration_name, attempts, max_attempts, coalesce(error_message, ''), "
                            "greatest(0, ceil(extract(epoch FROM run_after - now())))::int FROM viewmig.background_schema_migrations WHERE id = $1",
                            {int8_param(id)})
                        .rows.at(0);
    const std::string& status = *row[0];
    if (status == "errored" || status == "failed")
        ereport(WARNING, (errmsg("background schema migration %lld (%s) %s on attempt %s of %s: %s", static_cast<long long>(id),
                                 row[1]->c_str(), status.c_str(), row[2]->c_str(), row[3]->c_str(), row[4]->c_str()),
                          status == "errored" ? errhint("It is tried again in %s s (see viewmig.retry_delay).", row[5]->c_str())
                                              : errhint("Fix the cause, then SELECT viewmig.retry_schema_migration(%lld);",
                                                        static_cast<long long>(id))));
    else
        ereport(NOTICE, (errmsg("background schema migration %lld (%s): %s", static_cast<long long>(id), row[1]->c_str(),
                                status.c_str())));
}

Queued queue_schema_migration(const NewSchemaMigration& m) {
    if (!m.parent_id) {
        QueryResult existing = spi_run_as_owner(
            "SELECT id, definition, status FROM viewmig.background_schema_migrations "
            "WHERE table_name = $1 AND migration_name = $2 AND kind = $3 AND parent_id IS NULL AND status <> 'cancelled'",
            {oid_param(m.table), text_param(m.name), text_param(m.kind)});
        if (!existing.rows.empty()) {
            const Row& row = existing.rows[0];
            if (*row[1] != m.definition)
                throw UserError(ERRCODE_DUPLICATE_OBJECT, "a background schema migration named \"" + m.name + "\" on table " +
                                                              table_info(m.table).name + " already exists with another definition")
                    .detail("Queued (migration " + *row[0] + ", " + *row[2] + "): " + *row[1] + "\nNew: " + m.definition)
                    .hint("Choose another name, or cancel migration " + *row[0] + " and delete it first.");
            return {to_int8(row[0]), true};
        }
    }
    const bool delayed = m.run_after && to_bool(spi_value("SELECT $1::timestamptz > now()", {text_param(*m.run_after)}));
    QueryResult r = spi_run_as_owner(
        "INSERT INTO viewmig.background_schema_migrations (parent_id, kind, migration_name, table_name, definition, composite, "
        "status, statement_timeout, max_attempts, run_after, run_as) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::interval, $9, coalesce($10::timestamptz, now()), $11) RETURNING id",
        {m.parent_id ? int8_param(*m.parent_id) : SqlParam{INT8OID, std::nullopt}, text_param(m.kind), text_param(m.name),
         oid_param(m.table), text_param(m.definition), bool_param(m.composite), text_param(std::string(delayed ? "delayed" : "enqueued")),
         text_param(m.statement_timeout), int4_param(m.max_attempts), text_param(m.run_after), oid_param(GetUserId())});
    const int64_t id = to_int8(r.rows.at(0)[0]);
    record_schema_migration_event(id, "enqueued");
    return {id, false};
}

void require_statements(const std::string& sql, int expected_count, int expected_tag, const std::string& what) {
    const char* text = sql.c_str();
    struct Shape {
        int count;
        bool tags_match;
    };
    const Shape shape = pg_call([&]() -> Shape {
        List* stmts = raw_parser(text, RAW_PARSE_DEFAULT);
        bool match = true;
        ListCell* lc;
        foreach (lc, stmts) {
            RawStmt* raw = lfirst_node(RawStmt, lc);
            if (expected_tag != 0 && static_cast<int>(nodeTag(raw->stmt)) != expected_tag) match = false;
        }
        return Shape{list_length(stmts), match};
    });
    if (shape.count == 0 || (expected_count != 0 && shape.count != expected_count) || !shape.tags_match)
        throw UserError(ERRCODE_SYNTAX_ERROR, what + " must be " +
                                                  (expected_count == 1 ? "exactly one statement of the expected kind"
                                                                       : "one or more SQL statements"))
            .detail("Got " + std::to_string(shape.count) + " statement(s): " + sql);
}

std::vector<Statement> split_statements(const std::string& sql) {
    struct Span {
        int location, length;
        bool concurrent;
    };
    const char* text = sql.c_str();
    std::vector<Span> spans;
    std::vector<Span>* out = &spans;
    pg_call([&] {
        List* stmts = raw_parser(text, RAW_PARSE_DEFAULT);
        ListCell* lc;
        foreach (lc, stmts) {
            RawStmt* raw = lfirst_node(RawStmt, lc);
            bool concurrent = false;
            if (IsA(raw->stmt, IndexStmt)) concurrent = castNode(IndexStmt, raw->stmt)->concurrent;
            if (IsA(raw->stmt, DropStmt)) concurrent = castNode(DropStmt, raw->stmt)->concurrent;
            out->push_back(Span{raw->stmt_location, raw->stmt_len, concurrent});
        }
    });
    std::vector<Statement> result;
    for (const Span& s : spans) {
        const std::size_t from = static_cast<std::size_t>(std::max(s.location, 0));
        result.push_back({s.length > 0 ? sql.substr(from, static_cast<std::size_t>(s.length)) : sql.substr(from), s.concurrent});
    }
    return result;
}

TableInfo table_info(Oid table) {
    QueryResult r = spi_run("SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.oid = $1",
                            {oid_param(table)});
    if (r.rows.empty()) throw UserError(ERRCODE_UNDEFINED_TABLE, "table with OID " + std::to_string(table) + " does not exist");
    return TableInfo{*r.rows[0][0], *r.rows[0][1], (*r.rows[0][2])[0]};
}

void require_table_owner(Oid table, const std::string& purpose) {
    const bool owner = pg_call([&] { return pg_class_ownercheck(table, GetUserId()); });
    if (!owner) {
        const TableInfo t = table_info(table);
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "must be owner of table " + quote_qualified(t.schema, t.name) + " to " + purpose)
            .hint("Run it as the table's owner (or a member of the owning role).");
    }
}

}  // namespace viewmig::pg
