// Module entry: viewmig's GUCs, and — when loaded by shared_preload_libraries — the launchers.
// Loading the library (at first use, or via shared_preload_libraries) defines the GUCs; values
// set before loading are picked up.
#include "bgw/launcher.hpp"
#include "pg/gucs.hpp"
#include "pg/pg_headers.hpp"

#include <climits>

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"
}

extern "C" {
PG_MODULE_MAGIC;

int viewmig_batch_size = 10000;
int viewmig_lock_timeout_ms = 100;
int viewmig_lock_max_wait_ms = 60000;
int viewmig_progress_interval_ms = 5000;
char* viewmig_database = nullptr;
int viewmig_naptime_s = 10;
int viewmig_max_workers = 2;

PGDLLEXPORT void _PG_init(void);
void _PG_init(void) {
    DefineCustomIntVariable("viewmig.batch_size", "About how many events one replay transaction (group) holds.", nullptr,
                            &viewmig_batch_size, 10000, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.lock_timeout", "How long one attempt of complete() waits for its locks.", nullptr,
                            &viewmig_lock_timeout_ms, 100, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.lock_max_wait", "How long complete() keeps retrying to take its locks.", nullptr,
                            &viewmig_lock_max_wait_ms, 60000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.progress_interval", "How often long viewmig calls report progress as NOTICE (0: never).",
                            nullptr, &viewmig_progress_interval_ms, 5000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr,
                            nullptr, nullptr);
    DefineCustomStringVariable("viewmig.database", "Databases whose queued viewmig jobs a launcher runs (comma-separated).",
                               "Needs viewmig in shared_preload_libraries; read at server start only.", &viewmig_database,
                               // Not PGC_POSTMASTER: that would make loading the library on first use (no preload) FATAL.
                               "postgres", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.naptime", "How long the viewmig launcher sleeps when nothing wakes it.", nullptr,
                            &viewmig_naptime_s, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.max_workers", "How many viewmig jobs one launcher runs at a time.", nullptr,
                            &viewmig_max_workers, 2, 1, 64, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("viewmig");
    if (process_shared_preload_libraries_in_progress) viewmig::bgw::register_launchers(viewmig_database);
}
}
