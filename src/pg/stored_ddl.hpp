// Table DDL stored by one role (viewmig.define_table_sql) and run later by another
// (create_view_tables, migrate_online). Stored code runs with the rights of the role that stored
// it — as a job runs as the role that enqueued it — never with the rights of whoever runs it later:
// a superuser calling create_view_tables() must not run a tenant's index expressions or defaults
// as the superuser. It runs security-restricted, with the view schema first in search_path.
#pragma once

#include "pg/pg_headers.hpp"

#include <string>

namespace viewmig::pg {

// Runs `ddl` (the stored text with %SUFFIX% replaced) as `defined_by`. Throws UserError when the
// role is gone, or when the caller has not the privileges of that role (a caller may only cause
// what it could do itself).
void run_stored_ddl(Oid defined_by, const std::string& table, const std::string& view_schema, const std::string& ddl);

// Whether the current user has the privileges of `role` (has_privs_of_role, in C).
bool caller_acts_for(Oid role);

}  // namespace viewmig::pg
