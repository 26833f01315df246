// What every viewmig dynamic background worker shares (replay, job and schema-migration
// workers): connected to a database, started only outside recovery, never restarted by the
// postmaster, and notifying the process that starts it when it starts and stops.
#pragma once

#include "pg/pg_headers.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

namespace viewmig::bgw {

// Clears `worker` and fills the common fields; `function` is the entry point in viewmig.so,
// `type` what pg_stat_activity.backend_type shows. The caller sets bgw_name and the arguments.
void fill_dynamic_worker(BackgroundWorker* worker, const char* function, const char* type);

}  // namespace viewmig::bgw
