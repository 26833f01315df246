// What a view table looked like when prepare_initial copied it, and whether it still does when
// complete() swaps it out (issue 14, class 8). The swap moves the view table — with every column,
// index, constraint, trigger, policy or owner change made to it meanwhile — into the archive, and
// puts the copy made at prepare_initial in its place: such a change would silently be undone.
// Grants are carried over instead (carry_grants in schema_copy.hpp).
#pragma once

#include "pg/catalog.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace viewmig::pg {

// One line per part of the definition of table `schema.table` (columns with type, NOT NULL,
// default, identity; constraints; indexes; triggers; policies; rules; extended statistics;
// inheritance; publications; owner; persistence, options, tablespace, row level security),
// sorted. Deparsed with search_path = pg_catalog, so names are schema-qualified.
std::vector<std::string> describe_table(const std::string& schema, const std::string& table);

struct CopiedDefinition {
    std::string table, oid;
    std::vector<std::string> lines;
};
// Describes the view tables about to be copied. Call it BEFORE copying: a change that slips in
// between then shows up at complete() (a refusal, never a silent loss).
std::vector<CopiedDefinition> describe_before_copy(const std::string& view_schema, const std::vector<std::string>& tables);
// Records them for replay `replay_id`.
void record_copied_definitions(int64_t replay_id, const std::vector<CopiedDefinition>& copied);

// ERROR (DETAIL: what changed on which table; HINT: what to do) when a managed view table of
// `replay` is no longer the table prepare_initial copied, or its definition changed since. For a
// replay prepared before 1.1 (nothing recorded) it can not check: a NOTICE says so if `notice`.
void refuse_changed_view_tables(const Replay& replay, bool notice = true);

}  // namespace viewmig::pg
