// Dynamic background worker for replay steps: the caller's side (start, wait, relay) and the
// worker's entry point (see replay_worker.hpp).
#include "bgw/replay_worker.hpp"
#include "bgw/dynamic_worker.hpp"
#include "pg/gucs.hpp"

#include "core/progress.hpp"
#include "pg/guard.hpp"
#include "pg/job_runner.hpp"
#include "pg/replay_scan.hpp"
#include "pg/run_as.hpp"
#include "pg/spi.hpp"
#include "pg/worker_tasks.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/plannodes.h"
#include "access/transam.h"
#include "catalog/pg_proc.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/portal.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include <cstring>
#include <stdexcept>


namespace viewmig::bgw {
namespace {

using pg::WorkerOutcome;
using pg::WorkerProgress;
using pg::WorkerShared;
using pg::WorkerSlot;

void copy_text(char* dest, std::size_t size, const char* src) { strlcpy(dest, src ? src : "", size); }

const char* task_name(pg::WorkerTask task) {
    switch (task) {
        case pg::WorkerTask::ReplayInitial: return "replay_initial";
        case pg::WorkerTask::PrepareCompletion: return "prepare_completion";
        case pg::WorkerTask::SchemaMigration: return "run_background_schema_migrations";
        case pg::WorkerTask::MigrateOnline: return "migrate_online";
        case pg::WorkerTask::ReplayIncrement: return "replay_increment";
    }
    return "?";
}

// True when the worker is blocked by a lock this backend holds: it would wait for us forever.
bool worker_waits_for_us(pid_t worker_pid) {
    Datum pids = DirectFunctionCall1(pg_blocking_pids, Int32GetDatum(worker_pid));
    ArrayType* array = DatumGetArrayTypeP(pids);
    Datum* elems;
    int n;
    deconstruct_array(array, INT4OID, 4, true, TYPALIGN_INT, &elems, nullptr, &n);
    for (int i = 0; i < n; ++i)
        if (DatumGetInt32(elems[i]) == MyProcPid) return true;
    return false;
}

void report_progress(WorkerShared* shared, TimestampTz started) {
    WorkerProgress& w = shared->progress;
    core::ProgressSnapshot p;
    p.events_before = pg_atomic_read_u64(&w.events_before);
    p.events_done = p.events_before + pg_atomic_read_u64(&w.events_done);
    p.events_total = pg_atomic_read_u64(&w.events_total);
    p.groups_done = pg_atomic_read_u64(&w.groups_before) + pg_atomic_read_u64(&w.groups_done);
    p.groups_total = pg_atomic_read_u64(&w.groups_total);
    p.elapsed_s = static_cast<double>(GetCurrentTimestamp() - started) / 1e6;
    if (shared->task == pg::WorkerTask::SchemaMigration) return;  // see viewmig.background_schema_migrations_status
    if (shared->task == pg::WorkerTask::PrepareCompletion) {
        ereport(NOTICE, (errmsg("viewmig prepare_completion: step %llu of %llu (indexes, CLUSTER, VACUUM ANALYZE)",
                                static_cast<unsigned long long>(p.groups_done + 1),
                                static_cast<unsigned long long>(p.groups_total))));
        return;
    }
    const std::string line = core::describe(p);
    ereport(NOTICE, (errmsg("viewmig %s: %s (%d worker%s)", task_name(shared->task), line.c_str(), shared->nworkers,
                            shared->nworkers == 1 ? "" : "s")));
}

// While it waits, the caller reads nothing, yet its statement snapshot would hold back the xmin
// horizon of the whole cluster for as long as the replay runs: bloat everywhere, and the worker's
// own old row versions (hot counters) could never be pruned. Like VACUUM, the waiting backend asks
// to be left out of horizon computations — but only when nothing of this backend can read with an
// older snapshot afterwards (see caller_reads_nothing_more); transaction end clears the flag in
// any case.
void set_in_vacuum_flag(bool on) {
    LWLockAcquire(ProcArrayLock, LW_EXCLUSIVE);
    if (on)
        MyProc->statusFlags |= PROC_IN_VACUUM;
    else
        MyProc->statusFlags &= ~PROC_IN_VACUUM;
    ProcGlobal->statusFlags[MyProc->pgxactoff] = MyProc->statusFlags;
    LWLockRelease(ProcArrayLock);
}

// A value known before the statement ran: a constant, or a parameter of the client's.
bool is_constant_argument(const Node* arg) {
    if (IsA(arg, Const)) return true;
    return IsA(arg, Param) && castNode(Param, const_cast<Node*>(arg))->paramkind == PARAM_EXTERN;
}

// Walks an expression of the waiting statement: it may hold calls of viewmig's functions with
// constant arguments (the steps, counted), constants, client parameters, columns of a function
// scan (allow_vars) and what PostgreSQL itself defines as immutable (operators, casts, CASE, IS
// NULL ...) — nothing that can read a table: no subquery, no aggregate, no user function (a
// function declared STABLE, or wrongly IMMUTABLE, reads with the statement's snapshot).
struct StatementWalk {
    Oid viewmig_schema;
    bool allow_vars;
    int steps;
};

bool builtin_immutable(Oid funcid) {
    return funcid != InvalidOid && funcid < FirstNormalObjectId && func_volatile(funcid) == PROVOLATILE_IMMUTABLE;
}

// expression_tree_walker's convention: true stops the walk (here: the statement may read).
bool statement_may_read(Node* node, StatementWalk* walk) {
    if (node == nullptr) return false;
    switch (nodeTag(node)) {
        case T_Const:
            return false;
        case T_Param:
            return castNode(Param, node)->paramkind != PARAM_EXTERN;
        case T_Var:
            return !walk->allow_vars;
        case T_FuncExpr: {
            auto* call = castNode(FuncExpr, node);
            if (get_func_namespace(call->funcid) == walk->viewmig_schema) {
                ListCell* lc;
                foreach (lc, call->args)
                    if (!is_constant_argument(static_cast<const Node*>(lfirst(lc)))) return true;
                ++walk->steps;
                return false;
            }
            if (!builtin_immutable(call->funcid)) return true;
            break;
        }
        case T_OpExpr:
        case T_DistinctExpr:
        case T_NullIfExpr: {
            auto* op = reinterpret_cast<OpExpr*>(node);
            set_opfuncid(op);
            if (!builtin_immutable(op->opfuncid)) return true;
            break;
        }
        case T_ScalarArrayOpExpr: {
            auto* op = castNode(ScalarArrayOpExpr, node);
            set_sa_opfuncid(op);
            if (!builtin_immutable(op->opfuncid)) return true;
            break;
        }
        case T_List:
        case T_TargetEntry:
        case T_BoolExpr:
        case T_NullTest:
        case T_BooleanTest:
        case T_RelabelType:
        case T_CoerceViaIO:
        case T_CaseExpr:
        case T_CaseWhen:
        case T_CaseTestExpr:
        case T_CoalesceExpr:
        case T_MinMaxExpr:
        case T_ArrayExpr:
        case T_RowExpr:
        case T_FieldSelect:
            break;
        default:
            return true;  // a subquery, an aggregate, anything else: it may read
    }
    // Through void (*)(): the walker type of PG15 is an unprototyped bool (*)().
    return expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(statement_may_read)), walk);
}

// True when the statement this backend runs cannot read a table after the step returns: a SELECT
// without FROM (or FROM functions only) whose expressions are the step's call with constant
// arguments and what statement_may_read allows around it — `SELECT viewmig.replay_initial()`,
// `SELECT viewmig.run_background_schema_migrations() = 3`, `... FROM generate_series(1, 3)` —
// and no other portal (cursor, extended-protocol portal) is open that could still fetch rows
// with its snapshot. `SELECT count(*) FROM t, viewmig.replay_initial()` or `SELECT viewmig.
// replay_initial(), (SELECT count(*) FROM t)` read t with the statement's snapshot after the call.
bool statement_is_only_the_step() {
    if (ActivePortal == nullptr || ActivePortal->strategy == PORTAL_MULTI_QUERY ||
        list_length(ActivePortal->stmts) != 1 || !ThereAreNoReadyPortals())
        return false;
    Node* node = static_cast<Node*>(linitial(ActivePortal->stmts));
    if (!IsA(node, PlannedStmt)) return false;
    auto* stmt = castNode(PlannedStmt, node);
    if (stmt->commandType != CMD_SELECT || stmt->utilityStmt != nullptr || stmt->hasModifyingCTE ||
        stmt->subplans != NIL || stmt->rowMarks != NIL || stmt->planTree == nullptr)
        return false;
    ListCell* lc;
    foreach (lc, stmt->rtable) {
        const auto* rte = static_cast<const RangeTblEntry*>(lfirst(lc));
        if (rte->rtekind != RTE_RESULT && rte->rtekind != RTE_FUNCTION) return false;
    }
    Plan* plan = stmt->planTree;
    if (plan->lefttree != nullptr || plan->righttree != nullptr || plan->initPlan != NIL) return false;
    StatementWalk walk{get_namespace_oid("viewmig", true), false, 0};  // viewmig.control: schema = viewmig
    if (IsA(plan, Result)) {
        if (castNode(Result, plan)->resconstantqual != nullptr || plan->qual != NIL) return false;
        if (statement_may_read(reinterpret_cast<Node*>(plan->targetlist), &walk)) return false;
    } else if (IsA(plan, FunctionScan)) {
        foreach (lc, castNode(FunctionScan, plan)->functions)
            if (statement_may_read(static_cast<RangeTblFunction*>(lfirst(lc))->funcexpr, &walk)) return false;
        walk.allow_vars = true;  // the functions' columns
        if (statement_may_read(reinterpret_cast<Node*>(plan->targetlist), &walk) ||
            statement_may_read(reinterpret_cast<Node*>(plan->qual), &walk))
            return false;
    } else {
        return false;
    }
    return walk.steps > 0;
}

// Only for a statement of its own in READ COMMITTED with no transaction id (no transaction block),
// where no snapshot of this backend but the statement's can exist, and only when that statement
// can read nothing with it any more (statement_is_only_the_step) — or when a viewmig job runs the
// step: the job worker's statement is the step call alone and it reads with new snapshots after.
bool caller_reads_nothing_more() {
    if (IsTransactionBlock() || IsolationUsesXactSnapshot() || TransactionIdIsValid(GetTopTransactionIdIfAny()))
        return false;
    return pg::current_job_id != 0 || statement_is_only_the_step();
}

bool leave_xmin_horizon() {
    if (!caller_reads_nothing_more()) return false;
    InvalidateCatalogSnapshot();
    set_in_vacuum_flag(true);
    return true;
}

void rejoin_xmin_horizon(bool left) {
    if (!left) return;
    set_in_vacuum_flag(false);
    // Catalog rows may have been removed meanwhile: read the catalog with a new snapshot from now on.
    InvalidateCatalogSnapshot();
}

void terminate_all(BackgroundWorkerHandle** handles, int n) {
    for (int i = 0; i < n; ++i)
        if (handles[i]) TerminateBackgroundWorker(handles[i]);
}

WorkerOutcome slot_outcome(const WorkerShared* shared, int i) {
    return static_cast<WorkerOutcome>(pg_atomic_read_u32(const_cast<pg_atomic_uint32*>(&shared->slots[i].outcome)));
}

struct WaitCleanup {
    BackgroundWorkerHandle** handles;
    int n;
    bool left_horizon;
};

// Runs when the wait ends in an ERROR, and when this backend exits (FATAL after SIGTERM from
// pg_terminate_backend or cancel_job, which no PG_CATCH sees): the workers must not outlive us.
void stop_workers(int, Datum arg) {
    auto* cleanup = reinterpret_cast<WaitCleanup*>(DatumGetPointer(arg));
    terminate_all(cleanup->handles, cleanup->n);
    rejoin_xmin_horizon(cleanup->left_horizon);
    cleanup->left_horizon = false;
}

// Waits until every worker has stopped, or one has failed; terminates them all if this backend
// is cancelled or terminated. Plain C below: no C++ object with a destructor lives across a longjmp.
void wait_for_workers_unguarded(BackgroundWorkerHandle** handles, WorkerShared* shared) {
    const int n = shared->nworkers;
    const TimestampTz started = GetCurrentTimestamp();
    WaitCleanup cleanup{handles, n, leave_xmin_horizon()};
    core::ReportClock report_clock(viewmig_progress_interval_ms / 1000.0);  // trivially destructible
    TimestampTz next_lock_check = TimestampTzPlusMilliseconds(started, 1000);
    PG_ENSURE_ERROR_CLEANUP(stop_workers, PointerGetDatum(&cleanup));
    {
        for (;;) {
            const TimestampTz now = GetCurrentTimestamp();
            const bool check_locks = now >= next_lock_check;
            if (check_locks) next_lock_check = TimestampTzPlusMilliseconds(now, 1000);
            int running = 0;
            bool failed = false;
            for (int i = 0; i < n; ++i) {
                failed = failed || slot_outcome(shared, i) == WorkerOutcome::Failed;
                pid_t pid;
                const BgwHandleStatus status = GetBackgroundWorkerPid(handles[i], &pid);
                if (status == BGWH_STOPPED) continue;
                if (status == BGWH_POSTMASTER_DIED)
                    ereport(ERROR, (errcode(ERRCODE_ADMIN_SHUTDOWN),
                                    errmsg("postmaster died during viewmig.%s()", task_name(shared->task))));
                ++running;
                if (status == BGWH_STARTED && check_locks && worker_waits_for_us(pid))
                    ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                                    errmsg("the viewmig worker waits for a lock held by this transaction"),
                                    errdetail("viewmig.%s() runs in background workers, which can not share this transaction's locks.",
                                              task_name(shared->task)),
                                    errhint("Call it as a statement of its own, SELECT viewmig.%s(...); outside an explicit "
                                            "transaction block (or COMMIT first): only then does this backend's snapshot "
                                            "stop holding the worker back.",
                                            task_name(shared->task))));
            }
            if (failed || running == 0) break;
            (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 200, PG_WAIT_EXTENSION);
            ResetLatch(MyLatch);
            CHECK_FOR_INTERRUPTS();
            if (report_clock.due(static_cast<double>(GetCurrentTimestamp() - started) / 1e6)) report_progress(shared, started);
        }
    }
    PG_END_ENSURE_ERROR_CLEANUP(stop_workers, PointerGetDatum(&cleanup));
    rejoin_xmin_horizon(cleanup.left_horizon);
}

// `input` holds the plain fields; the atomics are initialised here, in shared memory.
void start_and_wait_unguarded(const WorkerShared* input, const StartingProgress* start, uint64* result) {
    const int n = input->nworkers;
    dsm_segment* seg = dsm_create(WorkerShared::size_for(n), 0);
    auto* shared = static_cast<WorkerShared*>(dsm_segment_address(seg));
    memcpy(shared, input, offsetof(WorkerShared, slots));
    WorkerProgress& p = shared->progress;
    pg_atomic_init_u64(&p.events_before, start->events_done);
    pg_atomic_init_u64(&p.events_done, 0);
    pg_atomic_init_u64(&p.events_total, start->events_total);
    pg_atomic_init_u64(&p.groups_before, start->groups_done);
    pg_atomic_init_u64(&p.groups_done, 0);
    pg_atomic_init_u64(&p.groups_total, start->groups_total);
    pg_atomic_init_u64(&p.retries, 0);
    pg_atomic_init_u64(&p.batches, 0);
    pg_atomic_init_u64(&p.yields, 0);
    pg_atomic_init_u64(&p.short_batches, 0);
    pg_atomic_init_u64(&p.window_upper, 0);
    pg_atomic_init_u64(&p.last_job_report, static_cast<uint64>(GetCurrentTimestamp()));
    for (int i = 0; i < n; ++i) {
        memset(&shared->slots[i], 0, sizeof(WorkerSlot));
        pg_atomic_init_u32(&shared->slots[i].outcome, static_cast<uint32>(WorkerOutcome::Running));
        pg_atomic_init_u32(&shared->slots[i].procno, 0);
    }

    BackgroundWorker worker;
    fill_dynamic_worker(&worker, "viewmig_replay_worker_main", "viewmig worker");
    worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));

    auto** handles = static_cast<BackgroundWorkerHandle**>(palloc0(sizeof(BackgroundWorkerHandle*) * n));
    for (int i = 0; i < n; ++i) {
        snprintf(worker.bgw_name, BGW_MAXLEN, "viewmig %s for replay %lld, worker %d of %d (pid %d)",
                 task_name(shared->task), static_cast<long long>(shared->replay_id), i + 1, n, MyProcPid);
        memcpy(worker.bgw_extra, &i, sizeof i);
        if (!RegisterDynamicBackgroundWorker(&worker, &handles[i])) {
            terminate_all(handles, i);
            ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                            errmsg("could not start viewmig background worker %d of %d", i + 1, n),
                            errdetail("All max_worker_processes (%d) background worker slots are in use.", max_worker_processes),
                            errhint("Use fewer workers, raise max_worker_processes (needs a restart), or wait for other "
                                    "background workers to finish.")));
        }
    }
    wait_for_workers_unguarded(handles, shared);

    for (int i = 0; i < n; ++i) {
        if (slot_outcome(shared, i) != WorkerOutcome::Failed) continue;
        terminate_all(handles, n);  // the others stop at their next interrupt check; committed groups stay
        const WorkerSlot* slot = &shared->slots[i];
        ereport(ERROR, (errcode(slot->sqlstate), errmsg_internal("%s", slot->message),
                        slot->detail[0] ? errdetail_internal("%s", slot->detail) : 0,
                        slot->hint[0] ? errhint("%s", slot->hint) : 0,
                        errcontext("%s%sviewmig background worker %d of %d running %s", slot->context,
                                   slot->context[0] ? "\n" : "", i + 1, n, task_name(shared->task))));
    }
    uint64 total = 0;
    for (int i = 0; i < n; ++i) {
        if (slot_outcome(shared, i) != WorkerOutcome::Succeeded)
            ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                            errmsg("viewmig background worker %d of %d for %s() exited without a result", i + 1, n,
                                   task_name(shared->task)),
                            errhint("See the server log. Work committed so far is kept: call viewmig.%s() again to resume.",
                                    task_name(shared->task))));
        total += shared->slots[i].result;
    }
    *result = total;
    if (const uint64 retries = pg_atomic_read_u64(&shared->progress.retries))
        ereport(NOTICE, (errmsg("viewmig %s: %llu batches were replayed again after lock conflicts between workers",
                                task_name(shared->task), static_cast<unsigned long long>(retries))));
    if (const uint64 yields = pg_atomic_read_u64(&shared->progress.yields))
        ereport(NOTICE, (errmsg("viewmig %s: %llu of %llu batches were committed early: another worker waited for their rows",
                                task_name(shared->task), static_cast<unsigned long long>(yields),
                                static_cast<unsigned long long>(pg_atomic_read_u64(&shared->progress.batches)))));
    dsm_detach(seg);
}

// Worker side: records the current error in shared memory and in the replay's last_error.
void record_failure_unguarded(WorkerShared* shared, WorkerSlot* slot) {
    MemoryContextSwitchTo(TopMemoryContext);
    ErrorData* edata = CopyErrorData();
    slot->sqlstate = edata->sqlerrcode;
    copy_text(slot->message, sizeof slot->message, edata->message);
    copy_text(slot->detail, sizeof slot->detail, edata->detail);
    copy_text(slot->hint, sizeof slot->hint, edata->hint);
    copy_text(slot->context, sizeof slot->context, edata->context);
    EmitErrorReport();
    FlushErrorState();
    AbortOutOfAnyTransaction();
    pg_atomic_write_u32(&slot->outcome, static_cast<uint32>(WorkerOutcome::Failed));

    // Best effort: keep the error visible in viewmig.status.
    PG_TRY();
    {
        StartTransactionCommand();
        SPI_connect();
        PushActiveSnapshot(GetTransactionSnapshot());
        Oid types[2] = {TEXTOID, INT8OID};
        Datum values[2] = {CStringGetTextDatum(edata->message ? edata->message : "error"), Int64GetDatum(shared->replay_id)};
        Oid owner = InvalidOid;
        {
            int rc = SPI_execute("SELECT extowner FROM pg_extension WHERE extname = 'viewmig'", true, 1);
            bool isnull;
            if (rc == SPI_OK_SELECT && SPI_processed == 1)
                owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        }
        Oid save_user;
        int save_context;
        GetUserIdAndSecContext(&save_user, &save_context);
        if (OidIsValid(owner)) SetUserIdAndSecContext(owner, save_context | SECURITY_LOCAL_USERID_CHANGE);
        SPI_execute_with_args("UPDATE viewmig.replays SET last_error = $1, updated_at = now() WHERE id = $2", 2, types,
                              values, nullptr, false, 0);
        SetUserIdAndSecContext(save_user, save_context);
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
    }
    PG_CATCH();
    {
        EmitErrorReport();
        FlushErrorState();
        AbortOutOfAnyTransaction();
    }
    PG_END_TRY();
}

uint64_t run_task(WorkerShared& shared) {
    switch (shared.task) {
        case pg::WorkerTask::ReplayInitial: return pg::run_initial_replay_task(shared);
        case pg::WorkerTask::PrepareCompletion: return pg::run_prepare_completion_task(shared);
        case pg::WorkerTask::SchemaMigration: return pg::run_schema_migration_task(shared);
        case pg::WorkerTask::MigrateOnline: return pg::run_migrate_online_task(shared);
        case pg::WorkerTask::ReplayIncrement: return pg::run_parallel_increment_task(shared);
    }
    throw std::runtime_error("unknown worker task");
}

}  // namespace

uint64_t run_in_workers(pg::WorkerTask task, int64_t replay_id, int32_t batch_size, int nworkers,
                        const StartingProgress& progress) {
    if (nworkers < 1) throw std::invalid_argument("nworkers must be positive");
    WorkerShared input;
    memset(&input, 0, sizeof input);
    input.task = task;
    input.replay_id = replay_id;
    input.batch_size = batch_size;
    input.nworkers = nworkers;
    input.job_id = pg::current_job_id;
    input.progress_interval_ms = viewmig_progress_interval_ms;
    const std::string settings = pg::capture_settings();
    if (settings.size() >= sizeof input.settings)
        throw pg::UserError(ERRCODE_NAME_TOO_LONG, "viewmig settings are too long for a viewmig worker");
    copy_text(input.settings, sizeof input.settings, settings.c_str());
    uint64 result = 0;
    WorkerShared* input_ptr = &input;
    const StartingProgress* start = &progress;
    if (pg::pg_call([] { return RecoveryInProgress(); }))
        throw pg::UserError(ERRCODE_READ_ONLY_SQL_TRANSACTION, std::string("viewmig.") + task_name(task) +
                                                                   "() can not run while the server is in recovery")
            .hint("Run it on the primary.");
    pg::pg_call([&] {
        input_ptr->database = MyDatabaseId;
        input_ptr->role = GetUserId();
        start_and_wait_unguarded(input_ptr, start, &result);
    });
    return result;
}

}  // namespace viewmig::bgw

using namespace viewmig;

extern "C" PGDLLEXPORT void viewmig_replay_worker_main(Datum main_arg) {
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    dsm_segment* seg = dsm_attach(DatumGetUInt32(main_arg));
    if (seg == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("viewmig worker could not attach to its shared memory; the caller is gone")));
    auto* shared = static_cast<pg::WorkerShared*>(dsm_segment_address(seg));
    int index;
    memcpy(&index, MyBgworkerEntry->bgw_extra, sizeof index);
    if (index < 0 || index >= shared->nworkers) ereport(ERROR, (errmsg("viewmig worker: bad worker index %d", index)));
    pg::WorkerSlot* slot = &shared->slots[index];
    pg::current_worker_index = index;
    pg_atomic_write_u32(&slot->procno, static_cast<uint32>(MyProc->pgprocno) + 1);
    // As the bootstrap superuser, then as the caller's role (see run_as.hpp).
    BackgroundWorkerInitializeConnectionByOid(shared->database, InvalidOid, 0);
    pgstat_report_appname("viewmig worker");
    pg::apply_settings(shared->settings);  // still the bootstrap superuser: every level can be set
    // A group's rows and its checkpoint commit together, so losing the last commits in a crash
    // only means replaying those groups again: no need to wait for each WAL flush.
    SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);
    // Each group's query runs once and spends its time in handlers: JIT compilation is pure cost.
    SetConfigOption("jit", "off", PGC_USERSET, PGC_S_SESSION);
    // A database's or role's default search_path (ALTER DATABASE/ROLE ... SET) is someone else's
    // choice: the worker's own SQL resolves names in pg_catalog only; handlers get theirs
    // (projector_rights.hpp).
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);

    PG_TRY();
    {
        slot->result = pg::sql_entry([&] {
            // A schema migration runs as the role that queued it, which the task reads first.
            if (shared->task != pg::WorkerTask::SchemaMigration)
                pg::become_role(shared->role, std::string("viewmig.") + bgw::task_name(shared->task) + "()");
            return bgw::run_task(*shared);
        });
        pg_atomic_write_u32(&slot->outcome, static_cast<uint32>(pg::WorkerOutcome::Succeeded));
    }
    PG_CATCH();
    {
        bgw::record_failure_unguarded(shared, slot);
    }
    PG_END_TRY();
    dsm_detach(seg);
    proc_exit(0);
}
