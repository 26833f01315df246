// Things that must happen only once the current transaction has committed: waking the launcher
// for a job just enqueued (before the commit it could not see the job), and terminating a
// cancelled job's backend (before the commit the launcher would take the dead job for a crash
// and run it again). Actions of a rolled-back transaction or subtransaction are dropped.
#pragma once

#include <sys/types.h>

namespace viewmig::pg {

// At commit, sets the latch of the backend `pid` (the launcher) so it looks at the queue now.
void at_commit_wake(pid_t pid);
// At commit, sends SIGTERM to backend `pid` (a job worker), as pg_terminate_backend would.
void at_commit_terminate(pid_t pid);
// At commit, sends SIGINT to backend `pid`, as pg_cancel_backend would: its statement is cancelled.
void at_commit_cancel(pid_t pid);

}  // namespace viewmig::pg
