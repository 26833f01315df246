// The dynamic shared memory a caller shares with the background worker that runs one replay
// step for it: the step's inputs, live progress counters for the caller's NOTICEs, and the
// outcome (result, or the worker's ERROR fields, relayed by the caller as its own ERROR).
#pragma once

#include "pg/pg_headers.hpp"

extern "C" {
#include "port/atomics.h"
}

namespace viewmig::pg {

enum class WorkerTask : int32 { ReplayInitial = 1, PrepareCompletion = 2 };
enum class WorkerOutcome : int32 { Running = 0, Succeeded = 1, Failed = 2 };

struct WorkerProgress {
    pg_atomic_uint64 events_done;
    pg_atomic_uint64 events_before;  // done by earlier calls (resume)
    pg_atomic_uint64 events_total;
    pg_atomic_uint64 groups_done;
    pg_atomic_uint64 groups_total;
};

struct WorkerShared {
    // inputs
    Oid database;
    Oid role;
    int64 replay_id;
    WorkerTask task;
    int32 batch_size;
    char search_path[1024];
    // progress
    WorkerProgress progress;
    // outcome
    pg_atomic_uint32 outcome;
    uint64 result;
    int sqlstate;
    char message[1024];
    char detail[1024];
    char hint[1024];
    char context[4096];
};

}  // namespace viewmig::pg
