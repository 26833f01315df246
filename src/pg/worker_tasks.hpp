// The replay steps that must commit as they go, and therefore run in a background worker
// (src/bgw/replay_worker.cpp starts the worker and calls these). Each opens and commits its own
// transactions with worker_begin()/worker_commit(); each returns the step's result.
#pragma once

#include "pg/worker_shared.hpp"

#include <cstdint>

namespace viewmig::pg {

// This process's worker number (0-based) among the workers of its step.
extern int current_worker_index;

// Plans the groups on the first call, then replays every group not yet done, one transaction
// each (rows and checkpoint commit together). Returns the events replayed by this call.
uint64_t run_initial_replay_task(WorkerShared& shared);

// replay_increment(workers => N): plans the window's groups on the first call (or finds those of an
// interrupted one), replays them like the initial replay, and the last worker moves the bound.
uint64_t run_parallel_increment_task(WorkerShared& shared);

// Builds the kept indexes, CLUSTERs where the view table was clustered, VACUUM ANALYZEs.
uint64_t run_prepare_completion_task(WorkerShared& shared);

// migrate_online(): prepares the <table>_<version> tables (view_schema_migration.cpp), then
// replays into them like run_initial_replay_task. Returns the events replayed.
uint64_t run_migrate_online_task(WorkerShared& shared);

// Runs the next runnable background schema migration (schema_migration_runner.cpp); returns its
// id, 0 when none may run now.
uint64_t run_schema_migration_task(WorkerShared& shared);
// The same for a worker started by the launcher (no caller, no shared memory). Call with no
// transaction open; the process acts as the migration's role afterwards, so it runs one only.
int64_t run_next_schema_migration();

}  // namespace viewmig::pg
