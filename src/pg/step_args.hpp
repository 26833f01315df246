// Argument checks shared by the replay steps that take (batch_size int, workers int).
#pragma once

#include "pg/pg_headers.hpp"

#include <cstdint>

namespace viewmig::pg {

// batch_size (argument 0; NULL → viewmig.batch_size) must be positive. Throws UserError otherwise.
int32_t resolve_batch_size(FunctionCallInfo fcinfo);

// workers (argument 1; NULL → 1): at least 1, at most max_worker_processes. Throws UserError
// otherwise.
int resolve_workers(FunctionCallInfo fcinfo);

}  // namespace viewmig::pg
