// Runs a replay step in dynamic background workers while the calling backend waits: the worker
// can commit per batch (a SQL function can not), the caller shows progress as NOTICEs, relays the
// worker's ERROR as its own, and stops the worker when it is itself cancelled. Dynamic workers
// need no shared_preload_libraries, only a free max_worker_processes slot.
#pragma once

#include "pg/worker_shared.hpp"

#include <cstdint>

namespace viewmig::bgw {

// What earlier calls committed, so progress NOTICEs count from there (zeros when unknown).
struct StartingProgress {
    uint64_t events_done = 0, events_total = 0, groups_done = 0, groups_total = 0;
};

// Starts `nworkers` workers as the current user in the current database and waits for all of
// them; the first worker ERROR stops the others and is raised as this backend's ERROR. Returns
// the sum of the workers' results.
uint64_t run_in_workers(pg::WorkerTask task, int64_t replay_id, int32_t batch_size, int nworkers,
                        const StartingProgress& progress = {});

}  // namespace viewmig::bgw

extern "C" PGDLLEXPORT void viewmig_replay_worker_main(Datum main_arg);
