// viewmig.background_schema_migrations as C++ sees it: the row, queuing a migration (at most once
// per table and name: the same definition again returns the existing one), events, and checks
// on the SQL a caller hands in. Shared by the SQL API (schema_migration_api.cpp) and the runner.
#pragma once

#include "pg/pg_headers.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace viewmig::pg {

struct SchemaMigration {
    int64_t id = 0;
    std::optional<int64_t> parent_id;
    std::string kind, name, status, definition;
    Oid table = InvalidOid;
    std::string table_schema, table_name;  // unquoted; empty when the table was dropped
    bool composite = false;
    std::string statement_timeout;  // interval text
    int attempts = 0, max_attempts = 0;
    Oid run_as = InvalidOid;
    std::optional<int> worker_pid;
};

std::optional<SchemaMigration> find_schema_migration(int64_t id, bool for_update);

struct NewSchemaMigration {
    std::string kind, name;
    Oid table = InvalidOid;
    std::string definition;
    int32_t max_attempts = 5;
    std::string statement_timeout = "1 hour";
    std::optional<std::string> run_after;  // timestamptz text; in the future = delayed
    std::optional<int64_t> parent_id;
    bool composite = false;
};

struct Queued {
    int64_t id;
    bool existed;  // the same definition was queued before
};

// Inserts the row (as the current user's job) unless the same table + name is queued already:
// same definition → that row; another definition → ERROR.
Queued queue_schema_migration(const NewSchemaMigration& m);

void record_schema_migration_event(int64_t id, const std::string& event, const std::string& details = "{}");

// After a run by hand: a NOTICE with the migration's outcome (a WARNING when it errored/failed).
void report_schema_migration_outcome(int64_t id);

// ERROR unless `sql` parses as exactly `expected_count` statements (0: any number >= 1), each of
// the node tag named by `expected_tag` (0: any). `what` names the input in the message.
void require_statements(const std::string& sql, int expected_count, int expected_tag, const std::string& what);

// A concurrent index build whose interruption (cancel, statement_timeout, a killed worker, a
// restart) leaves an INVALID index behind, recognised from the raw parse tree.
enum class ConcurrentBuild {
    None,
    CreateIndex,   // CREATE INDEX CONCURRENTLY name ON table: leaves `name`
    ReindexIndex,  // REINDEX INDEX CONCURRENTLY index: leaves <index>_ccnew[N] / <index>_ccold[N]
    ReindexTable,  // REINDEX TABLE CONCURRENTLY table: the same for each index of the table and its TOAST table
    ReindexOther,  // REINDEX SCHEMA/DATABASE/SYSTEM CONCURRENTLY: not accepted (leftovers on any table)
};

// The statements of `sql`, each with whether it is CREATE/DROP INDEX or REINDEX CONCURRENTLY (whose
// long waits for other transactions are part of the algorithm, so no short lock_timeout applies),
// and the concurrent build it is.
struct Statement {
    std::string sql;
    bool concurrent_index = false;
    ConcurrentBuild build = ConcurrentBuild::None;
    std::string schema, relation;  // the table (CreateIndex, ReindexTable) or index (ReindexIndex); schema "" = search_path
    std::string index_name;        // CreateIndex: the index it creates ("" when the statement names none)
};
std::vector<Statement> split_statements(const std::string& sql);

// ERROR (with a HINT) for concurrent builds whose leftovers viewmig could not clean up before a
// retry: CREATE INDEX CONCURRENTLY without an index name, REINDEX SCHEMA/DATABASE/SYSTEM CONCURRENTLY.
void require_cleanable_builds(const std::vector<Statement>& statements);

// The INVALID indexes that interrupted runs of the concurrent builds among `statements` left
// behind, names resolved as the current user (the migration's role) resolves them. Never a valid
// index, never one the current user does not own. Needs a transaction.
struct InvalidLeftover {
    Oid index = InvalidOid, table = InvalidOid;
    std::string schema, name;
};
std::vector<InvalidLeftover> concurrent_build_leftovers(const std::vector<Statement>& statements);

// The table's schema, name and relkind, read through the catalog.
struct TableInfo {
    std::string schema, name;
    char relkind = 0;
};
TableInfo table_info(Oid table);

// Drops the parent's INVALID index `name` left by a cancelled partitioned-table build (plain
// DROP INDEX: a partitioned index can not be dropped concurrently), after a brief lock.
void drop_invalid_parent_index(Oid table, const std::string& name);

// ERROR unless the current user has the owner's rights on the table (what index builds and
// VALIDATE CONSTRAINT need), naming `purpose`.
void require_table_owner(Oid table, const std::string& purpose);

}  // namespace viewmig::pg
