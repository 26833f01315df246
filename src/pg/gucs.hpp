// viewmig's GUC variables, defined in module.cpp (see README, "GUCs").
#pragma once

extern "C" {
extern int viewmig_batch_size;            // viewmig.batch_size: events per replay group
extern int viewmig_lock_timeout_ms;       // viewmig.lock_timeout: one lock attempt of complete()
extern int viewmig_lock_max_wait_ms;      // viewmig.lock_max_wait: all lock attempts of complete()
extern int viewmig_progress_interval_ms;  // viewmig.progress_interval: NOTICE period, 0 = never
extern char* viewmig_database;            // viewmig.database: databases with a launcher (restart)
extern int viewmig_naptime_s;             // viewmig.naptime: the launcher's longest sleep (reload)
extern int viewmig_max_workers;           // viewmig.max_workers: job workers per launcher (reload)
}
