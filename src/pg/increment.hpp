// Increments: replay the events committed since the replay's bound, in the current transaction.
// The new bound is the current snapshot's xmin — every transaction below it has finished — so an
// event whose transaction commits late (out of order) is picked up by a later increment, never
// missed, and none is applied twice. complete() calls it under its lock with no upper bound.
#pragma once

#include "pg/catalog.hpp"

#include <cstdint>
#include <optional>

namespace viewmig::pg {

struct IncrementResult {
    uint64_t events = 0;
    int64_t new_bound = 0;
};

// upper_bound: nullopt = the current snapshot's xmin; else replay everything below it.
IncrementResult replay_increment_now(const Replay& replay, const EventStore& es, std::optional<int64_t> upper_bound);

}  // namespace viewmig::pg
