// The launcher: with shared_preload_libraries = 'viewmig', one background worker per database
// named in viewmig.database. It sleeps on its latch — woken when a job is enqueued, when one of
// its job workers exits, or every viewmig.naptime — and starts due jobs in dynamic "viewmig job"
// workers, at most viewmig.max_workers at a time, one per lane. It re-queues jobs whose worker
// vanished (crash, restart), and does nothing while the server is in recovery.
#pragma once

#include "pg/pg_headers.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace viewmig::bgw {

inline constexpr const char* kLauncherType = "viewmig launcher";
inline constexpr const char* kJobWorkerType = "viewmig job";
inline constexpr const char* kSchemaMigrationWorkerType = "viewmig schema migration";

// Registers the launchers; call from _PG_init while shared_preload_libraries is processed.
void register_launchers(const char* databases);

// The dynamic worker that runs job `job_id` (job_worker.cpp); it notifies this process on exit.
void fill_job_worker(BackgroundWorker* worker, int64 job_id, int32 attempt, Oid database);
// The dynamic worker that runs the next background schema migration (schema_migration_worker.cpp).
void fill_schema_migration_worker(BackgroundWorker* worker, Oid database);

}  // namespace viewmig::bgw

extern "C" PGDLLEXPORT void viewmig_launcher_main(Datum main_arg);
extern "C" PGDLLEXPORT void viewmig_job_worker_main(Datum main_arg);
extern "C" PGDLLEXPORT void viewmig_schema_migration_worker_main(Datum main_arg);
