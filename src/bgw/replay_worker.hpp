// Runs a replay step in a dynamic background worker while the calling backend waits: the worker
// can commit per batch (a SQL function can not), the caller shows progress as NOTICEs, relays the
// worker's ERROR as its own, and stops the worker when it is itself cancelled. Dynamic workers
// need no shared_preload_libraries, only a free max_worker_processes slot.
#pragma once

#include "pg/worker_shared.hpp"

#include <cstdint>

namespace viewmig::bgw {

// Starts the worker as the current user in the current database and waits for it.
uint64_t run_in_worker(pg::WorkerTask task, int64_t replay_id, int32_t batch_size);

}  // namespace viewmig::bgw

extern "C" PGDLLEXPORT void viewmig_replay_worker_main(Datum main_arg);
