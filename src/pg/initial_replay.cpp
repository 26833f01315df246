// viewmig.replay_initial(): replays every event committed before the replay started into the
// replay schema, one aggregate_id group per transaction, in a background worker. The group's rows
// and its "done" checkpoint commit together, so after any failure a new call resumes with the
// groups not yet done and ends with the same tables as an uninterrupted run.
#include "bgw/replay_worker.hpp"
#include "core/group_planner.hpp"
#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/replay_scan.hpp"
#include "pg/spi.hpp"
#include "pg/step_args.hpp"
#include "pg/step_lock.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {
namespace {

constexpr double kWantedSampleRows = 100000;

struct PendingGroup {
    int group_no;
    std::optional<std::string> lower, upper;
};

// Sets the replay's snapshot bound and its groups; runs in the worker's first transaction.
void plan_initial_replay(const Replay& replay, const EventStore& es, int batch_size, WorkerShared& shared) {
    const int64_t bound = to_int8(spi_value("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"));
    double estimated = std::stod(spi_value(
        "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_partition_tree($1::oid::regclass) t "
        "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf", {oid_param(es.events)}).value_or("0"));
    if (estimated <= 0) estimated = std::stod(*spi_value("SELECT count(*) FROM " + es.qualified()));
    const double percent = core::sample_percent(estimated, kWantedSampleRows);
    const std::string agg = "e." + quote_ident(es.aggregate_id_column);
    const std::string sample_sql = "SELECT " + agg + "::text FROM " + es.qualified() + " e" +
                                   (percent < 100 ? " TABLESAMPLE BERNOULLI (" + std::to_string(percent) + ")" : "") +
                                   " WHERE e." + quote_ident(es.xact_id_column) + " < " + es.xact_bound_param(1) +
                                   " ORDER BY " + agg;
    QueryResult sample = spi_run(sample_sql, {int8_param(bound)});
    std::vector<std::string> keys;
    keys.reserve(sample.rows.size());
    for (auto& row : sample.rows) keys.push_back(std::move(*row[0]));
    const core::GroupPlan plan = core::plan_groups(keys, 100.0 / percent, static_cast<uint64_t>(batch_size));

    std::vector<std::string> lowers, uppers, estimates;
    uint64_t total = 0;
    for (std::size_t g = 0; g < plan.group_count(); ++g) {
        lowers.push_back(g == 0 ? "" : plan.bounds[g - 1]);
        uppers.push_back(g == plan.bounds.size() ? "" : plan.bounds[g]);
        estimates.push_back(std::to_string(plan.estimated_events[g]));
        total += plan.estimated_events[g];
    }
    // The first group has no lower bound and the last no upper bound (NULL by position below).
    spi_run_as_owner(
        "INSERT INTO viewmig.replay_groups (replay_id, group_no, lower_bound, upper_bound, events_estimate) "
        "SELECT $1, g.ord - 1, CASE WHEN g.ord = 1 THEN NULL ELSE g.lo END, "
        "       CASE WHEN g.ord = cardinality($3::text[]) THEN NULL ELSE g.hi END, g.est::bigint "
        "FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY g(lo, hi, est, ord)",
        {int8_param(replay.id), text_array_param(lowers), text_array_param(uppers), text_array_param(estimates)});
    spi_run_as_owner(
        "UPDATE viewmig.replays SET state = 'replaying_initial', initial_bound = $2, batch_size = $3, "
        "events_total = $4, initial_started_at = now(), updated_at = now() WHERE id = $1",
        {int8_param(replay.id), int8_param(bound), int4_param(batch_size), int8_param(static_cast<int64_t>(total))});
}

}  // namespace

uint64_t run_initial_replay_task(WorkerShared& shared) {
    worker_begin("viewmig replay_initial: planning");
    Replay replay = load_replay(shared.replay_id);
    if (replay.state != core::ReplayState::Prepared && replay.state != core::ReplayState::ReplayingInitial)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "replay " + std::to_string(replay.id) +
                                                                      " is no longer waiting for its initial replay");
    const EventStore es = load_event_store();
    if (replay.state == core::ReplayState::Prepared) {
        plan_initial_replay(replay, es, shared.batch_size, shared);
        replay = load_replay(shared.replay_id);
    }
    const std::vector<ProjectorVersion> projectors = load_projector_versions(replay.projectors, replay.versions);
    const ReplayTarget target = ReplayTarget::for_projectors(projectors, replay.replay_schema, shared.search_path);

    QueryResult groups = spi_run(
        "SELECT group_no, lower_bound, upper_bound, done FROM viewmig.replay_groups WHERE replay_id = $1 ORDER BY group_no",
        {int8_param(replay.id)});
    std::vector<PendingGroup> pending;
    uint64 done = 0;
    for (const Row& g : groups.rows) {
        if (to_bool(g[3])) ++done;
        else pending.push_back({static_cast<int>(to_int8(g[0])), g[1], g[2]});
    }
    pg_atomic_write_u64(&shared.progress.groups_total, groups.rows.size());
    pg_atomic_write_u64(&shared.progress.groups_done, done);
    pg_atomic_write_u64(&shared.progress.events_total, static_cast<uint64>(replay.events_total.value_or(0)));
    pg_atomic_write_u64(&shared.progress.events_done, static_cast<uint64>(replay.events_done));
    pg_atomic_write_u64(&shared.progress.events_before, static_cast<uint64>(replay.events_done));
    worker_commit();

    uint64_t replayed = 0;
    const std::string of_total = "/" + std::to_string(groups.rows.size());
    for (const PendingGroup& g : pending) {
        worker_begin("viewmig replay_initial: group " + std::to_string(g.group_no + 1) + of_total);
        const uint64_t n = replay_range(es, target, {g.lower, g.upper, std::nullopt, *replay.initial_bound});
        spi_run_as_owner("UPDATE viewmig.replay_groups SET done = true, events_done = $3, finished_at = clock_timestamp() "
                         "WHERE replay_id = $1 AND group_no = $2",
                         {int8_param(replay.id), int4_param(g.group_no), int8_param(static_cast<int64_t>(n))});
        spi_run_as_owner("UPDATE viewmig.replays SET events_done = events_done + $2, updated_at = clock_timestamp() WHERE id = $1",
                         {int8_param(replay.id), int8_param(static_cast<int64_t>(n))});
        worker_commit();
        replayed += n;
        pg_atomic_fetch_add_u64(&shared.progress.events_done, n);
        pg_atomic_fetch_add_u64(&shared.progress.groups_done, 1);
    }

    worker_begin("viewmig replay_initial: finishing");
    spi_run_as_owner("UPDATE viewmig.replays SET state = 'replayed', replayed_bound = initial_bound, last_error = NULL, "
                     "updated_at = now() WHERE id = $1",
                     {int8_param(replay.id)});
    worker_commit();
    return replayed;
}

}  // namespace viewmig::pg

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_replay_initial);
PGDLLEXPORT Datum viewmig_replay_initial(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        const int32_t batch_size = resolve_batch_size(fcinfo);
        spi_connect();
        lock_replay_steps("replay_initial");
        // No row lock here: the worker updates the replay row while this backend waits.
        const Replay replay = *require_step(core::ReplayStep::ReplayInitial, false);
        spi_finish();
        const uint64_t events = bgw::run_in_worker(WorkerTask::ReplayInitial, replay.id, batch_size);
        PG_RETURN_INT64(static_cast<int64_t>(events));
    });
}
}
