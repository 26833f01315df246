// Takes a set of table locks without becoming the long queue head that blocks every writer:
// each attempt waits at most viewmig.lock_timeout (inside a subtransaction, so a timeout undoes
// just that attempt), then backs off and retries until viewmig.lock_max_wait is spent. The locks
// are held until the end of the calling transaction.
#pragma once

#include "pg/pg_headers.hpp"

#include <vector>

extern "C" {
#include "storage/lockdefs.h"
}

namespace viewmig::pg {

struct TableLock {
    Oid table;
    LOCKMODE mode;
};

// Returns the number of attempts it took; ERROR 55P03 with a HINT when max_wait_ms is spent.
int lock_tables_briefly(const std::vector<TableLock>& locks, int lock_timeout_ms, int max_wait_ms);

struct EventStore;
// EXCLUSIVE on the event table and its partitions: inserts wait, reads go on (complete() and
// migrate_offline() take it for their last increment).
std::vector<TableLock> event_table_locks(const EventStore& es);

}  // namespace viewmig::pg
