// Short-timeout lock acquisition with back-off (see brief_lock.hpp).
#include "pg/brief_lock.hpp"

#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

#include <algorithm>
#include <string>

namespace viewmig::pg {
namespace {

// One attempt; true when every lock was granted. Plain C inside the PG_TRY.
bool try_lock_all(const TableLock* locks, int n) {
    MemoryContext old_cxt = CurrentMemoryContext;
    ResourceOwner old_owner = CurrentResourceOwner;
    bool granted = false;
    BeginInternalSubTransaction(nullptr);
    MemoryContextSwitchTo(old_cxt);
    PG_TRY();
    {
        for (int i = 0; i < n; ++i) LockRelationOid(locks[i].table, locks[i].mode);
        ReleaseCurrentSubTransaction();  // the locks move to the parent transaction
        granted = true;
    }
    PG_CATCH();
    {
        MemoryContextSwitchTo(old_cxt);
        ErrorData* edata = CopyErrorData();
        FlushErrorState();
        RollbackAndReleaseCurrentSubTransaction();
        if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE) ReThrowError(edata);
        FreeErrorData(edata);
    }
    PG_END_TRY();
    MemoryContextSwitchTo(old_cxt);
    CurrentResourceOwner = old_owner;
    return granted;
}

int lock_with_retries_unguarded(const TableLock* locks, int n, int lock_timeout_ms, int max_wait_ms) {
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%d", std::max(lock_timeout_ms, 1));
    const int guc_level = NewGUCNestLevel();
    set_config_option("lock_timeout", timeout, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

    const TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), max_wait_ms);
    long backoff_ms = std::max(lock_timeout_ms, 10);
    int attempts = 0;
    for (;;) {
        ++attempts;
        if (try_lock_all(locks, n)) break;
        const TimestampTz now = GetCurrentTimestamp();
        if (now >= deadline)
            ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
                            errmsg("viewmig could not take its locks within viewmig.lock_max_wait (%d ms)", max_wait_ms),
                            errdetail("%d attempts of viewmig.lock_timeout (%d ms) each met a conflicting lock.", attempts,
                                      lock_timeout_ms),
                            errhint("Nothing was changed. Find the blocking sessions with pg_blocking_pids(), or raise "
                                    "viewmig.lock_max_wait, and call again.")));
        const long wait = std::min<long>(backoff_ms, TimestampDifferenceMilliseconds(now, deadline));
        ereport(NOTICE, (errmsg("viewmig: lock not available (attempt %d), retrying in %ld ms", attempts, wait)));
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, wait, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        backoff_ms = std::min<long>(backoff_ms * 2, 1000);
    }
    AtEOXact_GUC(true, guc_level);
    return attempts;
}

}  // namespace

int lock_tables_briefly(const std::vector<TableLock>& locks, int lock_timeout_ms, int max_wait_ms) {
    const TableLock* data = locks.data();
    const int n = static_cast<int>(locks.size());
    return pg_call([&] { return lock_with_retries_unguarded(data, n, lock_timeout_ms, max_wait_ms); });
}

std::vector<TableLock> event_table_locks(const EventStore& es) {
    std::vector<TableLock> locks{{es.events, ExclusiveLock}};  // blocks inserts, not reads
    // A partitioned event table: its partitions too, for inserts that name a partition directly.
    QueryResult partitions = spi_run("SELECT relid::oid FROM pg_partition_tree($1::oid::regclass) WHERE relid <> $1::oid::regclass",
                                     {oid_param(es.events)});
    for (const Row& r : partitions.rows) locks.push_back({static_cast<Oid>(std::stoul(*r[0])), ExclusiveLock});
    return locks;
}

}  // namespace viewmig::pg
