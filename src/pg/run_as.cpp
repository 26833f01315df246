// Switching a worker to a job's role (see run_as.hpp).
#include "pg/run_as.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "utils/syscache.h"
}

namespace viewmig::pg {

void become_role(Oid role, const std::string& what) {
    const bool exists = pg_call([&] {
        StartTransactionCommand();
        const bool found = SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role));
        CommitTransactionCommand();
        return found;
    });
    if (!exists)
        throw UserError(ERRCODE_UNDEFINED_OBJECT, "the role (OID " + std::to_string(role) + ") that enqueued " + what +
                                                      " no longer exists")
            .hint("A job runs as the role that enqueued it. Enqueue the work again as an existing role.");
    pg_call([&] { SetUserIdAndSecContext(role, SECURITY_LOCAL_USERID_CHANGE); });
}

}  // namespace viewmig::pg
