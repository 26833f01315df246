// Argument checks shared by the replay steps that take (batch_size int, workers int).
#pragma once

#include "pg/pg_headers.hpp"

#include <cstdint>

namespace viewmig::pg {

// batch_size (argument 0; NULL → viewmig.batch_size) must be positive; workers (argument 1)
// must be NULL or 1 in this version. Throws UserError otherwise.
int32_t resolve_batch_size(FunctionCallInfo fcinfo);

}  // namespace viewmig::pg
