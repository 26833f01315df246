// Copies managed tables' definitions from the view schema into the replay schema: columns,
// defaults, identity and serial columns (with sequences of their own), NOT NULL, CHECK, primary
// key, UNIQUE and EXCLUDE constraints, cascading foreign keys (re-pointed to replay tables where
// the referenced table is replayed too), storage options, owner, grants and comments. Ordinary
// indexes and foreign keys that only check are only recorded — created by prepare_completion, when
// loading is done — except indexes matching the projector's additional_replay_indexes.
#pragma once

#include "pg/spi.hpp"

#include <string>
#include <vector>

namespace viewmig::pg {

struct TableToCopy {
    std::string name;
    std::vector<std::string> additional_index_patterns;  // anchored regular expressions
    // Loaded in bulk by the declarative engine: its primary key and unique constraints are kept
    // as "bulk_constraint" DDL for the end of replay_initial (unless a foreign key references it).
    bool bulk_loaded = false;
};

struct DeferredDdl {
    std::string kind;  // "index", "foreign_key", "restore_deferrability" or "bulk_constraint"
    std::string table, object, definition;
};

// Creates every table, then the foreign keys between them; returns the indexes to build later.
std::vector<DeferredDdl> copy_tables(const std::string& view_schema, const std::string& replay_schema,
                                       const std::vector<TableToCopy>& tables);

// Makes the grants on table `target` (to anyone but its owner, table and column level) those on
// table `source` (both qualified and quoted), when they differ; true when it changed any.
bool carry_grants(const std::string& source, const std::string& target);

// "replay_schema, view_schema", quoted: unqualified names find the replay copy of a table first,
// and anything else in the view schema.
std::string replay_first_path(const std::string& view_schema, const std::string& replay_schema);

// Runs `sql` with search_path set to `path` for this statement only.
QueryResult run_with_search_path(const std::string& path, const std::string& sql, const std::vector<SqlParam>& params);
void exec_with_search_path(const std::string& path, const std::string& sql);

}  // namespace viewmig::pg
