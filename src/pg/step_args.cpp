// Argument checks shared by replay_initial and replay_increment (see step_args.hpp).
#include "pg/step_args.hpp"
#include "pg/gucs.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "miscadmin.h"
}

#include <string>

extern "C" {
#include "utils/errcodes.h"
}


namespace viewmig::pg {

int32_t resolve_batch_size(FunctionCallInfo fcinfo) {
    int32_t batch_size = PG_ARGISNULL(0) ? viewmig_batch_size : PG_GETARG_INT32(0);
    if (batch_size <= 0)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size must be positive, not " + std::to_string(batch_size))
            .hint("Pass NULL to use viewmig.batch_size (" + std::to_string(viewmig_batch_size) + ").");
    return batch_size;
}

int resolve_workers(FunctionCallInfo fcinfo) {
    if (PG_ARGISNULL(1)) return 1;
    const int workers = PG_GETARG_INT32(1);
    if (workers < 1)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "workers must be at least 1, not " + std::to_string(workers));
    if (workers > max_worker_processes)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "workers => " + std::to_string(workers) +
                                                             " is more than max_worker_processes")
            .detail("max_worker_processes is " + std::to_string(max_worker_processes) + ".")
            .hint("Use fewer workers, or raise max_worker_processes (needs a restart).");
    return workers;
}

}  // namespace viewmig::pg
