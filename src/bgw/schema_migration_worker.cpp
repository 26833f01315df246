// The "viewmig schema migration" background worker: started by the launcher when a background
// schema migration is due, it runs one (pg/schema_migration_runner.cpp) and exits. It holds no
// transaction while the migration's statements run, so CREATE INDEX CONCURRENTLY works.
#include "bgw/dynamic_worker.hpp"
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
    fill_dynamic_worker(worker, "viewmig_schema_migration_worker_main", kSchemaMigrationWorkerType);
    snprintf(worker->bgw_name, BGW_MAXLEN, "viewmig schema migration worker");
    memcpy(worker->bgw_extra, &database, sizeof database);
}

}  // namespace viewmig::bgw
