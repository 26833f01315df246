// The dynamic shared memory a caller shares with the background workers that run one replay
// step for it: the step's inputs, live progress counters for the caller's NOTICEs (shared by all
// workers), and one outcome slot per worker (result, or the worker's ERROR fields, relayed by the
// caller as its own ERROR).
#pragma once

#include "pg/pg_headers.hpp"

extern "C" {
#include "port/atomics.h"
}

namespace viewmig::pg {

enum class WorkerTask : int32 { ReplayInitial = 1, PrepareCompletion = 2, SchemaMigration = 3, MigrateOnline = 4, ReplayIncrement = 5 };
enum class WorkerOutcome : int32 { Running = 0, Succeeded = 1, Failed = 2 };

// The caller sets the *_before counters (work committed by earlier calls) before the workers
// start; workers only add to *_done (this call's work) and set the totals once known.
struct WorkerProgress {
    pg_atomic_uint64 events_before;
    pg_atomic_uint64 events_done;
    pg_atomic_uint64 events_total;
    pg_atomic_uint64 groups_before;
    pg_atomic_uint64 groups_done;
    pg_atomic_uint64 groups_total;
    pg_atomic_uint64 retries;  // batches rolled back after a lock conflict between workers
    pg_atomic_uint64 batches;  // batches committed
    pg_atomic_uint64 yields;   // batches committed early because another worker waited for their locks
    pg_atomic_uint64 short_batches;  // of those, the ones with few events (initial_replay.cpp)
    pg_atomic_uint64 last_job_report;  // TimestampTz of the last progress report to the job
    pg_atomic_uint64 window_upper;     // replay_increment: the end of the window the workers replay (0: none yet)
};

struct WorkerSlot {
    pg_atomic_uint32 outcome;
    pg_atomic_uint32 procno;  // the worker's PGPROC number + 1, once it runs (0 before)
    uint64 result;
    int sqlstate;
    char message[1024];
    char detail[1024];
    char hint[1024];
    char context[4096];
};

struct WorkerShared {
    // inputs
    Oid database;
    Oid role;
    int64 replay_id;
    WorkerTask task;
    int32 batch_size;
    int64 job_id;                  // the job this step runs for (0: called from SQL)
    int32 progress_interval_ms;    // how often one of the workers reports progress to that job
    char settings[2048];           // the caller's settings (module.cpp), "name\tvalue\n" each
    // progress
    WorkerProgress progress;
    // outcomes: slots[0 .. nworkers - 1], allocated past the end of the struct
    int32 nworkers;
    WorkerSlot slots[1];

    static Size size_for(int nworkers) { return offsetof(WorkerShared, slots) + sizeof(WorkerSlot) * nworkers; }
};

}  // namespace viewmig::pg
