// viewmig.replay_increment(workers => N), N > 1: the events committed since the replay's bound,
// split by aggregate_id into groups that N background workers claim and commit batch by batch,
// as the initial replay does (group_claims.hpp). Unlike a one-backend increment it can not run in
// the caller's transaction: the workers commit as they go. So the window [increment_lower,
// increment_upper) and its groups are recorded (viewmig.replays, viewmig.increment_groups) before
// any event is replayed; an interrupted call leaves them, calling replay_increment(workers => N)
// again finishes that same window, and until then a one-backend increment and complete() refuse
// to run (they would replay the done groups' events again). The last worker to finish moves
// replayed_bound to the window's end and drops the groups, in one transaction.
#include "bgw/replay_worker.hpp"
#include "core/group_planner.hpp"
#include "pg/catalog.hpp"
#include "pg/event_row_checks.hpp"
#include "pg/foreign_xact_ids.hpp"
#include "pg/group_claims.hpp"
#include "pg/guard.hpp"
#include "pg/increment.hpp"
#include "pg/replay_scan.hpp"
#include "pg/spi.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

#include <algorithm>

extern "C" {
#include "access/xact.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {
namespace {

constexpr double kSampleRowsPerGroup = 100, kMaxSampleRows = 100000;

struct Window {
    int64_t lower = 0, upper = 0;
};

// The replay's bound and its unfinished window, if any, read in one statement (so that a window a
// sibling worker closes meanwhile can not be missed while the old bound is seen) and locked
// against that close until this transaction ends.
struct Bounds {
    int64_t replayed = 0;
    std::optional<Window> pending;
};
Bounds lock_bounds(int64_t replay_id) {
    const Row r = spi_run_as_owner("SELECT replayed_bound, increment_lower, increment_upper FROM viewmig.replays "
                                   "WHERE id = $1 FOR UPDATE", {int8_param(replay_id)}).rows.at(0);
    Bounds b;
    b.replayed = r[0] ? to_int8(r[0]) : 0;
    if (r[2]) b.pending = Window{to_int8(r[1]), to_int8(r[2])};
    return b;
}

// Records the window below the current snapshot's xmin and its groups, from a sample of the
// window's aggregate ids (read through the xact_id index: a window is a small part of the table).
Window plan_window(const Replay& replay, const EventStore& es, int batch_size, int64_t replayed_bound) {
    Window w;
    w.lower = replayed_bound;
    w.upper = std::max(w.lower, to_int8(spi_value("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")));
    const std::string xact = "e." + quote_ident(es.xact_id_column);
    const std::string from = " FROM " + es.qualified() + " e WHERE " + xact + " >= " + es.xact_bound_param(1) + " AND " +
                             xact + " < " + es.xact_bound_param(2);
    const std::vector<SqlParam> bounds{int8_param(w.lower), int8_param(w.upper)};
    refuse_foreign_xact_ids(es);
    refuse_unreplayable_events(es, w.lower, w.upper);
    const double events = std::stod(*spi_value("SELECT count(*)" + from, bounds));
    const double wanted = std::min(events / std::max(batch_size, 1) * kSampleRowsPerGroup + 1, kMaxSampleRows);
    const double fraction = events > wanted ? wanted / events : 1.0;
    std::vector<SqlParam> params = bounds;
    params.push_back(text_param(std::to_string(fraction)));
    const std::string agg = "e." + quote_ident(es.aggregate_id_column);
    QueryResult sample = spi_run("SELECT " + agg + "::text" + from + " AND random() < $3::float8 AND " + agg + " IS NOT NULL ORDER BY " + agg, params);
    std::vector<std::string> keys;
    keys.reserve(sample.rows.size());
    for (auto& row : sample.rows) keys.push_back(std::move(*row[0]));
    const core::GroupPlan plan = core::plan_groups(keys, 1.0 / fraction, static_cast<uint64_t>(batch_size));
    insert_groups("viewmig.increment_groups", replay.id, plan);
    spi_run_as_owner("UPDATE viewmig.replays SET increment_lower = $2, increment_upper = $3, updated_at = now() WHERE id = $1",
                     {int8_param(replay.id), int8_param(w.lower), int8_param(w.upper)});
    return w;
}

}  // namespace

void refuse_if_parallel_increment_pending(const Replay& replay) {
    if (!replay.increment_upper) return;
    throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    "replay " + std::to_string(replay.id) + " has an unfinished parallel increment")
        .detail("An interrupted replay_increment(workers => N) committed part of its events; replaying them here would "
                "apply them twice.")
        .hint("Call viewmig.replay_increment(workers => 2) (or more workers) again to finish it, or viewmig.abort().");
}

uint64_t run_parallel_increment_task(WorkerShared& shared) {
    // Every worker runs this; the replay row's lock (lock_bounds) makes the first plan the window
    // and the others find it, and keeps a sibling's close of the window out meanwhile.
    worker_begin("viewmig replay_increment: planning");
    const Replay replay = load_replay(shared.replay_id);
    if (replay.state != core::ReplayState::Replayed && replay.state != core::ReplayState::CompletionPrepared)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "replay " + std::to_string(replay.id) + " no longer takes increments");
    const EventStore es = load_event_store();
    // The window: an unfinished one (this call's, planned by a sibling worker, or an interrupted
    // call's), else a new one, planned by the first worker here. A worker that starts after its
    // siblings have replayed and closed this call's window has nothing left to do.
    const Bounds bounds = lock_bounds(replay.id);
    if (!bounds.pending && pg_atomic_read_u64(&shared.progress.window_upper) != 0) {
        worker_commit();
        return 0;
    }
    const Window window = bounds.pending ? *bounds.pending : plan_window(replay, es, shared.batch_size, bounds.replayed);
    pg_atomic_write_u64(&shared.progress.window_upper, static_cast<uint64>(window.upper));
    const bgw::StartingProgress planned = committed_progress("viewmig.increment_groups", replay.id);
    pg_atomic_write_u64(&shared.progress.groups_total, planned.groups_total);
    pg_atomic_write_u64(&shared.progress.events_total, planned.events_total);
    const ReplayTarget target = ReplayTarget::for_projectors(load_projector_versions(replay.projectors, replay.versions),
                                                             replay.replay_schema);
    if (shared.nworkers > 1) use_parallel_lock_timeouts();
    worker_commit();

    GroupClaims claims;
    claims.table = "viewmig.increment_groups";
    claims.replay_id = replay.id;
    claims.step = "replay_increment";
    claims.workers = static_cast<int>(shared.nworkers);
    claims.batch_events = static_cast<uint64_t>(shared.batch_size);
    claims.events.xact_lower = window.lower;
    claims.events.xact_upper = window.upper;
    claims.replay = [&](const EventRange& range) { return replay_range(es, target, range); };
    const uint64_t replayed = replay_claimed_groups(shared, claims);

    if (close_as_last_worker(
            "replay_increment", replay.id,
            "UPDATE viewmig.replays SET replayed_bound = increment_upper, increment_lower = NULL, increment_upper = NULL, "
            "events_done = events_done + (SELECT coalesce(sum(events_done), 0) FROM viewmig.increment_groups WHERE replay_id = $1), "
            "increments = increments + 1, updated_at = now() WHERE id = $1 AND increment_upper = $2 "
            "AND NOT EXISTS (SELECT 1 FROM viewmig.increment_groups WHERE replay_id = $1 AND NOT done)",
            {int8_param(replay.id), int8_param(window.upper)}))
        spi_run_as_owner("DELETE FROM viewmig.increment_groups WHERE replay_id = $1", {int8_param(replay.id)});
    worker_commit();
    return replayed;
}

bgw::StartingProgress prepare_parallel_increment(const Replay& replay, int workers) {
    if (pg_call([] { return IsTransactionBlock(); }))
        throw UserError(ERRCODE_ACTIVE_SQL_TRANSACTION,
                        "viewmig.replay_increment(workers => " + std::to_string(workers) +
                            ") can not run inside a transaction block")
            .detail("Its workers commit as they go, apart from the calling transaction.")
            .hint("Call it on its own, or with workers => 1 to replay in the calling transaction.");
    return committed_progress("viewmig.increment_groups", replay.id);
}

}  // namespace viewmig::pg
