// Deferred wake-ups and terminations (see commit_actions.hpp). The pending actions live in a
// small static array: a transaction enqueues or cancels a handful of jobs, not thousands.
#include "pg/commit_actions.hpp"

#include "pg/guard.hpp"
#include "pg/pg_headers.hpp"

extern "C" {
#include "access/xact.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/procarray.h"
}

#include <algorithm>
#include <csignal>

namespace viewmig::pg {
namespace {

enum class Action { Wake, Terminate, Cancel };

struct Pending {
    Action action;
    pid_t pid;
    int nest_level;  // subtransaction that asked for it
};

constexpr int kMaxPending = 64;
Pending pending[kMaxPending];
int npending = 0;
bool callbacks_registered = false;

void run_pending() {
    for (int i = 0; i < npending; ++i) {
        PGPROC* proc = BackendPidGetProc(pending[i].pid);
        if (proc == nullptr) continue;  // already gone
        switch (pending[i].action) {
            case Action::Wake: SetLatch(&proc->procLatch); break;
            case Action::Terminate: (void)kill(pending[i].pid, SIGTERM); break;
            case Action::Cancel: (void)kill(pending[i].pid, SIGINT); break;
        }
    }
    npending = 0;
}

void on_xact(XactEvent event, void*) {
    switch (event) {
        case XACT_EVENT_COMMIT: run_pending(); break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
        case XACT_EVENT_PREPARE: npending = 0; break;
        default: break;
    }
}

void on_subxact(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
    const int level = GetCurrentTransactionNestLevel();
    if (event == SUBXACT_EVENT_COMMIT_SUB) {
        // The parent owns them now: a later sibling's abort must not drop them.
        for (int i = 0; i < npending; ++i)
            if (pending[i].nest_level >= level) pending[i].nest_level = level - 1;
        return;
    }
    if (event != SUBXACT_EVENT_ABORT_SUB) return;
    int kept = 0;
    for (int i = 0; i < npending; ++i)
        if (pending[i].nest_level < level) pending[kept++] = pending[i];
    npending = kept;
}

void add(Action action, pid_t pid) {
    pg_call([&] {
        if (!callbacks_registered) {
            RegisterXactCallback(on_xact, nullptr);
            RegisterSubXactCallback(on_subxact, nullptr);
            callbacks_registered = true;
        }
        for (int i = 0; i < npending; ++i)
            if (pending[i].action == action && pending[i].pid == pid) {
                pending[i].nest_level = std::min(pending[i].nest_level, GetCurrentTransactionNestLevel());
                return;
            }
        if (npending == kMaxPending) elog(ERROR, "viewmig: too many job actions in one transaction (at most %d)", kMaxPending);
        pending[npending++] = Pending{action, pid, GetCurrentTransactionNestLevel()};
    });
}

}  // namespace

void at_commit_wake(pid_t pid) { add(Action::Wake, pid); }
void at_commit_terminate(pid_t pid) { add(Action::Terminate, pid); }
void at_commit_cancel(pid_t pid) { add(Action::Cancel, pid); }

}  // namespace viewmig::pg
