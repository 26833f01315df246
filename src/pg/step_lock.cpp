// Advisory lock serialising replay steps (see step_lock.hpp).
#include "pg/step_lock.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {

namespace {
// Arbitrary, fixed keys: ("vm", 1) for the steps, ("vm", 2) for group planning.
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
