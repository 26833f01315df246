// Transaction control for code that runs in a background worker, where viewmig — not a client —
// decides when to commit: one transaction per replay group, and top-level statements (VACUUM)
// that refuse to run inside a transaction block or a function.
#pragma once

#include <string>

namespace viewmig::pg {

// Starts a transaction with a snapshot and an SPI connection; `activity` shows in pg_stat_activity.
void worker_begin(const std::string& activity);
// Closes SPI, pops the snapshot and commits.
void worker_commit();
// What pg_stat_activity shows for this worker.
void report_activity(const std::string& activity);
// Rolls back the current transaction after an error was caught (as PgError) in it.
void worker_abort();
// Runs one statement as a top-level command in its own transaction (no transaction may be open),
// the way a client's simple query would, so VACUUM and CREATE INDEX CONCURRENTLY work.
void execute_top_level(const std::string& sql);

}  // namespace viewmig::pg
