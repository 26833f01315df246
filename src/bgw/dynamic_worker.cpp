// The common fields of viewmig's dynamic background workers (see dynamic_worker.hpp).
#include "bgw/dynamic_worker.hpp"

extern "C" {
#include "miscadmin.h"
}

#include <cstring>

namespace viewmig::bgw {

void fill_dynamic_worker(BackgroundWorker* worker, const char* function, const char* type) {
    memset(worker, 0, sizeof *worker);
    worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker->bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker->bgw_library_name, BGW_MAXLEN, "viewmig");
    snprintf(worker->bgw_function_name, BGW_MAXLEN, "%s", function);
    snprintf(worker->bgw_type, BGW_MAXLEN, "%s", type);
    worker->bgw_notify_pid = MyProcPid;
}

}  // namespace viewmig::bgw
