// The SQL API of background schema migrations: queue (add/remove an index, validate a
// constraint, any statement), run by hand, cancel, retry, configure. Everything a caller hands
// in is checked before anything is queued: tables, columns, access methods, and that the
// statements parse as exactly what they claim to be (no second statement smuggled into a name
// or a WHERE clause).
#include "bgw/launcher.hpp"
#include "bgw/replay_worker.hpp"
#include "core/index_definition.hpp"
#include "core/json_text.hpp"
#include "pg/brief_lock.hpp"
#include "pg/commit_actions.hpp"
#include "pg/gucs.hpp"
#include "pg/guard.hpp"
#include "pg/job_queue.hpp"
#include "pg/schema_migrations.hpp"
#include "pg/spi.hpp"

#include <algorithm>

extern "C" {
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
}

using namespace viewmig;
using namespace viewmig::pg;

namespace {

std::string quote(const std::string& s) { return quote_ident(s); }

// Settings shared by every enqueue function: (max_attempts, statement_timeout, run_after) at
// argument positions first, first + 1, first + 2.
void read_common(FunctionCallInfo fcinfo, int first, NewSchemaMigration& m) {
    if (!PG_ARGISNULL(first)) m.max_attempts = PG_GETARG_INT32(first);
    if (m.max_attempts < 1)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "max_attempts must be at least 1, not " + std::to_string(m.max_attempts));
    if (!PG_ARGISNULL(first + 1)) m.statement_timeout = *arg_param(fcinfo, first + 1).text;
    if (to_bool(spi_value("SELECT $1::interval < interval '0'", {text_param(m.statement_timeout)})))
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "statement_timeout must not be negative")
            .hint("Use interval '0' for no timeout.");
    if (!PG_ARGISNULL(first + 2)) m.run_after = *arg_param(fcinfo, first + 2).text;
}

std::vector<std::string> table_columns(Oid table) {
    return parse_text_array(spi_value("SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute "
                                      "WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped",
                                      {oid_param(table)}));
}

void require_columns(const std::vector<std::string>& wanted, const std::vector<std::string>& have, const TableInfo& t) {
    for (const std::string& c : wanted)
        if (std::find(have.begin(), have.end(), c) == have.end())
            throw UserError(ERRCODE_UNDEFINED_COLUMN, "column \"" + c + "\" of table " + quote_qualified(t.schema, t.name) +
                                                          " does not exist")
                .hint("Columns are: " + [&] {
                    std::string all;
                    for (const auto& h : have) all += (all.empty() ? "" : ", ") + h;
                    return all;
                }() + ". For an index on expressions use viewmig.enqueue_schema_migration().");
}

std::vector<std::string> text_array_arg(FunctionCallInfo fcinfo, int i) {
    if (PG_ARGISNULL(i)) return {};
    return parse_text_array(arg_param(fcinfo, i).text);
}

std::string default_index_name(const std::string& table, const std::vector<std::string>& columns) {
    std::string joined;
    for (const auto& c : columns) joined += (joined.empty() ? "" : "_") + c;
    const char* t = table.c_str();
    const char* j = joined.c_str();
    return pg_call([&]() -> std::string {
        char* name = makeObjectName(t, j, "idx");
        std::string out(name);
        pfree(name);
        return out;
    });
}

// The WHERE clause must be one boolean expression over the table: checked by parsing and
// planning a query with it (LIMIT 0: nothing is read), in a subtransaction.
void check_where(const TableInfo& t, const std::string& where) {
    const std::string probe = "SELECT 1 FROM " + quote_qualified(t.schema, t.name) + " WHERE (" + where + ") LIMIT 0";
    require_statements(probe, 1, T_SelectStmt, "the WHERE clause");
    try {
        in_subtransaction([&] { spi_run(probe); });
    } catch (const PgError& e) {
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, std::string("invalid WHERE clause for the index: ") + e.what());
    }
}

int64_t finish_enqueue(const Queued& q) {
    if (q.existed)
        ereport(NOTICE, (errmsg("viewmig: the same schema migration is queued already (migration %lld); nothing added",
                                static_cast<long long>(q.id))));
    else if (const pid_t launcher = find_launcher_pid())
        at_commit_wake(launcher);
    return q.id;
}

std::vector<Oid> leaf_partitions(Oid table) {
    std::vector<Oid> out;
    for (const Row& row : spi_run("SELECT t.relid::oid, c.relkind FROM pg_partition_tree($1) t JOIN pg_class c ON c.oid = t.relid "
                                  "WHERE t.level = 1 ORDER BY t.relid::regclass::text",
                                  {oid_param(table)})
                              .rows) {
        if ((*row[1])[0] == 'p')
            throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED, "partition " + table_info(static_cast<Oid>(std::stoul(*row[0]))).name +
                                                               " is itself partitioned")
                .hint("Only one level of partitioning is supported; queue the sub-partitioned table's index on its own.");
        out.push_back(static_cast<Oid>(std::stoul(*row[0])));
    }
    return out;
}

// A partitioned table: a composite migration whose children create the parent's index ON ONLY
// the parent, then build each partition's index concurrently and attach it, in that order.
Queued queue_partitioned_index(const core::IndexSpec& spec, Oid table, const NewSchemaMigration& common) {
    NewSchemaMigration parent = common;
    parent.kind = "add_index";
    parent.name = spec.name;
    parent.table = table;
    parent.composite = true;
    parent.definition = core::render_create_index(spec, core::IndexBuild::OnlyParent, quote) + " -- then each partition";
    const Queued q = queue_schema_migration(parent);
    if (q.existed) return q;

    NewSchemaMigration child = common;
    child.parent_id = q.id;
    child.kind = "add_index";
    child.name = spec.name;
    child.table = table;
    child.definition = core::render_create_index(spec, core::IndexBuild::OnlyParent, quote);
    queue_schema_migration(child);
    for (const Oid part : leaf_partitions(table)) {
        const TableInfo p = table_info(part);
        core::IndexSpec ps = spec;
        ps.schema = p.schema;
        ps.table = p.name;
        ps.name = default_index_name(p.name, spec.columns);
        child.table = part;
        child.name = ps.name;
        child.definition = core::render_create_index(ps, core::IndexBuild::Concurrently, quote) + ";\nALTER INDEX " +
                           quote_qualified(spec.schema, spec.name) + " ATTACH PARTITION " + quote_qualified(ps.schema, ps.name);
        queue_schema_migration(child);
    }
    return q;
}

}  // namespace

namespace viewmig::pg {

void drop_invalid_parent_index(Oid table, const std::string& name) {
    const auto index = spi_value("SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                 "WHERE i.indrelid = $1 AND c.relname = $2 AND NOT i.indisvalid",
                                 {oid_param(table), text_param(name)});
    if (!index) return;
    // A partitioned index can not be dropped concurrently; the lock is brief and bounded.
    lock_tables_briefly({{table, AccessExclusiveLock}}, viewmig_lock_timeout_ms, viewmig_lock_max_wait_ms);
    spi_exec("DROP INDEX " + *index);
}

}  // namespace viewmig::pg

namespace {

std::optional<SchemaMigration> require_own_migration(int64_t id, const char* action) {
    std::optional<SchemaMigration> m = find_schema_migration(id, true);
    if (!m)
        throw UserError(ERRCODE_UNDEFINED_OBJECT, "there is no background schema migration " + std::to_string(id))
            .hint("SELECT id, migration_name, status FROM viewmig.background_schema_migrations ORDER BY id DESC;");
    const Oid run_as = m->run_as;
    if (!pg_call([&] { return has_privs_of_role(GetUserId(), run_as); }))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        std::string("permission denied to ") + action + " background schema migration " + std::to_string(id))
            .hint("Only members of the role that queued it (and superusers) may " + std::string(action) + " it.");
    return m;
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(viewmig_add_index_in_background);
PGDLLEXPORT Datum viewmig_add_index_in_background(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.add_index_in_background()", 2);
        const Oid table = PG_GETARG_OID(0);
        spi_connect();
        const TableInfo t = table_info(table);
        if (t.relkind != 'r' && t.relkind != 'p' && t.relkind != 'm')
            throw UserError(ERRCODE_WRONG_OBJECT_TYPE, quote_qualified(t.schema, t.name) + " is not a table or materialized view");
        require_table_owner(table, "add an index to it");
        core::IndexSpec spec;
        spec.schema = t.schema;
        spec.table = t.name;
        spec.columns = text_array_arg(fcinfo, 1);
        if (spec.columns.empty()) throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "an index needs at least one column");
        const std::vector<std::string> have = table_columns(table);
        require_columns(spec.columns, have, t);
        spec.include = text_array_arg(fcinfo, 6);
        require_columns(spec.include, have, t);
        spec.name = PG_ARGISNULL(2) ? default_index_name(t.name, spec.columns) : NameStr(*PG_GETARG_NAME(2));
        spec.unique = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
        if (!PG_ARGISNULL(4)) spec.method = text_to_cstring(PG_GETARG_TEXT_PP(4));
        if (!spi_value("SELECT 1 FROM pg_am WHERE amname = $1 AND amtype = 'i'", {text_param(spec.method)}))
            throw UserError(ERRCODE_UNDEFINED_OBJECT, "index access method \"" + spec.method + "\" does not exist")
                .hint("Available: " + spi_value("SELECT string_agg(amname, ', ' ORDER BY amname) FROM pg_am WHERE amtype = 'i'")
                                          .value_or("btree") + ".");
        if (!PG_ARGISNULL(5)) {
            spec.where = text_to_cstring(PG_GETARG_TEXT_PP(5));
            check_where(t, *spec.where);
        }
        NewSchemaMigration m;
        read_common(fcinfo, 7, m);
        Queued q{};
        if (t.relkind == 'p') {
            q = queue_partitioned_index(spec, table, m);
        } else {
            m.kind = "add_index";
            m.name = spec.name;
            m.table = table;
            m.definition = core::render_create_index(spec, core::IndexBuild::Concurrently, quote);
            require_statements(m.definition, 1, T_IndexStmt, "the index definition");
            q = queue_schema_migration(m);
        }
        const int64_t id = finish_enqueue(q);
        spi_finish();
        PG_RETURN_INT64(id);
    });
}

PG_FUNCTION_INFO_V1(viewmig_remove_index_in_background);
PGDLLEXPORT Datum viewmig_remove_index_in_background(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.remove_index_in_background()", 2);
        const Oid table = PG_GETARG_OID(0);
        const std::string name = NameStr(*PG_GETARG_NAME(1));
        spi_connect();
        const TableInfo t = table_info(table);
        require_table_owner(table, "remove its index");
        const auto relkind = spi_value("SELECT c.relkind FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                       "WHERE i.indrelid = $1 AND c.relname = $2",
                                       {oid_param(table), text_param(name)});
        if (!relkind)
            throw UserError(ERRCODE_UNDEFINED_OBJECT, "table " + quote_qualified(t.schema, t.name) + " has no index \"" + name + "\"");
        if (*relkind == "I")
            throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED, "cannot drop the partitioned index \"" + name + "\" concurrently")
                .hint("DROP INDEX on a partitioned table can not run CONCURRENTLY; run it in a quiet moment.");
        if (spi_value("SELECT 1 FROM pg_constraint WHERE conindid = (SELECT indexrelid FROM pg_index i JOIN pg_class c "
                      "ON c.oid = i.indexrelid WHERE i.indrelid = $1 AND c.relname = $2) AND conrelid = $1",
                      {oid_param(table), text_param(name)}))
            throw UserError(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST, "index \"" + name + "\" belongs to a constraint")
                .hint("Drop the constraint with ALTER TABLE ... DROP CONSTRAINT instead.");
        NewSchemaMigration m;
        read_common(fcinfo, 2, m);
        m.kind = "remove_index";
        m.name = name;
        m.table = table;
        m.definition = core::render_drop_index(t.schema, name, quote);
        const int64_t id = finish_enqueue(queue_schema_migration(m));
        spi_finish();
        PG_RETURN_INT64(id);
    });
}

PG_FUNCTION_INFO_V1(viewmig_validate_constraint_in_background);
PGDLLEXPORT Datum viewmig_validate_constraint_in_background(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.validate_constraint_in_background()", 2);
        const Oid table = PG_GETARG_OID(0);
        const std::string name = NameStr(*PG_GETARG_NAME(1));
        spi_connect();
        const TableInfo t = table_info(table);
        require_table_owner(table, "validate its constraint");
        const auto contype = spi_value("SELECT contype::text FROM pg_constraint WHERE conrelid = $1 AND conname = $2",
                                       {oid_param(table), text_param(name)});
        if (!contype)
            throw UserError(ERRCODE_UNDEFINED_OBJECT, "constraint \"" + name + "\" of table " + quote_qualified(t.schema, t.name) +
                                                          " does not exist");
        if (*contype != "c" && *contype != "f")
            throw UserError(ERRCODE_WRONG_OBJECT_TYPE, "constraint \"" + name + "\" is not a check or foreign key constraint")
                .hint("Only CHECK and FOREIGN KEY constraints can be added NOT VALID and validated later.");
        NewSchemaMigration m;
        read_common(fcinfo, 2, m);
        m.kind = "validate_constraint";
        m.name = name;
        m.table = table;
        m.definition = "ALTER TABLE " + quote_qualified(t.schema, t.name) + " VALIDATE CONSTRAINT " + quote(name);
        const int64_t id = finish_enqueue(queue_schema_migration(m));
        spi_finish();
        PG_RETURN_INT64(id);
    });
}

PG_FUNCTION_INFO_V1(viewmig_enqueue_schema_migration);
PGDLLEXPORT Datum viewmig_enqueue_schema_migration(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.enqueue_schema_migration()", 3);
        spi_connect();
        NewSchemaMigration m;
        m.kind = "custom";
        m.name = text_to_cstring(PG_GETARG_TEXT_PP(0));
        m.table = PG_GETARG_OID(1);
        m.definition = text_to_cstring(PG_GETARG_TEXT_PP(2));
        require_table_owner(m.table, "queue a schema migration on it");
        require_statements(m.definition, 0, 0, "the definition");
        require_cleanable_builds(split_statements(m.definition));
        read_common(fcinfo, 3, m);
        const int64_t id = finish_enqueue(queue_schema_migration(m));
        spi_finish();
        PG_RETURN_INT64(id);
    });
}

PG_FUNCTION_INFO_V1(viewmig_run_background_schema_migrations);
PGDLLEXPORT Datum viewmig_run_background_schema_migrations(PG_FUNCTION_ARGS) {
    const int64_t id = sql_entry([&]() -> int64_t {
        // Runs in a background worker, which holds no other transaction: CREATE INDEX
        // CONCURRENTLY can not run inside this function's transaction.
        return static_cast<int64_t>(bgw::run_in_workers(WorkerTask::SchemaMigration, 0, 0, 1));
    });
    if (id == 0) PG_RETURN_NULL();
    sql_entry([&] {
        spi_connect();
        report_schema_migration_outcome(id);
        spi_finish();
    });
    PG_RETURN_INT64(id);
}

PG_FUNCTION_INFO_V1(viewmig_cancel_schema_migration);
PGDLLEXPORT Datum viewmig_cancel_schema_migration(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.cancel_schema_migration()");
        const int64_t id = PG_GETARG_INT64(0);
        spi_connect();
        const SchemaMigration m = *require_own_migration(id, "cancel");
        if (m.status == "succeeded" || m.status == "cancelled") {
            ereport(NOTICE, (errmsg("background schema migration %lld already ended (%s)", static_cast<long long>(id), m.status.c_str())));
            spi_finish();
            PG_RETURN_BOOL(false);
        }
        // The row and, for a composite, its unfinished children.
        QueryResult running = spi_run_as_owner(
            "WITH c AS (UPDATE viewmig.background_schema_migrations n SET status = 'cancelled', finished_at = now(), "
            "           worker_pid = NULL FROM viewmig.background_schema_migrations o "
            "           WHERE o.id = n.id AND (n.id = $1 OR n.parent_id = $1) AND n.status NOT IN ('succeeded', 'cancelled') "
            "           RETURNING n.id, o.worker_pid) "
            "SELECT id, worker_pid FROM c ORDER BY id",
            {int8_param(id)});
        for (const Row& row : running.rows) {
            record_schema_migration_event(to_int8(row[0]), "cancelled",
                                          core::JsonObject().add("by", GetUserNameFromId(GetUserId(), false)).str());
            // Once this commits, the worker's statement is cancelled; the worker then drops what a
            // cancelled CREATE INDEX CONCURRENTLY leaves behind (an INVALID index).
            if (row[1]) at_commit_cancel(static_cast<pid_t>(to_int8(row[1])));
        }
        // A composite index build cancelled between its children leaves the parent's ON ONLY
        // index INVALID; with a child running, its worker drops it (schema_migration_runner.cpp).
        const bool child_running = std::any_of(running.rows.begin(), running.rows.end(), [](const Row& r) { return r[1].has_value(); });
        if (m.composite && m.kind == "add_index" && !child_running) drop_invalid_parent_index(m.table, m.name);
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}

PG_FUNCTION_INFO_V1(viewmig_retry_schema_migration);
PGDLLEXPORT Datum viewmig_retry_schema_migration(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.retry_schema_migration()");
        const int64_t id = PG_GETARG_INT64(0);
        spi_connect();
        const SchemaMigration m = *require_own_migration(id, "retry");
        if (m.status != "failed" && !(m.composite && m.status != "succeeded" && m.status != "cancelled"))
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "background schema migration " + std::to_string(id) + " is " + m.status + ", not failed")
                .hint("Only a failed migration can be retried; a cancelled one is queued anew with the same call that queued it.");
        spi_run_as_owner("UPDATE viewmig.background_schema_migrations SET status = 'enqueued', attempts = 0, run_after = now(), "
                         "started_at = NULL, finished_at = NULL, error_class = NULL, error_message = NULL, backtrace = NULL "
                         "WHERE (id = $1 OR parent_id = $1) AND status = 'failed'",
                         {int8_param(id)});
        if (m.parent_id) spi_run_as_owner("SELECT viewmig.refresh_composite_schema_migration($1)", {int8_param(*m.parent_id)});
        if (m.composite) spi_run_as_owner("SELECT viewmig.refresh_composite_schema_migration($1)", {int8_param(id)});
        record_schema_migration_event(id, "retried", core::JsonObject().add("by", GetUserNameFromId(GetUserId(), false)).str());
        if (const pid_t launcher = find_launcher_pid()) at_commit_wake(launcher);
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}

PG_FUNCTION_INFO_V1(viewmig_configure_schema_migration);
PGDLLEXPORT Datum viewmig_configure_schema_migration(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.configure_schema_migration()", 1);
        const int64_t id = PG_GETARG_INT64(0);
        spi_connect();
        const SchemaMigration m = *require_own_migration(id, "configure");
        if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) < 1)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "max_attempts must be at least 1");
        spi_run_as_owner("UPDATE viewmig.background_schema_migrations SET max_attempts = coalesce($2, max_attempts), "
                         "statement_timeout = coalesce($3::interval, statement_timeout) WHERE id = $1 OR parent_id = $1",
                         {int8_param(id), PG_ARGISNULL(1) ? SqlParam{INT4OID, std::nullopt} : int4_param(PG_GETARG_INT32(1)),
                          PG_ARGISNULL(2) ? SqlParam{TEXTOID, std::nullopt} : arg_param(fcinfo, 2)});
        (void)m;
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}

}  // extern "C"
