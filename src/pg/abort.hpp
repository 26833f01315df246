// Ending a replay: viewmig.abort(), and a replay pipeline job that fails for good (job_runner.cpp)
// ending the replay it prepared so that it blocks no one.
#pragma once

#include "pg/catalog.hpp"

namespace viewmig::pg {

// ERROR unless the current user may end `replay` (see abort.cpp): a role with the privileges of
// the role that prepared it, or with the owner's rights on every managed table that still exists.
void require_abort_rights(const Replay& replay);

// Drops the replay schema (only if viewmig created it) and the replay's groups, and marks it
// aborted. The caller holds the step lock and the replay row's lock and has checked the rights.
void abort_replay(const Replay& replay);

}  // namespace viewmig::pg
