// The replay lifecycle as a state machine: which step may run in which state, what state it
// leads to, and — when a step is refused — the message and the HINT naming the step to call.
// Pure C++ so every transition is unit-tested without a server.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace viewmig::core {

enum class ReplayState { Prepared, ReplayingInitial, Replayed, CompletionPrepared, Completed, Aborted };
enum class ReplayStep { PrepareInitial, ReplayInitial, ReplayIncrement, PrepareCompletion, Complete, Abort };

std::string_view to_string(ReplayState state);
std::string_view to_string(ReplayStep step);
std::optional<ReplayState> parse_replay_state(std::string_view text);

// A replay in Completed or Aborted state is history; any other state is the active replay.
bool is_active(ReplayState state);

struct StepVerdict {
    bool allowed = false;
    std::string message;  // why the step is refused (empty when allowed)
    std::string hint;     // what the DBA should call instead
};

// `active` is the state of the active replay, or nullopt when there is none.
StepVerdict check_step(ReplayStep step, std::optional<ReplayState> active);

// The step a DBA would normally call next from `state`, as SQL ("viewmig.replay_initial()").
std::string next_step_sql(std::optional<ReplayState> state);

}  // namespace viewmig::core
