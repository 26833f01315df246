// The "viewmig job" background worker: started by the launcher for one claimed job, connects to
// the launcher's database, runs the job as its role (pg/job_runner.cpp) and records a failure
// — or a retry — when it ends in an ERROR. SIGTERM (cancel_job, shutdown) ends it at the next
// interrupt check; its replay workers are stopped with it.
#include "bgw/dynamic_worker.hpp"
#include "bgw/launcher.hpp"

#include "pg/guard.hpp"
#include "pg/job_runner.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
}

#include <cstring>

namespace {

struct JobWorkerArgs {
    int64 job_id;
    Oid database;
    int32 attempt;  // the attempt the launcher claimed
};

// Called in PG_CATCH: copies the error, logs it, rolls back, then records it on the job.
void record_failure_unguarded(int64 job_id) {
    MemoryContextSwitchTo(TopMemoryContext);
    ErrorData* edata = CopyErrorData();
    EmitErrorReport();
    FlushErrorState();
    AbortOutOfAnyTransaction();
    PG_TRY();
    {
        viewmig::pg::sql_entry([&] {
            viewmig::pg::JobFailure f;
            f.sqlstate = unpack_sql_state(edata->sqlerrcode);
            f.message = edata->message ? edata->message : "error";
            f.detail = edata->detail ? edata->detail : "";
            f.hint = edata->hint ? edata->hint : "";
            f.context = edata->context ? edata->context : "";
            viewmig::pg::record_job_failure(job_id, f);
        });
    }
    PG_CATCH();
    {
        EmitErrorReport();
        FlushErrorState();
        AbortOutOfAnyTransaction();
    }
    PG_END_TRY();
}

}  // namespace

extern "C" PGDLLEXPORT void viewmig_job_worker_main(Datum) {
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    JobWorkerArgs args;
    memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof args);
    // As the bootstrap superuser; the job's own role is taken once the job is read (run_as.hpp).
    BackgroundWorkerInitializeConnectionByOid(args.database, InvalidOid, 0);
    pgstat_report_appname(viewmig::bgw::kJobWorkerType);
    // Never a database's default search_path (someone else's choice) while running as the
    // bootstrap superuser; the steps the job calls pin their own.
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION);
    PG_TRY();
    {
        viewmig::pg::sql_entry([&] { viewmig::pg::run_job(args.job_id, args.attempt); });
    }
    PG_CATCH();
    {
        record_failure_unguarded(args.job_id);
    }
    PG_END_TRY();
    proc_exit(0);
}

namespace viewmig::bgw {

// Used by the launcher (launcher.cpp): the worker's identity and arguments.
void fill_job_worker(BackgroundWorker* worker, int64 job_id, int32 attempt, Oid database) {
    fill_dynamic_worker(worker, "viewmig_job_worker_main", kJobWorkerType);
    snprintf(worker->bgw_name, BGW_MAXLEN, "viewmig job %lld", static_cast<long long>(job_id));
    const JobWorkerArgs args{job_id, database, attempt};
    static_assert(sizeof args <= BGW_EXTRALEN);
    memcpy(worker->bgw_extra, &args, sizeof args);
}

}  // namespace viewmig::bgw
