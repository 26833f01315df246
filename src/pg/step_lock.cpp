// Advisory lock serialising replay steps (see step_lock.hpp).
#include "pg/step_lock.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {

namespace {
// Arbitrary, fixed keys (first key 30317, "vm"): (30317, 1) the steps, (30317, 2) group planning,
// (30317, 3) choosing a schema migration (schema_migration_runner.cpp). Held by a worker for its
// whole life: (30318, job id) a job worker, (30319, migration id) a schema migration's worker —
// the SQL housekeeping reads these in pg_locks to tell live work from work whose worker died.
constexpr const char* kKeys = "30317, 1";
constexpr const char* kPlanningKeys = "30317, 2";
}  // namespace

void lock_replay_steps(const char* step) {
    if (to_bool(spi_value(std::string("SELECT pg_try_advisory_xact_lock(") + kKeys + ")"))) return;
    auto holder = spi_value(
        "SELECT string_agg(l.pid::text, ', ') FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid = 30317 AND l.objid = 1 AND l.objsubid = 2");
    throw UserError(ERRCODE_LOCK_NOT_AVAILABLE, std::string("cannot run viewmig.") + step +
                                                    "(): another viewmig step is running in backend " + holder.value_or("?"))
        .hint("Wait for it to finish, or stop it with SELECT pg_cancel_backend(" + holder.value_or("pid") +
              "); work it committed is kept.");
}

void lock_group_planning() { spi_run(std::string("SELECT pg_advisory_xact_lock(") + kPlanningKeys + ")"); }

}  // namespace viewmig::pg
