// Queuing schema migrations and checking their SQL (see schema_migrations.hpp).
#include "pg/schema_migrations.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/errcodes.h"
}

#include <algorithm>
#include <cstring>

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

namespace {

// REINDEX's CONCURRENTLY option (PostgreSQL 15 keeps it in the option list).
bool reindex_is_concurrent(ReindexStmt* stmt) {
    ListCell* lc;
    foreach (lc, stmt->params) {
        DefElem* opt = lfirst_node(DefElem, lc);
        if (strcmp(opt->defname, "concurrently") == 0) return defGetBoolean(opt);
    }
    return false;
}

}  // namespace

std::vector<Statement> split_statements(const std::string& sql) {
    // Filled inside pg_call with plain values only: the parse tree's strings live in the memory
    // context until this returns.
    struct Span {
        int location, length;
        bool concurrent;
        ConcurrentBuild build;
        const char *schema, *relation, *index_name;
    };
    const char* text = sql.c_str();
    std::vector<Span> spans;
    std::vector<Span>* out = &spans;
    pg_call([&] {
        List* stmts = raw_parser(text, RAW_PARSE_DEFAULT);
        ListCell* lc;
        foreach (lc, stmts) {
            RawStmt* raw = lfirst_node(RawStmt, lc);
            Span span{raw->stmt_location, raw->stmt_len, false, ConcurrentBuild::None, nullptr, nullptr, nullptr};
            if (IsA(raw->stmt, IndexStmt)) {
                IndexStmt* index = castNode(IndexStmt, raw->stmt);
                span.concurrent = index->concurrent;
                if (index->concurrent) {
                    span.build = ConcurrentBuild::CreateIndex;
                    span.schema = index->relation->schemaname;
                    span.relation = index->relation->relname;
                    span.index_name = index->idxname;
                }
            } else if (IsA(raw->stmt, DropStmt)) {
                span.concurrent = castNode(DropStmt, raw->stmt)->concurrent;
            } else if (IsA(raw->stmt, ReindexStmt)) {
                ReindexStmt* reindex = castNode(ReindexStmt, raw->stmt);
                span.concurrent = reindex_is_concurrent(reindex);
                if (span.concurrent) {
                    span.build = reindex->kind == REINDEX_OBJECT_INDEX   ? ConcurrentBuild::ReindexIndex
                                 : reindex->kind == REINDEX_OBJECT_TABLE ? ConcurrentBuild::ReindexTable
                                                                         : ConcurrentBuild::ReindexOther;
                    if (reindex->relation) {
                        span.schema = reindex->relation->schemaname;
                        span.relation = reindex->relation->relname;
                    }
                }
            }
            out->push_back(span);
        }
    });
    std::vector<Statement> result;
    for (const Span& s : spans) {
        const std::size_t from = static_cast<std::size_t>(std::max(s.location, 0));
        Statement st;
        st.sql = s.length > 0 ? sql.substr(from, static_cast<std::size_t>(s.length)) : sql.substr(from);
        st.concurrent_index = s.concurrent;
        st.build = s.build;
        st.schema = s.schema ? s.schema : "";
        st.relation = s.relation ? s.relation : "";
        st.index_name = s.index_name ? s.index_name : "";
        result.push_back(std::move(st));
    }
    return result;
}

void require_cleanable_builds(const std::vector<Statement>& statements) {
    for (const Statement& st : statements) {
        if (st.build == ConcurrentBuild::CreateIndex && st.index_name.empty())
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "CREATE INDEX CONCURRENTLY in a schema migration must name its index")
                .detail("An interrupted build leaves an INVALID index behind, which viewmig drops before it tries again; "
                        "it must know the index's name.")
                .hint("Write CREATE INDEX CONCURRENTLY <name> ON ..., or use viewmig.add_index_in_background().");
        if (st.build == ConcurrentBuild::ReindexOther)
            throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED,
                            "REINDEX SCHEMA, DATABASE or SYSTEM CONCURRENTLY can not be queued as a schema migration")
                .detail("An interrupted REINDEX CONCURRENTLY leaves INVALID <index>_ccnew/_ccold indexes behind, which viewmig "
                        "drops before it tries again; it does so for one index or table per statement.")
                .hint("Queue REINDEX TABLE CONCURRENTLY (or REINDEX INDEX CONCURRENTLY) for each table instead.");
    }
}

namespace {

struct IndexRow {
    Oid index, table;
    std::string schema, name;
    bool valid;
};

// The indexes on `tables` (and, with `toast`, on their TOAST tables).
std::vector<IndexRow> indexes_on(const std::vector<Oid>& tables, bool toast) {
    std::vector<std::string> oids;
    for (Oid t : tables) oids.push_back(std::to_string(t));
    QueryResult r = spi_run(
        "SELECT c.oid, i.indrelid, n.nspname, c.relname, i.indisvalid FROM pg_catalog.pg_index i "
        "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
        "WHERE i.indrelid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[]) OR ($2 AND i.indrelid OPERATOR(pg_catalog.=) ANY "
        "(SELECT t.reltoastrelid FROM pg_catalog.pg_class t WHERE t.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])))",
        {text_array_param(oids), bool_param(toast)});
    std::vector<IndexRow> out;
    for (const Row& row : r.rows)
        out.push_back(IndexRow{static_cast<Oid>(std::stoul(*row[0])), static_cast<Oid>(std::stoul(*row[1])), *row[2], *row[3],
                               to_bool(row[4])});
    return out;
}

// The names REINDEX CONCURRENTLY gives the copies of index `name` (ChooseRelationName with the
// labels "ccnew" and "ccold", then "ccnew1", "ccold1", ...), truncated as PostgreSQL truncates them.
std::vector<std::string> reindex_copy_names(const std::string& name) {
    std::vector<std::string> out;
    for (int pass = 0; pass < 100; ++pass)
        for (const char* label : {"ccnew", "ccold"}) {
            const std::string modlabel = pass == 0 ? label : label + std::to_string(pass);
            const char* n = name.c_str();
            const char* l = modlabel.c_str();
            out.push_back(pg_call([&]() -> const char* { return makeObjectName(n, nullptr, l); }));
        }
    return out;
}

// The relation `schema`.`relation` as the current user resolves it; InvalidOid when missing.
Oid resolve_relation(const std::string& schema, const std::string& relation) {
    const char* s = schema.empty() ? nullptr : schema.c_str();
    const char* r = relation.c_str();
    return pg_call([&] {
        RangeVar* rv = makeRangeVar(s ? pstrdup(s) : nullptr, pstrdup(r), -1);
        return RangeVarGetRelid(rv, NoLock, true);
    });
}

}  // namespace

std::vector<InvalidLeftover> concurrent_build_leftovers(const std::vector<Statement>& statements) {
    std::vector<InvalidLeftover> out;
    auto add = [&](const IndexRow& i) {
        if (i.valid) return;
        const Oid index = i.index;
        if (!pg_call([&] { return pg_class_ownercheck(index, GetUserId()); })) {
            ereport(WARNING, (errmsg("INVALID index %s is not dropped: it belongs to another role",
                                     quote_qualified(i.schema, i.name).c_str())));
            return;
        }
        for (const InvalidLeftover& l : out)
            if (l.index == i.index) return;
        out.push_back(InvalidLeftover{i.index, i.table, i.schema, i.name});
    };
    for (const Statement& st : statements) {
        if (st.build == ConcurrentBuild::None || st.build == ConcurrentBuild::ReindexOther) continue;
        const Oid target = resolve_relation(st.schema, st.relation);
        if (!OidIsValid(target)) continue;
        if (st.build == ConcurrentBuild::CreateIndex) {
            // Only an index of that name on that table: an index of that name elsewhere is not ours.
            for (const IndexRow& i : indexes_on({target}, false))
                if (i.name == st.index_name) add(i);
            continue;
        }
        std::vector<IndexRow> indexes;
        std::vector<std::string> copies;
        if (st.build == ConcurrentBuild::ReindexIndex) {
            const auto table = spi_value("SELECT indrelid::pg_catalog.text FROM pg_catalog.pg_index WHERE indexrelid "
                                         "OPERATOR(pg_catalog.=) $1",
                                         {oid_param(target)});
            if (!table) continue;
            indexes = indexes_on({static_cast<Oid>(std::stoul(*table))}, false);
            for (const IndexRow& i : indexes)
                if (i.index == target) copies = reindex_copy_names(i.name);
        } else {
            indexes = indexes_on({target}, true);
            for (const IndexRow& i : indexes)
                for (std::string& c : reindex_copy_names(i.name)) copies.push_back(std::move(c));
        }
        for (const IndexRow& i : indexes)
            if (std::find(copies.begin(), copies.end(), i.name) != copies.end()) add(i);
    }
    return out;
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
