// The "viewmig schema migration" background worker: started by the launcher when a background
// schema migration is due, it runs one (pg/schema_migration_runner.cpp) and exits. It holds no
// transaction while the migration's statements run, so CREATE INDEX CONCURRENTLY works.
#include "bgw/launcher.hpp"

#include "pg/guard.hpp"
#include "pg/worker_tasks.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
}

#include <cstring>

extern "C" PGDLLEXPORT void viewmig_schema_migration_worker_main(Datum) {
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    Oid database;
    memcpy(&database, MyBgworkerEntry->bgw_extra, sizeof database);
    BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
    pgstat_report_appname(viewmig::bgw::kSchemaMigrationWorkerType);
    viewmig::pg::sql_entry([] { viewmig::pg::run_next_schema_migration(); });
    proc_exit(0);
}

namespace viewmig::bgw {

void fill_schema_migration_worker(BackgroundWorker* worker, Oid database) {
    memset(worker, 0, sizeof *worker);
    worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker->bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker->bgw_library_name, BGW_MAXLEN, "viewmig");
    snprintf(worker->bgw_function_name, BGW_MAXLEN, "viewmig_schema_migration_worker_main");
    snprintf(worker->bgw_type, BGW_MAXLEN, "%s", kSchemaMigrationWorkerType);
    snprintf(worker->bgw_name, BGW_MAXLEN, "viewmig schema migration worker");
    worker->bgw_notify_pid = MyProcPid;
    memcpy(worker->bgw_extra, &database, sizeof database);
}

}  // namespace viewmig::bgw
