// viewmig.replay_initial(): replays every event committed before the replay started into the
// replay schema, one aggregate_id group per transaction, in a background worker. The group's rows
// and its "done" checkpoint commit together, so after any failure a new call resumes with the
// groups not yet done and ends with the same tables as an uninterrupted run.
#include "bgw/replay_worker.hpp"
#include "core/group_planner.hpp"
#include "core/json_text.hpp"
#include "pg/bulk_constraints.hpp"
#include "pg/catalog.hpp"
#include "pg/declarative_plan.hpp"
#include "pg/declarative_replay.hpp"
#include "pg/guard.hpp"
#include "pg/job_queue.hpp"
#include "pg/replay_scan.hpp"
#include "pg/spi.hpp"
#include "pg/step_args.hpp"
#include "pg/step_lock.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

#include <algorithm>

extern "C" {
#include "access/xact.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/wait_event.h"
#include "utils/errcodes.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

namespace viewmig::pg {
namespace {

// Sample rows for the group boundaries: about 100 per group is plenty (groups are claimed and cut
// into batches as the workers go, so their sizes need not be exact), between 10 000 and 100 000.
// The planning runs before the other workers can start: 100 000 rows of 1 M events took 0.1 s of
// a 10 s two-worker replay, 10 000 take 0.02 s.
constexpr double kSampleRowsPerGroup = 100, kMinSampleRows = 10000, kMaxSampleRows = 100000;

struct PendingGroup {
    int group_no;
    std::optional<std::string> lower, upper, resume_after;
};

// Sets the replay's snapshot bound and its groups; runs in the worker's first transaction.
void plan_initial_replay(const Replay& replay, const EventStore& es, int batch_size) {
    const int64_t bound = to_int8(spi_value("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"));
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

// Takes the next group no other worker holds; its row lock lasts until this transaction ends.
std::optional<PendingGroup> claim_next_group(int64_t replay_id) {
    QueryResult r = spi_run_saved_as_owner(
        "SELECT group_no, lower_bound, upper_bound, resume_after FROM viewmig.replay_groups "
        "WHERE replay_id = $1 AND NOT done ORDER BY group_no LIMIT 1 FOR UPDATE SKIP LOCKED",
        {int8_param(replay_id)});
    if (r.rows.empty()) return std::nullopt;
    return PendingGroup{static_cast<int>(to_int8(r.rows[0][0])), r.rows[0][1], r.rows[0][2], r.rows[0][3]};
}

bool is_retryable(const PgError& e) {
    const int code = e.edata()->sqlerrcode;
    return code == ERRCODE_T_R_DEADLOCK_DETECTED || code == ERRCODE_T_R_SERIALIZATION_FAILURE ||
           code == ERRCODE_LOCK_NOT_AVAILABLE;
}

// When the step runs for a job, one worker at a time (whichever commits a batch once the
// interval is over) records the job's progress, in its batch's transaction.
bool job_report_due(WorkerShared& shared) {
    if (shared.job_id == 0 || shared.progress_interval_ms <= 0) return false;
    const TimestampTz now = pg_call([] { return GetCurrentTimestamp(); });
    uint64 last = pg_atomic_read_u64(&shared.progress.last_job_report);
    if (now < static_cast<TimestampTz>(last) + static_cast<TimestampTz>(shared.progress_interval_ms) * 1000) return false;
    return pg_atomic_compare_exchange_u64(&shared.progress.last_job_report, &last, static_cast<uint64>(now));
}

std::string job_progress_json(WorkerShared& shared, uint64_t events_after_batch) {
    WorkerProgress& p = shared.progress;
    return core::JsonObject()
        .add("stage", "replay_initial")
        .add("replay_id", static_cast<int64_t>(shared.replay_id))
        .add("events_done", static_cast<uint64_t>(pg_atomic_read_u64(&p.events_before) + pg_atomic_read_u64(&p.events_done) +
                                                  events_after_batch))
        .add("events_total", static_cast<uint64_t>(pg_atomic_read_u64(&p.events_total)))
        .add("groups_done", static_cast<uint64_t>(pg_atomic_read_u64(&p.groups_before) + pg_atomic_read_u64(&p.groups_done)))
        .add("groups_total", static_cast<uint64_t>(pg_atomic_read_u64(&p.groups_total)))
        .add("workers", static_cast<int>(shared.nworkers))
        .str();
}

constexpr int kBatchAttempts = 50;

// With several workers, rows that events of many aggregates update (an author's counter) are
// locked by whichever batch touched them last, until it commits. A batch therefore commits early,
// at its next aggregate boundary, as soon as another worker waits for it (see below): the waiter
// loses one aggregate's time instead of half a batch, and batches stay as long as the workload
// allows (uniform shape: about 1 100 events on average, against a fixed 500 before, which cost
// pruning and per-batch work; a fixed 2 000 made the workers take turns, 1.8x slower than 500).
// A short lock_timeout turns a deadlock into a quick retry instead of a deadlock_timeout wait.
constexpr const char* kParallelLockTimeout = "200ms";
// Two workers' batches deadlock when each waits for a shared row the other holds, and both stand
// still until the wait ends: with the default deadlock_timeout (1s) only lock_timeout ended it,
// after 200 ms of both workers idle for every deadlock. The deadlock check after 10 ms rolls back
// one side at once; it runs only when a worker has waited that long.
constexpr const char* kParallelDeadlockTimeout = "10ms";
// A batch that another worker's wait ended before this many events: mostly per-batch work.
constexpr uint64_t kShortBatchEvents = 500;

// When the workers mostly take turns on the same rows (many aggregates updating a few hot rows),
// a second worker only adds rolled-back work or batches of a few aggregates: once, of at least 40
// batches, a tenth were rolled back or half were cut short by a waiting worker, every worker but
// the first stops claiming, and the rest runs as fast as one worker can. (Skewed shape, 50 authors'
// counters: 98 % of the batches were cut short, at 156 events on average, for 52 % more CPU.)
bool too_many_conflicts(WorkerShared& shared) {
    if (current_worker_index == 0) return false;
    const uint64 retries = pg_atomic_read_u64(&shared.progress.retries);
    const uint64 batches = pg_atomic_read_u64(&shared.progress.batches);
    const uint64 short_batches = pg_atomic_read_u64(&shared.progress.short_batches);
    const uint64 attempts = retries + batches;
    return attempts >= 40 && (retries * 10 > attempts || short_batches * 2 > batches);
}

// Whether another worker of this step is waiting for this transaction to end (to lock a row it
// wrote or to insert a key it inserted). Reads the other workers' PGPROCs without a lock, as
// pg_stat_activity does: whatever a stale read says, the batch stays correct, only where it ends
// changes.
bool another_worker_waits_for_me(void* arg) {
    auto& shared = *static_cast<WorkerShared*>(arg);
    const TransactionId me = GetTopTransactionIdIfAny();
    if (!TransactionIdIsValid(me)) return false;
    for (int i = 0; i < shared.nworkers; ++i) {
        const uint32 procno = pg_atomic_read_u32(&shared.slots[i].procno);
        if (i == current_worker_index || procno == 0) continue;
        const volatile PGPROC* proc = &ProcGlobal->allProcs[procno - 1];
        if (proc->wait_event_info != (PG_WAIT_LOCK | LOCKTAG_TRANSACTION)) continue;
        const volatile LOCK* lock = proc->waitLock;
        if (lock && lock->tag.locktag_type == LOCKTAG_TRANSACTION && lock->tag.locktag_field1 == me) {
            pg_atomic_fetch_add_u64(&shared.progress.yields, 1);
            return true;
        }
    }
    return false;
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
    if (replay.state != core::ReplayState::Prepared && replay.state != core::ReplayState::ReplayingInitial)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "replay " + std::to_string(replay.id) +
                                                                      " is no longer waiting for its initial replay");
    const EventStore es = load_event_store();
    if (replay.state == core::ReplayState::Prepared) {
        plan_initial_replay(replay, es, shared.batch_size);
        replay = load_replay(shared.replay_id);
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
    const ReplayTarget target = ReplayTarget::for_projectors(handled, replay.replay_schema, shared.search_path);
    const std::string of_total = "/" + *spi_value("SELECT count(*) FROM viewmig.replay_groups WHERE replay_id = $1",
                                                  {int8_param(replay.id)});
    pg_atomic_write_u64(&shared.progress.groups_total, std::stoull(of_total.substr(1)));
    pg_atomic_write_u64(&shared.progress.events_total, static_cast<uint64>(replay.events_total.value_or(0)));
    if (workers > 1) {
        spi_run("SELECT set_config('lock_timeout', $1, false)", {text_param(std::string(kParallelLockTimeout))});
        // Superuser-only (PGC_SUSET) as a SQL setting; this worker's session only.
        pg_call([] { SetConfigOption("deadlock_timeout", kParallelDeadlockTimeout, PGC_SUSET, PGC_S_SESSION); });
    }
    worker_commit();

    // One transaction per batch: claim a group (or the rest of one), replay up to batch_size
    // events of it, whole aggregates only, and commit them with the group's new resume point.
    const uint64_t batch_events = static_cast<uint64_t>(replay.batch_size.value_or(shared.batch_size));
    uint64_t replayed = 0;
    for (int attempt = 1;;) {
        worker_begin("viewmig replay_initial: claiming a group");
        try {
            const std::optional<PendingGroup> g = claim_next_group(replay.id);
            if (!g) {
                worker_commit();
                break;
            }
            report_activity("viewmig replay_initial: group " + std::to_string(g->group_no + 1) + of_total);
            EventRange range{g->resume_after ? g->resume_after : g->lower, g->upper, std::nullopt, *replay.initial_bound};
            range.lower_exclusive = g->resume_after.has_value();
            range.stop_after = batch_events;
            // Declarative engines never share rows between workers (see above).
            if (workers > 1 && !target.handlers.empty()) {
                range.stop_early = another_worker_waits_for_me;
                range.stop_early_arg = &shared;
            }
            const ReplayedRange r = replay_batch(es, target, engines, range);
            spi_run_saved_as_owner("UPDATE viewmig.replay_groups SET done = $3, events_done = events_done + $4, "
                             "resume_after = coalesce($5, resume_after), worker_pid = pg_backend_pid(), "
                             "finished_at = CASE WHEN $3 THEN clock_timestamp() END WHERE replay_id = $1 AND group_no = $2",
                             {int8_param(replay.id), int4_param(g->group_no), bool_param(r.complete),
                              int8_param(static_cast<int64_t>(r.events)), text_param(r.last_aggregate)});
            if (job_report_due(shared)) record_job_progress(shared.job_id, job_progress_json(shared, r.events));
            worker_commit();
            replayed += r.events;
            attempt = 1;
            pg_atomic_fetch_add_u64(&shared.progress.events_done, r.events);
            pg_atomic_fetch_add_u64(&shared.progress.batches, 1);
            if (r.complete) pg_atomic_fetch_add_u64(&shared.progress.groups_done, 1);
            if (!r.complete && r.events < std::min(batch_events, kShortBatchEvents))
                pg_atomic_fetch_add_u64(&shared.progress.short_batches, 1);
        } catch (const PgError& e) {
            // Parallel workers may update the same rows in different orders; a deadlock victim
            // rolls its batch back and replays it again.
            if (!is_retryable(e) || attempt >= kBatchAttempts) throw;
            for (auto& engine : engines) engine->forget();
            ereport(DEBUG1, (errmsg("viewmig replay_initial: retrying a batch after: %s", e.what())));
            worker_abort();
            pg_atomic_fetch_add_u64(&shared.progress.retries, 1);
            pg_call([&] { pg_usleep(1000L * (attempt * 10 + random() % 20)); });  // let the other side finish
            ++attempt;
        }
        if (too_many_conflicts(shared)) {
            ereport(LOG, (errmsg("viewmig replay_initial: worker %d of %d stops claiming groups: of %llu batches, %llu "
                                 "were rolled back and %llu cut short by lock conflicts with another worker",
                                 current_worker_index + 1, shared.nworkers,
                                 static_cast<unsigned long long>(pg_atomic_read_u64(&shared.progress.retries) +
                                                                 pg_atomic_read_u64(&shared.progress.batches)),
                                 static_cast<unsigned long long>(pg_atomic_read_u64(&shared.progress.retries)),
                                 static_cast<unsigned long long>(pg_atomic_read_u64(&shared.progress.short_batches)))));
            break;
        }
    }

    // The last worker to finish (no group left, none held by another) closes the initial replay.
    worker_begin("viewmig replay_initial: finishing");
    spi_run_as_owner("SELECT 1 FROM viewmig.replays WHERE id = $1 FOR UPDATE", {int8_param(replay.id)});
    const QueryResult finished = spi_run_as_owner(
        "UPDATE viewmig.replays SET state = 'replayed', replayed_bound = initial_bound, last_error = NULL, "
        "updated_at = now() WHERE id = $1 AND state = 'replaying_initial' "
        "AND NOT EXISTS (SELECT 1 FROM viewmig.replay_groups WHERE replay_id = $1 AND NOT done)",
        {int8_param(replay.id)});
    if (finished.processed > 0) {
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
        const int workers = resolve_workers(fcinfo, true);
        spi_connect();
        lock_replay_steps("replay_initial");
        // No row lock here: the workers update the replay row while this backend waits.
        const Replay replay = *require_step(core::ReplayStep::ReplayInitial, false);
        // What earlier, interrupted calls committed, so that progress counts on from there.
        const Row before = spi_run("SELECT coalesce(sum(events_done), 0), count(*) FILTER (WHERE done), "
                                   "count(*) FROM viewmig.replay_groups WHERE replay_id = $1",
                                   {int8_param(replay.id)}).rows.at(0);
        bgw::StartingProgress progress;
        progress.events_done = static_cast<uint64_t>(to_int8(before[0]));
        progress.groups_done = static_cast<uint64_t>(to_int8(before[1]));
        progress.groups_total = static_cast<uint64_t>(to_int8(before[2]));
        progress.events_total = static_cast<uint64_t>(replay.events_total.value_or(0));
        spi_finish();
        const uint64_t events = bgw::run_in_workers(WorkerTask::ReplayInitial, replay.id, batch_size, workers, progress);
        PG_RETURN_INT64(static_cast<int64_t>(events));
    });
}
}
