// viewmig.replay_initial(): replays every event committed before the replay started into the
// replay schema, one aggregate_id group per transaction, in a background worker. The group's rows
// and its "done" checkpoint commit together, so after any failure a new call resumes with the
// groups not yet done and ends with the same tables as an uninterrupted run.
#include "bgw/replay_worker.hpp"
#include "core/group_planner.hpp"
#include "pg/bulk_constraints.hpp"
#include "pg/catalog.hpp"
#include "pg/declarative_plan.hpp"
#include "pg/declarative_replay.hpp"
#include "pg/event_row_checks.hpp"
#include "pg/foreign_xact_ids.hpp"
#include "pg/group_claims.hpp"
#include "pg/guard.hpp"
#include "pg/replay_scan.hpp"
#include "pg/spi.hpp"
#include "pg/step_args.hpp"
#include "pg/step_lock.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

#include <algorithm>

extern "C" {
#include "utils/errcodes.h"
#include "utils/guc.h"
}

namespace viewmig::pg {
namespace {

// Sample rows for the group boundaries: about 100 per group is plenty (groups are claimed and cut
// into batches as the workers go, so their sizes need not be exact), between 10 000 and 100 000.
// The planning runs before the other workers can start: 100 000 rows of 1 M events took 0.1 s of
// a 10 s two-worker replay, 10 000 take 0.02 s.
constexpr double kSampleRowsPerGroup = 100, kMinSampleRows = 10000, kMaxSampleRows = 100000;

// Sets the replay's snapshot bound and its groups; runs in the worker's first transaction.
void plan_initial_replay(const Replay& replay, const EventStore& es, int batch_size) {
    const int64_t bound = to_int8(spi_value("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"));
    refuse_foreign_xact_ids(es);
    refuse_unreplayable_events(es, std::nullopt, bound);
    double estimated = std::stod(spi_value(
        "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0) FROM pg_partition_tree($1::oid::regclass) t "
        "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf", {oid_param(es.events)}).value_or("0"));
    if (estimated <= 0) estimated = std::stod(*spi_value("SELECT count(*) FROM " + es.qualified()));
    const double wanted = std::clamp(estimated / std::max(batch_size, 1) * kSampleRowsPerGroup, kMinSampleRows, kMaxSampleRows);
    const double percent = core::sample_percent(estimated, wanted);
    const std::string agg = "e." + quote_ident(es.aggregate_id_column);
    const std::string sample_sql = "SELECT " + agg + "::text FROM " + es.qualified() + " e" +
                                   (percent < 100 ? " TABLESAMPLE BERNOULLI (" + std::to_string(percent) + ")" : "") +
                                   " WHERE e." + quote_ident(es.xact_id_column) + " < " + es.xact_bound_param(1) +
                                   " AND " + agg + " IS NOT NULL ORDER BY " + agg;
    QueryResult sample = spi_run(sample_sql, {int8_param(bound)});
    std::vector<std::string> keys;
    keys.reserve(sample.rows.size());
    for (auto& row : sample.rows) keys.push_back(std::move(*row[0]));
    const core::GroupPlan plan = core::plan_groups(keys, 100.0 / percent, static_cast<uint64_t>(batch_size));

    const uint64_t total = insert_groups("viewmig.replay_groups", replay.id, plan);
    spi_run_as_owner(
        "UPDATE viewmig.replays SET state = 'replaying_initial', initial_bound = $2, batch_size = $3, "
        "events_total = $4, initial_started_at = now(), updated_at = now() WHERE id = $1",
        {int8_param(replay.id), int8_param(bound), int4_param(batch_size), int8_param(static_cast<int64_t>(total))});
}

// One batch: the handlers' scan decides where the batch ends (whole aggregates), and each
// declarative engine replays the same aggregates; with engines only, the first one decides.
ReplayedRange replay_batch(const EventStore& es, const ReplayTarget& target,
                           const std::vector<std::unique_ptr<DeclarativeReplay>>& engines, const EventRange& range) {
    std::optional<ReplayedRange> decided;
    if (!target.handlers.empty()) decided = replay_range(es, target, range);
    for (const auto& engine : engines) {
        EventRange same = range;
        if (decided) {
            same.stop_after = 0;
            if (!decided->complete) {
                same.aggregate_upper = decided->last_aggregate;
                same.upper_inclusive = true;
            }
        }
        const ReplayedRange r = engine->replay(same);
        if (!decided)
            decided = r;
        else
            decided->events = std::max(decided->events, r.events);
    }
    return decided.value_or(ReplayedRange{});
}

}  // namespace

int current_worker_index = 0;

uint64_t run_initial_replay_task(WorkerShared& shared) {
    // Every worker runs this; the first to get the lock plans the groups, the others then find
    // them planned.
    worker_begin("viewmig replay_initial: planning");
    lock_group_planning();
    Replay replay = load_replay(shared.replay_id);
    // The caller found the replay waiting for its initial replay: if it is replayed now, the other
    // workers did it all before this one started (a small replay), and nothing is left to do.
    if (replay.state == core::ReplayState::Replayed && shared.nworkers > 1) {
        worker_commit();
        return 0;
    }
    if (replay.state != core::ReplayState::Prepared && replay.state != core::ReplayState::ReplayingInitial)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "replay " + std::to_string(replay.id) +
                                                                      " is no longer waiting for its initial replay");
    const EventStore es = load_event_store();
    if (replay.state == core::ReplayState::Prepared) {
        plan_initial_replay(replay, es, shared.batch_size);
        replay = load_replay(shared.replay_id);
    } else {
        // A resumed replay: rows changed since it was planned must not be skipped either. Every
        // worker checks (under the planning lock, before it claims a group): a worker that did not
        // would go on replaying after a sibling's ERROR.
        refuse_foreign_xact_ids(es);
        refuse_unreplayable_events(es, std::nullopt, replay.initial_bound);
    }
    // Declarative projectors run in the compiled engine, the others through their handlers.
    std::vector<ProjectorVersion> handled;
    std::vector<std::unique_ptr<DeclarativeReplay>> engines;
    const Row engine_state = spi_run(
        "SELECT EXISTS (SELECT 1 FROM viewmig.replay_groups WHERE replay_id = $1 AND (done OR resume_after IS NOT NULL)), "
        "       eager_projectors::text FROM viewmig.replays WHERE id = $1", {int8_param(replay.id)}).rows.at(0);
    const bool fresh = !to_bool(engine_state[0]);
    const std::vector<std::string> eager = parse_text_array(engine_state[1]);
    const std::vector<ProjectorVersion> projectors = load_projector_versions(replay.projectors, replay.versions);
    std::vector<std::pair<const ProjectorVersion*, core::Plan>> declarative;
    for (const ProjectorVersion& p : projectors) {
        if (use_declarative_engine(replay, p))
            declarative.emplace_back(&p, compile_declarative_plan(es, p));
        else
            handled.push_back(p);
    }
    // Rows that events of many aggregates update (shared tables) cost one worker a single write at
    // the end, but several workers a locked read and a write per batch each: measured slower than
    // one worker (bench/run.sh), so such replays run in the first worker only.
    int workers = static_cast<int>(shared.nworkers);
    if (workers > 1) {
        for (const auto& [p, plan] : declarative) {
            for (const auto& t : plan.tables) {
                if (t.mode != core::TableMode::Shared || workers == 1) continue;
                workers = 1;
                if (current_worker_index == 0)
                    ereport(LOG, (errmsg("viewmig replay_initial: one worker replays declarative projector \"%s\": its table "
                                         "\"%s\" has rows shared by many aggregates",
                                         p->projector.c_str(), t.info.name.c_str())));
            }
        }
        if (workers == 1 && current_worker_index > 0) {
            worker_commit();
            return 0;
        }
    }
    for (auto& [p, plan] : declarative) {
        // A resumed replay writes shared rows with every batch; the first worker here makes the
        // tables hold those of the committed groups first (see declarative_replay.hpp). It still
        // holds the planning lock.
        bool is_eager = std::find(eager.begin(), eager.end(), p->projector) != eager.end();
        if (!is_eager && !fresh) {
            DeclarativeReplay restorer(es, *p, plan, replay, DeclarativeReplay::Mode::Deferred);
            restorer.restore_shared_and_go_eager(replayed_ranges(replay));
            is_eager = true;
        }
        engines.push_back(std::make_unique<DeclarativeReplay>(
            es, *p, std::move(plan), replay, is_eager ? DeclarativeReplay::Mode::Eager : DeclarativeReplay::Mode::Deferred));
    }
    const ReplayTarget target = ReplayTarget::for_projectors(handled, replay.replay_schema);
    const bgw::StartingProgress planned = committed_progress("viewmig.replay_groups", replay.id);
    pg_atomic_write_u64(&shared.progress.groups_total, planned.groups_total);
    pg_atomic_write_u64(&shared.progress.events_total, planned.events_total);
    if (workers > 1) use_parallel_lock_timeouts();
    worker_commit();

    GroupClaims claims;
    claims.table = "viewmig.replay_groups";
    claims.replay_id = replay.id;
    claims.step = "replay_initial";
    // Declarative engines never share rows between workers (see above): only handlers conflict.
    claims.workers = target.handlers.empty() ? 1 : workers;
    claims.batch_events = static_cast<uint64_t>(replay.batch_size.value_or(shared.batch_size));
    claims.events.xact_upper = *replay.initial_bound;
    claims.replay = [&](const EventRange& range) { return replay_batch(es, target, engines, range); };
    claims.forget = [&] {
        for (auto& engine : engines) engine->forget();
    };
    const uint64_t replayed = replay_claimed_groups(shared, claims);

    if (close_as_last_worker("replay_initial", replay.id,
                             "UPDATE viewmig.replays SET state = 'replayed', replayed_bound = initial_bound, last_error = NULL, "
                             "updated_at = now() WHERE id = $1 AND state = 'replaying_initial' "
                             "AND NOT EXISTS (SELECT 1 FROM viewmig.replay_groups WHERE replay_id = $1 AND NOT done)",
                             {int8_param(replay.id)})) {
        report_activity("viewmig replay_initial: writing the declarative engines' shared rows");
        for (auto& engine : engines) engine->finish();
        report_activity("viewmig replay_initial: adding the keys of bulk-loaded tables");
        add_bulk_constraints(replay);
    }
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
        const int workers = resolve_workers(fcinfo);
        spi_connect();
        lock_replay_steps("replay_initial");
        // No row lock here: the workers update the replay row while this backend waits.
        const Replay replay = *require_step(core::ReplayStep::ReplayInitial, false);
        const bgw::StartingProgress progress = committed_progress("viewmig.replay_groups", replay.id);
        spi_finish();
        const uint64_t events = bgw::run_in_workers(WorkerTask::ReplayInitial, replay.id, batch_size, workers, progress);
        PG_RETURN_INT64(static_cast<int64_t>(events));
    });
}
}
