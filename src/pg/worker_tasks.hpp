// The replay steps that must commit as they go, and therefore run in a background worker
// (src/bgw/replay_worker.cpp starts the worker and calls these). Each opens and commits its own
// transactions with worker_begin()/worker_commit(); each returns the step's result.
#pragma once

#include "pg/worker_shared.hpp"

#include <cstdint>

namespace viewmig::pg {

// Plans the groups on the first call, then replays every group not yet done, one transaction
// each (rows and checkpoint commit together). Returns the events replayed by this call.
uint64_t run_initial_replay_task(WorkerShared& shared);

// Builds the kept indexes, CLUSTERs where the view table was clustered, VACUUM ANALYZEs.
uint64_t run_prepare_completion_task(WorkerShared& shared);

}  // namespace viewmig::pg
