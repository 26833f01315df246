// The workers' claim loop, shared by the initial replay and parallel increments: each worker
// claims the lowest group no other worker holds (FOR UPDATE SKIP LOCKED), replays a batch of it
// (whole aggregates), records the group's resume point and commits both together, until no group
// is left. Lock conflicts between workers are handled here: a batch commits early when another
// worker waits for one of its rows, a deadlock victim replays its batch again, and when the workers
// mostly take turns on the same rows every worker but the first stops claiming.
#pragma once

#include "bgw/replay_worker.hpp"
#include "core/group_planner.hpp"
#include "pg/replay_scan.hpp"
#include "pg/worker_shared.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace viewmig::pg {

struct GroupClaims {
    // The groups' table: viewmig.replay_groups or viewmig.increment_groups (same columns).
    std::string table;
    int64_t replay_id = 0;
    std::string step;    // "replay_initial", "replay_increment": activity, LOG lines, job progress
    int workers = 1;     // workers that replay (1: no conflicts to handle)
    uint64_t batch_events = 0;
    // The events of every group: the xact window (xact_lower, xact_upper); the aggregate bounds,
    // stop_after and the early stop are set per batch.
    EventRange events;
    // Replays one batch; `forget` drops what an engine kept of a batch that was rolled back.
    std::function<ReplayedRange(const EventRange&)> replay;
    std::function<void()> forget;
};

// Runs the loop in this worker (no transaction open before or after); returns the events this
// worker replayed.
uint64_t replay_claimed_groups(WorkerShared& shared, const GroupClaims& claims);

// The last worker to finish (no group left, none held by another) closes the step: in a new
// transaction, locks the replay row and runs `close_sql`, an UPDATE of it that only matches once
// every group is done. True when this worker closed it; the caller then commits.
bool close_as_last_worker(const std::string& step, int64_t replay_id, const std::string& close_sql,
                          const std::vector<SqlParam>& params);

// Inserts the plan's groups into `table` (viewmig.replay_groups or viewmig.increment_groups);
// returns the events the plan estimates.
uint64_t insert_groups(const std::string& table, int64_t replay_id, const core::GroupPlan& plan);

// What earlier, interrupted calls committed in the replay's groups in `table`, so that the
// caller's progress NOTICEs count on from there (events_total: the plan's estimate).
bgw::StartingProgress committed_progress(const std::string& table, int64_t replay_id);

// Sets the short lock_timeout and deadlock_timeout of parallel workers for this session (see
// group_claims.cpp); call in a transaction.
void use_parallel_lock_timeouts();

}  // namespace viewmig::pg
