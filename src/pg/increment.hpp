// Increments: replay the events committed since the replay's bound, in the current transaction.
// The new bound is the current snapshot's xmin — every transaction below it has finished — so an
// event whose transaction commits late (out of order) is picked up by a later increment, never
// missed, and none is applied twice. complete() calls it under its lock with no upper bound.
#pragma once

#include "bgw/replay_worker.hpp"
#include "pg/catalog.hpp"

#include <cstdint>
#include <optional>

namespace viewmig::pg {

struct IncrementResult {
    uint64_t events = 0;
    int64_t new_bound = 0;
};

// upper_bound: nullopt = the current snapshot's xmin; else replay everything below it. ERROR while
// an interrupted parallel increment is unfinished.
IncrementResult replay_increment_now(const Replay& replay, const EventStore& es, std::optional<int64_t> upper_bound);

// Parallel increments (replay_increment(workers => N), parallel_increment.cpp): the workers
// replay a recorded window of events in groups and commit as they go.
// ERROR (with a HINT) while an interrupted parallel increment of this replay is unfinished.
void refuse_if_parallel_increment_pending(const Replay& replay);
// ERROR inside a transaction block; else what an interrupted call committed, for the progress
// NOTICEs. The caller then ends SPI and runs WorkerTask::ReplayIncrement in the workers.
bgw::StartingProgress prepare_parallel_increment(const Replay& replay, int workers);

}  // namespace viewmig::pg
