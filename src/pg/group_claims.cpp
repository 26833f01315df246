// The workers' claim loop (see group_claims.hpp).
#include "pg/group_claims.hpp"

#include "core/json_text.hpp"
#include "pg/guard.hpp"
#include "pg/job_queue.hpp"
#include "pg/spi.hpp"
#include "pg/transaction_control.hpp"
#include "pg/worker_tasks.hpp"

#include <algorithm>
#include <optional>

extern "C" {
#include "access/xact.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/errcodes.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace viewmig::pg {
namespace {

struct PendingGroup {
    int group_no;
    std::optional<std::string> lower, upper, resume_after;
};

// Takes the next group no other worker holds; its row lock lasts until this transaction ends.
std::optional<PendingGroup> claim_next_group(const GroupClaims& c) {
    QueryResult r = spi_run_saved_as_owner(
        "SELECT group_no, lower_bound, upper_bound, resume_after FROM " + c.table +
            " WHERE replay_id = $1 AND NOT done ORDER BY group_no LIMIT 1 FOR UPDATE SKIP LOCKED",
        {int8_param(c.replay_id)});
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

std::string job_progress_json(WorkerShared& shared, const std::string& step, uint64_t events_after_batch) {
    WorkerProgress& p = shared.progress;
    return core::JsonObject()
        .add("stage", step)
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
// wrote or to insert a key it inserted; a row written in a handler's subtransaction is waited for
// by the subtransaction's id). Reads the other workers' PGPROCs without a lock, as
// pg_stat_activity does: whatever a stale read says, the batch stays correct, only where it ends
// changes.
bool another_worker_waits_for_me(void* arg) {
    auto& shared = *static_cast<WorkerShared*>(arg);
    if (!TransactionIdIsValid(GetTopTransactionIdIfAny())) return false;  // nothing written yet
    for (int i = 0; i < shared.nworkers; ++i) {
        const uint32 procno = pg_atomic_read_u32(&shared.slots[i].procno);
        if (i == current_worker_index || procno == 0) continue;
        const volatile PGPROC* proc = &ProcGlobal->allProcs[procno - 1];
        if (proc->wait_event_info != (PG_WAIT_LOCK | LOCKTAG_TRANSACTION)) continue;
        const volatile LOCK* lock = proc->waitLock;
        if (lock && lock->tag.locktag_type == LOCKTAG_TRANSACTION &&
            TransactionIdIsCurrentTransactionId(static_cast<TransactionId>(lock->tag.locktag_field1))) {
            pg_atomic_fetch_add_u64(&shared.progress.yields, 1);
            return true;
        }
    }
    return false;
}

}  // namespace

bool close_as_last_worker(const std::string& step, int64_t replay_id, const std::string& close_sql,
                          const std::vector<SqlParam>& params) {
    worker_begin("viewmig " + step + ": finishing");
    spi_run_as_owner("SELECT 1 FROM viewmig.replays WHERE id = $1 FOR UPDATE", {int8_param(replay_id)});
    return spi_run_as_owner(close_sql, params).processed > 0;
}

bgw::StartingProgress committed_progress(const std::string& table, int64_t replay_id) {
    const Row r = spi_run("SELECT coalesce(sum(events_done), 0), count(*) FILTER (WHERE done), count(*), "
                          "coalesce(sum(events_estimate), 0) FROM " + table + " WHERE replay_id = $1",
                          {int8_param(replay_id)}).rows.at(0);
    bgw::StartingProgress progress;
    progress.events_done = static_cast<uint64_t>(to_int8(r[0]));
    progress.groups_done = static_cast<uint64_t>(to_int8(r[1]));
    progress.groups_total = static_cast<uint64_t>(to_int8(r[2]));
    progress.events_total = static_cast<uint64_t>(to_int8(r[3]));
    return progress;
}

uint64_t insert_groups(const std::string& table, int64_t replay_id, const core::GroupPlan& plan) {
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
        "INSERT INTO " + table + " (replay_id, group_no, lower_bound, upper_bound, events_estimate) "
        "SELECT $1, g.ord - 1, CASE WHEN g.ord = 1 THEN NULL ELSE g.lo END, "
        "       CASE WHEN g.ord = cardinality($3::text[]) THEN NULL ELSE g.hi END, g.est::bigint "
        "FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY g(lo, hi, est, ord)",
        {int8_param(replay_id), text_array_param(lowers), text_array_param(uppers), text_array_param(estimates)});
    return total;
}

void use_parallel_lock_timeouts() {
    spi_run("SELECT set_config('lock_timeout', $1, false)", {text_param(std::string(kParallelLockTimeout))});
    // Superuser-only (PGC_SUSET) as a SQL setting; this worker's session only.
    pg_call([] { SetConfigOption("deadlock_timeout", kParallelDeadlockTimeout, PGC_SUSET, PGC_S_SESSION); });
}

uint64_t replay_claimed_groups(WorkerShared& shared, const GroupClaims& c) {
    const std::string of_total = "/" + std::to_string(pg_atomic_read_u64(&shared.progress.groups_total));
    // One transaction per batch: claim a group (or the rest of one), replay up to batch_events
    // events of it, whole aggregates only, and commit them with the group's new resume point.
    uint64_t replayed = 0;
    for (int attempt = 1;;) {
        worker_begin("viewmig " + c.step + ": claiming a group");
        try {
            const std::optional<PendingGroup> g = claim_next_group(c);
            if (!g) {
                worker_commit();
                break;
            }
            report_activity("viewmig " + c.step + ": group " + std::to_string(g->group_no + 1) + of_total);
            EventRange range = c.events;
            range.aggregate_lower = g->resume_after ? g->resume_after : g->lower;
            range.aggregate_upper = g->upper;
            range.lower_exclusive = g->resume_after.has_value();
            range.stop_after = c.batch_events;
            if (c.workers > 1) {
                range.stop_early = another_worker_waits_for_me;
                range.stop_early_arg = &shared;
            }
            const ReplayedRange r = c.replay(range);
            spi_run_saved_as_owner("UPDATE " + c.table + " SET done = $3, events_done = events_done + $4, "
                                   "resume_after = coalesce($5, resume_after), worker_pid = pg_backend_pid(), "
                                   "finished_at = CASE WHEN $3 THEN clock_timestamp() END WHERE replay_id = $1 AND group_no = $2",
                                   {int8_param(c.replay_id), int4_param(g->group_no), bool_param(r.complete),
                                    int8_param(static_cast<int64_t>(r.events)), text_param(r.last_aggregate)});
            if (job_report_due(shared)) record_job_progress(shared.job_id, job_progress_json(shared, c.step, r.events));
            worker_commit();
            replayed += r.events;
            attempt = 1;
            pg_atomic_fetch_add_u64(&shared.progress.events_done, r.events);
            pg_atomic_fetch_add_u64(&shared.progress.batches, 1);
            if (r.complete) pg_atomic_fetch_add_u64(&shared.progress.groups_done, 1);
            if (!r.complete && r.events < std::min(c.batch_events, kShortBatchEvents))
                pg_atomic_fetch_add_u64(&shared.progress.short_batches, 1);
        } catch (const PgError& e) {
            // Parallel workers may update the same rows in different orders; a deadlock victim
            // rolls its batch back and replays it again.
            if (!is_retryable(e) || attempt >= kBatchAttempts) throw;
            if (c.forget) c.forget();
            ereport(DEBUG1, (errmsg("viewmig %s: retrying a batch after: %s", c.step.c_str(), e.what())));
            worker_abort();
            pg_atomic_fetch_add_u64(&shared.progress.retries, 1);
            pg_call([&] { pg_usleep(1000L * (attempt * 10 + random() % 20)); });  // let the other side finish
            ++attempt;
        }
        if (too_many_conflicts(shared)) {
            ereport(LOG, (errmsg("viewmig %s: worker %d of %d stops claiming groups: of %llu batches, %llu "
                                 "were rolled back and %llu cut short by lock conflicts with another worker",
                                 c.step.c_str(), current_worker_index + 1, shared.nworkers,
                                 static_cast<unsigned long long>(pg_atomic_read_u64(&shared.progress.retries) +
                                                                 pg_atomic_read_u64(&shared.progress.batches)),
                                 static_cast<unsigned long long>(pg_atomic_read_u64(&shared.progress.retries)),
                                 static_cast<unsigned long long>(pg_atomic_read_u64(&shared.progress.short_batches)))));
            break;
        }
    }
    return replayed;
}

}  // namespace viewmig::pg
