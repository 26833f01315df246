// Module entry: viewmig's GUCs. Loading the library (at first use, or via
// shared_preload_libraries) defines them; values set before loading are picked up.
#include "pg/gucs.hpp"
#include "pg/pg_headers.hpp"

#include <climits>

extern "C" {
#include "utils/guc.h"
}

extern "C" {
PG_MODULE_MAGIC;

int viewmig_batch_size = 10000;
int viewmig_lock_timeout_ms = 100;
int viewmig_lock_max_wait_ms = 60000;
int viewmig_progress_interval_ms = 5000;

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
    MarkGUCPrefixReserved("viewmig");
}
}
