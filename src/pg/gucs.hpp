// viewmig's GUC variables, defined in module.cpp (see README, "GUCs").
#pragma once

#include <string>

namespace viewmig::pg {
// The current values of viewmig's settings, "name\tvalue\n" each, for a background worker to
// take over the caller's session values (apply_settings); see module.cpp.
std::string capture_settings();
void apply_settings(const char* captured);
}  // namespace viewmig::pg

extern "C" {
extern int viewmig_batch_size;            // viewmig.batch_size: events per replay group
extern int viewmig_lock_timeout_ms;       // viewmig.lock_timeout: one lock attempt of complete()
extern int viewmig_lock_max_wait_ms;      // viewmig.lock_max_wait: all lock attempts of complete()
extern int viewmig_progress_interval_ms;  // viewmig.progress_interval: NOTICE period, 0 = never
extern char* viewmig_database;            // viewmig.database: databases with a launcher (restart)
extern int viewmig_naptime_s;             // viewmig.naptime: the launcher's longest sleep (reload)
extern int viewmig_max_workers;           // viewmig.max_workers: job workers per launcher (reload)
extern int viewmig_handler_batch_size;    // viewmig.handler_batch_size: events per batch-handler call
extern int viewmig_replay_memory_kb;      // viewmig.replay_memory: the declarative engine's row cache
extern int viewmig_retry_delay_s;         // viewmig.retry_delay: first back-off of a retried job/migration
extern char* viewmig_throttle_function;   // viewmig.throttle_function: no new schema migration while it returns true
extern char* viewmig_error_handler;       // viewmig.error_handler: called with a migration row after a failure
}
