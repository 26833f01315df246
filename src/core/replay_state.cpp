// Transition rules of the replay lifecycle (see replay_state.hpp).
#include "core/replay_state.hpp"

#include <array>
#include <utility>

namespace viewmig::core {

namespace {
constexpr std::array<std::pair<ReplayState, std::string_view>, 6> kStateNames{{
    {ReplayState::Prepared, "prepared"},
    {ReplayState::ReplayingInitial, "replaying_initial"},
    {ReplayState::Replayed, "replayed"},
    {ReplayState::CompletionPrepared, "completion_prepared"},
    {ReplayState::Completed, "completed"},
    {ReplayState::Aborted, "aborted"},
}};

StepVerdict allow() { return {true, {}, {}}; }

StepVerdict refuse(std::string message, std::optional<ReplayState> state) {
    return {false, std::move(message), "call " + next_step_sql(state) + " next"};
}

std::string in_state(ReplayState s) { return " (the active replay is in state \"" + std::string(to_string(s)) + "\")"; }
}  // namespace

std::string_view to_string(ReplayState state) {
    for (const auto& [s, name] : kStateNames)
        if (s == state) return name;
    return "unknown";
}

std::string_view to_string(ReplayStep step) {
    switch (step) {
        case ReplayStep::PrepareInitial: return "prepare_initial";
        case ReplayStep::ReplayInitial: return "replay_initial";
        case ReplayStep::ReplayIncrement: return "replay_increment";
        case ReplayStep::PrepareCompletion: return "prepare_completion";
        case ReplayStep::Complete: return "complete";
        case ReplayStep::Abort: return "abort";
    }
    return "unknown";
}

std::optional<ReplayState> parse_replay_state(std::string_view text) {
    for (const auto& [s, name] : kStateNames)
        if (name == text) return s;
    return std::nullopt;
}

bool is_active(ReplayState state) { return state != ReplayState::Completed && state != ReplayState::Aborted; }

std::string next_step_sql(std::optional<ReplayState> state) {
    if (!state || !is_active(*state)) return "viewmig.prepare_initial()";
    switch (*state) {
        case ReplayState::Prepared:
        case ReplayState::ReplayingInitial: return "viewmig.replay_initial()";
        case ReplayState::Replayed: return "viewmig.replay_increment() or viewmig.prepare_completion()";
        case ReplayState::CompletionPrepared: return "viewmig.complete()";
        default: return "viewmig.prepare_initial()";
    }
}

StepVerdict check_step(ReplayStep step, std::optional<ReplayState> active) {
    using S = ReplayState;
    if (active && !is_active(*active)) active.reset();
    const std::string step_name = "viewmig." + std::string(to_string(step)) + "()";

    if (step == ReplayStep::PrepareInitial) {
        if (!active) return allow();
        return {false, "a replay is already active" + in_state(*active),
                "call viewmig.abort() to discard it, or continue with " + next_step_sql(active)};
    }
    if (!active) {
        if (step == ReplayStep::Abort) return {false, "there is no active replay to abort", "nothing to do"};
        return refuse(step_name + " needs a prepared replay, and there is none", active);
    }
    switch (step) {
        case ReplayStep::ReplayInitial:
            if (*active == S::Prepared || *active == S::ReplayingInitial) return allow();
            return refuse("the initial replay is already done" + in_state(*active), active);
        case ReplayStep::ReplayIncrement:
            if (*active == S::Replayed || *active == S::CompletionPrepared) return allow();
            return refuse("increments need a finished initial replay" + in_state(*active), active);
        case ReplayStep::PrepareCompletion:
            if (*active == S::Replayed || *active == S::CompletionPrepared) return allow();
            return refuse("prepare_completion needs a finished initial replay" + in_state(*active), active);
        case ReplayStep::Complete:
            if (*active == S::CompletionPrepared) return allow();
            return refuse("complete needs a replay whose completion is prepared" + in_state(*active), active);
        case ReplayStep::Abort: return allow();
        case ReplayStep::PrepareInitial: break;
    }
    return refuse("unexpected step", active);
}

}  // namespace viewmig::core
