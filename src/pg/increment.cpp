// viewmig.replay_increment() and the increment used by complete() (see increment.hpp).
#include "pg/increment.hpp"

#include "pg/event_row_checks.hpp"
#include "pg/foreign_xact_ids.hpp"
#include "pg/guard.hpp"
#include "pg/replay_scan.hpp"
#include "pg/spi.hpp"
#include "pg/step_args.hpp"
#include "pg/step_lock.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {

IncrementResult replay_increment_now(const Replay& replay, const EventStore& es, std::optional<int64_t> upper_bound) {
    refuse_if_parallel_increment_pending(replay);
    IncrementResult result;
    result.new_bound = upper_bound ? *upper_bound
                                   : to_int8(spi_value("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"));
    const int64_t lower = replay.replayed_bound.value_or(0);
    refuse_foreign_xact_ids(es);
    if (result.new_bound > lower) {
        refuse_unreplayable_events(es, lower, result.new_bound);
        const std::vector<ProjectorVersion> projectors = load_projector_versions(replay.projectors, replay.versions);
        const ReplayTarget target = ReplayTarget::for_projectors(projectors, replay.replay_schema);
        result.events = replay_range(es, target, {std::nullopt, std::nullopt, lower, result.new_bound}).events;
    } else {
        result.new_bound = lower;
    }
    spi_run_as_owner("UPDATE viewmig.replays SET replayed_bound = $2, events_done = events_done + $3, "
                     "increments = increments + 1, updated_at = now() WHERE id = $1",
                     {int8_param(replay.id), int8_param(result.new_bound), int8_param(static_cast<int64_t>(result.events))});
    return result;
}

}  // namespace viewmig::pg

using namespace viewmig;
using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_replay_increment);
PGDLLEXPORT Datum viewmig_replay_increment(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        const int32_t batch_size = resolve_batch_size(fcinfo);
        const int workers = resolve_workers(fcinfo);
        spi_connect();
        lock_replay_steps("replay_increment");
        if (workers > 1) {
            // No row lock here: the workers update the replay row while this backend waits.
            const Replay replay = *require_step(core::ReplayStep::ReplayIncrement, false);
            const bgw::StartingProgress progress = prepare_parallel_increment(replay, workers);
            spi_finish();
            PG_RETURN_INT64(static_cast<int64_t>(
                bgw::run_in_workers(WorkerTask::ReplayIncrement, replay.id, batch_size, workers, progress)));
        }
        const Replay replay = *require_step(core::ReplayStep::ReplayIncrement);
        const EventStore es = load_event_store();
        const IncrementResult r = replay_increment_now(replay, es, std::nullopt);
        spi_finish();
        PG_RETURN_INT64(static_cast<int64_t>(r.events));
    });
}
}
