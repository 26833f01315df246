// Argument checks shared by replay_initial and replay_increment (see step_args.hpp).
#include "pg/step_args.hpp"
#include "pg/gucs.hpp"

#include "pg/guard.hpp"

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
    if (!PG_ARGISNULL(1) && PG_GETARG_INT32(1) != 1)
        throw UserError(ERRCODE_FEATURE_NOT_SUPPORTED, "workers => " + std::to_string(PG_GETARG_INT32(1)) + " is not supported yet")
            .detail("This version replays with one background worker.")
            .hint("Pass workers => 1 or NULL.");
    return batch_size;
}

}  // namespace viewmig::pg
