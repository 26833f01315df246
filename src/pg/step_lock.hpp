// One replay step at a time: every step that changes the active replay holds a transaction-level
// advisory lock. A second step fails at once, naming the backend to wait for or cancel, instead
// of queueing behind an hours-long replay_initial.
#pragma once

namespace viewmig::pg {

void lock_replay_steps(const char* step);

// Held by the worker that plans replay_initial's groups, so parallel workers plan only once.
void lock_group_planning();

}  // namespace viewmig::pg
