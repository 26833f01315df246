// The launcher's registration and loop (see launcher.hpp). Its shape follows pg_cron's launcher
// and PostgreSQL's worker_spi: one WaitLatch loop, SIGHUP reloads the configuration, SIGTERM
// ends it, every round is one short transaction, and an ERROR in a round is logged and the loop
// goes on. The queue logic itself is SQL (viewmig.launcher_* functions): claiming relies on the
// jobs table's unique indexes, so a second launcher or a DBA can never start a lane twice.
#include "bgw/launcher.hpp"

#include "pg/gucs.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"
}

#include <algorithm>
#include <cstring>

namespace viewmig::bgw {
namespace {

constexpr int kMaxTracked = 64;  // viewmig.max_workers' upper bound

// The job workers this launcher started and has not yet seen exit. Plain data: the loop runs
// under PG_TRY.
struct Tracked {
    int64 job_id;
    BackgroundWorkerHandle* handle;
};
Tracked tracked[kMaxTracked];
int ntracked = 0;
char database_name[BGW_EXTRALEN];  // for log lines, which are written outside transactions

// The catalog version this library was built for (viewmig.control's default_version, from the
// Makefile). After new binaries are installed and the server restarted, the database keeps the old
// catalog until ALTER EXTENSION viewmig UPDATE: until then the launcher starts nothing, so no job
// runs this library's code on a catalog it was not written for.
#ifndef VIEWMIG_VERSION
#error "VIEWMIG_VERSION (viewmig.control's default_version) must be defined by the build"
#endif
char installed_version[NAMEDATALEN];  // the catalog's version when it is not VIEWMIG_VERSION

struct Claimed {
    int64 job_id;
    int32 attempt;
};

void forget_exited_workers() {
    int kept = 0;
    for (int i = 0; i < ntracked; ++i) {
        pid_t pid;
        if (GetBackgroundWorkerPid(tracked[i].handle, &pid) == BGWH_STOPPED)
            pfree(tracked[i].handle);
        else
            tracked[kept++] = tracked[i];
    }
    ntracked = kept;
}

Datum tracked_ids_array() {
    Datum* ids = static_cast<Datum*>(palloc(sizeof(Datum) * (ntracked + 1)));
    for (int i = 0; i < ntracked; ++i) ids[i] = Int64GetDatum(tracked[i].job_id);
    return PointerGetDatum(construct_array(ids, ntracked, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

// One round in one transaction: re-queue orphans, claim what may start now. Returns how many
// jobs were claimed (in `claimed`) and sets `next_due_ms` to the wait until the next queued job
// is due (-1 when none is queued).
int claim_round(Claimed* claimed, int capacity, long* next_due_ms, bool* extension_missing, bool* catalog_outdated,
                bool* migration_due) {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    int n = 0;
    *next_due_ms = -1;
    *migration_due = false;
    *extension_missing = !OidIsValid(get_extension_oid("viewmig", true));
    *catalog_outdated = false;
    if (!*extension_missing) {
        SPI_connect();
        SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'viewmig'", true, 1);
        const char* version = SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : nullptr;
        if (version && strcmp(version, VIEWMIG_VERSION) != 0) {
            *catalog_outdated = true;
            strlcpy(installed_version, version, sizeof(installed_version));
            capacity = 0;
        }
    }
    if (!*extension_missing && !*catalog_outdated) {
        pgstat_report_activity(STATE_RUNNING, "viewmig launcher: looking at the queue");
        Oid type = INT8ARRAYOID;
        Datum ids = tracked_ids_array();
        SPI_execute_with_args("SELECT viewmig.launcher_requeue_orphans($1)", 1, &type, &ids, nullptr, false, 0);
        if (capacity > 0) {
            Oid itype = INT4OID;
            Datum how_many = Int32GetDatum(capacity);
            SPI_execute_with_args("SELECT job_id, attempt FROM viewmig.launcher_claim_jobs($1)", 1, &itype, &how_many, nullptr,
                                  false, 0);
            for (uint64 i = 0; i < SPI_processed && n < capacity; ++i) {
                bool isnull;
                claimed[n].job_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
                claimed[n].attempt = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
                ++n;
            }
        }
        // Background schema migrations: workers that vanished, delayed rows now due.
        SPI_execute("SELECT viewmig.schema_migrations_housekeeping()", false, 0);
        SPI_execute("SELECT viewmig.next_runnable_schema_migration() IS NOT NULL", true, 1);
        bool isnull;
        *migration_due = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        // While the throttle function says so, start no worker at all (one that only looked and
        // exited would wake us at once, round after round); the migration waits, 'throttled'.
        if (*migration_due) {
            Oid ttype = TEXTOID;
            Datum fn = CStringGetTextDatum(viewmig_throttle_function ? viewmig_throttle_function : "");
            SPI_execute_with_args("SELECT viewmig.schema_migrations_throttled($1)", 1, &ttype, &fn, nullptr, false, 1);
            *migration_due = !DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
        }
        SPI_execute("SELECT (extract(epoch FROM least(viewmig.launcher_next_due(), (SELECT min(run_after) FROM "
                    "viewmig.background_schema_migrations WHERE status IN ('enqueued', 'errored', 'delayed') "
                    "AND run_after > now())) - clock_timestamp()) * 1000)::bigint", true, 1);
        const Datum due = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        if (!isnull) *next_due_ms = std::max<int64>(DatumGetInt64(due), 0);
        SPI_finish();
    }
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    return n;
}

void unclaim(int64 job_id, const char* reason) {
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    SPI_connect();
    Oid types[2] = {INT8OID, TEXTOID};
    Datum values[2] = {Int64GetDatum(job_id), CStringGetTextDatum(reason)};
    SPI_execute_with_args("SELECT viewmig.launcher_unclaim_job($1, $2)", 2, types, values, nullptr, false, 0);
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
}

// At most one per round: it chooses its migration itself; the next round starts another if one
// is still due (on another table).
void start_schema_migration_worker() {
    BackgroundWorker worker;
    fill_schema_migration_worker(&worker, MyDatabaseId);
    BackgroundWorkerHandle* handle = nullptr;
    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    const bool started = RegisterDynamicBackgroundWorker(&worker, &handle);
    MemoryContextSwitchTo(old);
    if (started)
        tracked[ntracked++] = Tracked{0, handle};
    else
        ereport(WARNING, (errmsg("viewmig launcher: could not start a schema migration worker: no free background worker slot"),
                          errhint("Raise max_worker_processes (needs a restart) or lower viewmig.max_workers.")));
}

void start_job_workers(const Claimed* claimed, int n) {
    for (int i = 0; i < n; ++i) {
        BackgroundWorker worker;
        fill_job_worker(&worker, claimed[i].job_id, claimed[i].attempt, MyDatabaseId);
        BackgroundWorkerHandle* handle = nullptr;
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        const bool started = RegisterDynamicBackgroundWorker(&worker, &handle);
        MemoryContextSwitchTo(old);
        if (started) {
            tracked[ntracked++] = Tracked{claimed[i].job_id, handle};
            continue;
        }
        ereport(WARNING, (errmsg("viewmig launcher: could not start a worker for job %lld: no free background worker slot",
                                 static_cast<long long>(claimed[i].job_id)),
                          errhint("Raise max_worker_processes (needs a restart) or lower viewmig.max_workers.")));
        unclaim(claimed[i].job_id, "no free background worker slot (max_worker_processes); waiting for one");
    }
}

// One round: returns how long to sleep before the next one, in ms.
long launcher_round() {
    static bool said_recovery = false, said_missing = false, said_outdated = false;
    const long naptime_ms = 1000L * viewmig_naptime_s;
    if (RecoveryInProgress()) {
        if (!said_recovery)
            ereport(LOG, (errmsg("viewmig launcher for database \"%s\": the server is in recovery; no jobs run until it is promoted",
                                 database_name)));
        said_recovery = true;
        return naptime_ms;
    }
    if (said_recovery) {
        ereport(LOG, (errmsg("viewmig launcher for database \"%s\": recovery ended; running jobs", database_name)));
        said_recovery = false;
    }
    forget_exited_workers();
    Claimed claimed[kMaxTracked];
    long next_due_ms;
    bool missing, outdated, migration_due;
    const int capacity = std::max(0, std::min(viewmig_max_workers, kMaxTracked) - ntracked);
    const int n = claim_round(claimed, capacity, &next_due_ms, &missing, &outdated, &migration_due);
    if (outdated && !said_outdated)
        ereport(LOG, (errmsg("viewmig launcher: extension viewmig in database \"%s\" is at version %s, this library needs %s; "
                             "no jobs or schema migrations start until it is updated",
                             database_name, installed_version, VIEWMIG_VERSION),
                      errhint("Run ALTER EXTENSION viewmig UPDATE in database \"%s\".", database_name)));
    said_outdated = outdated;
    if (missing && !said_missing)
        ereport(LOG, (errmsg("viewmig launcher: extension viewmig is not installed in database \"%s\"; waiting for CREATE EXTENSION",
                             database_name)));
    said_missing = missing;
    start_job_workers(claimed, n);
    if (migration_due && ntracked < std::min(viewmig_max_workers, kMaxTracked)) start_schema_migration_worker();
    if (next_due_ms < 0 || ntracked >= viewmig_max_workers) return naptime_ms;
    return std::clamp(next_due_ms, 100L, naptime_ms);
}

}  // namespace

void register_launchers(const char* databases) {
    char* list = pstrdup(databases);
    List* names = nullptr;
    if (!SplitIdentifierString(list, ',', &names))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("viewmig.database is not a valid list of database names"),
                        errhint("Use a comma-separated list, e.g. viewmig.database = 'app, reporting'.")));
    ListCell* lc;
    foreach (lc, names) {
        const char* db = static_cast<const char*>(lfirst(lc));
        if (strlen(db) >= BGW_EXTRALEN)
            ereport(ERROR, (errcode(ERRCODE_NAME_TOO_LONG), errmsg("viewmig.database: database name \"%s\" is too long", db)));
        bool seen = false;
        for (ListCell* prev = list_head(names); prev != lc; prev = lnext(names, prev))
            seen = seen || strcmp(static_cast<const char*>(lfirst(prev)), db) == 0;
        if (seen) continue;
        BackgroundWorker worker;
        memset(&worker, 0, sizeof worker);
        worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
        // Started on a hot standby too, where it only waits for promotion (and says so).
        worker.bgw_start_time = BgWorkerStart_ConsistentState;
        worker.bgw_restart_time = 10;
        snprintf(worker.bgw_library_name, BGW_MAXLEN, "viewmig");
        snprintf(worker.bgw_function_name, BGW_MAXLEN, "viewmig_launcher_main");
        snprintf(worker.bgw_type, BGW_MAXLEN, "%s", kLauncherType);
        snprintf(worker.bgw_name, BGW_MAXLEN, "viewmig launcher for database %s", db);
        strlcpy(worker.bgw_extra, db, BGW_EXTRALEN);
        RegisterBackgroundWorker(&worker);
    }
}

}  // namespace viewmig::bgw

using namespace viewmig::bgw;

extern "C" PGDLLEXPORT void viewmig_launcher_main(Datum) {
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
    BackgroundWorkerUnblockSignals();
    char* database = viewmig::bgw::database_name;
    strlcpy(database, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);
    BackgroundWorkerInitializeConnection(database, nullptr, 0);
    pgstat_report_appname(kLauncherType);
    // Its queries run as the bootstrap superuser: never through a database's default search_path.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
    ereport(LOG, (errmsg("viewmig launcher started for database \"%s\"", database)));

    for (;;) {
        long sleep_ms = 1000L * viewmig_naptime_s;
        PG_TRY();
        {
            sleep_ms = launcher_round();
        }
        PG_CATCH();
        {
            EmitErrorReport();
            FlushErrorState();
            AbortOutOfAnyTransaction();
            pgstat_report_activity(STATE_IDLE, nullptr);
        }
        PG_END_TRY();

        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sleep_ms, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ShutdownRequestPending) break;
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
    }
    ereport(LOG, (errmsg("viewmig launcher for database \"%s\" stopping", database)));
    // Exit code 1: the postmaster starts the launcher again after bgw_restart_time, unless the
    // server itself is shutting down.
    proc_exit(1);
}
