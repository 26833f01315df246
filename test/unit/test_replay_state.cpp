// The replay lifecycle rules (src/core/replay_state.hpp): which step may run in which state, and
// what a refused step tells the DBA.
#include "core/replay_state.hpp"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace viewmig::core {
namespace {

using S = ReplayState;
using Step = ReplayStep;
using MaybeState = std::optional<ReplayState>;

constexpr std::array<ReplayState, 6> kAllStates{S::Prepared,           S::ReplayingInitial, S::Replayed,
                                                S::CompletionPrepared, S::Completed,        S::Aborted};
constexpr std::array<ReplayStep, 6> kAllSteps{Step::PrepareInitial,    Step::ReplayInitial, Step::ReplayIncrement,
                                              Step::PrepareCompletion, Step::Complete,      Step::Abort};

// "No active replay" plus every state.
std::vector<MaybeState> all_situations() {
    std::vector<MaybeState> v{std::nullopt};
    for (S s : kAllStates) v.emplace_back(s);
    return v;
}

std::string describe(Step step, MaybeState state) {
    return std::string(to_string(step)) + " in " + (state ? std::string(to_string(*state)) : std::string("<no replay>"));
}

std::string sql(Step step) { return "viewmig." + std::string(to_string(step)) + "()"; }

// The lifecycle table, written out once: the states (of the active replay) in which each step may
// run. nullopt stands for "no active replay".
const std::map<Step, std::set<MaybeState>>& allowed_table() {
    static const std::map<Step, std::set<MaybeState>> table{
        {Step::PrepareInitial, {std::nullopt, S::Completed, S::Aborted}},
        {Step::ReplayInitial, {S::Prepared, S::ReplayingInitial}},
        {Step::ReplayIncrement, {S::Replayed, S::CompletionPrepared}},
        {Step::PrepareCompletion, {S::Replayed, S::CompletionPrepared}},
        {Step::Complete, {S::CompletionPrepared}},
        {Step::Abort, {S::Prepared, S::ReplayingInitial, S::Replayed, S::CompletionPrepared}},
    };
    return table;
}

// The functions the HINT must name when a step is refused in `state`.
std::vector<std::string> expected_next_steps(MaybeState state) {
    if (!state || *state == S::Completed || *state == S::Aborted) return {"viewmig.prepare_initial()"};
    switch (*state) {
        case S::Prepared:
        case S::ReplayingInitial: return {"viewmig.replay_initial()"};
        case S::Replayed: return {"viewmig.replay_increment()", "viewmig.prepare_completion()"};
        case S::CompletionPrepared: return {"viewmig.complete()"};
        default: return {};
    }
}

// ---- names ------------------------------------------------------------------------------------

TEST(ReplayStateNames, EveryStateRoundTripsThroughItsCatalogName) {
    for (S s : kAllStates) {
        const std::string_view name = to_string(s);
        EXPECT_NE(name, "unknown");
        ASSERT_TRUE(parse_replay_state(name).has_value()) << name;
        EXPECT_EQ(*parse_replay_state(name), s) << name;
    }
}

TEST(ReplayStateNames, CatalogNamesAreTheDocumentedLowercaseWords) {
    EXPECT_EQ(to_string(S::Prepared), "prepared");
    EXPECT_EQ(to_string(S::ReplayingInitial), "replaying_initial");
    EXPECT_EQ(to_string(S::Replayed), "replayed");
    EXPECT_EQ(to_string(S::CompletionPrepared), "completion_prepared");
    EXPECT_EQ(to_string(S::Completed), "completed");
    EXPECT_EQ(to_string(S::Aborted), "aborted");
}

TEST(ReplayStateNames, StateNamesAreDistinct) {
    std::set<std::string_view> names;
    for (S s : kAllStates) names.insert(to_string(s));
    EXPECT_EQ(names.size(), kAllStates.size());
}

TEST(ReplayStateNames, ParsingIsExactSoUnknownMiscasedOrPaddedTextIsRejected) {
    EXPECT_FALSE(parse_replay_state("").has_value());
    EXPECT_FALSE(parse_replay_state("unknown").has_value());
    EXPECT_FALSE(parse_replay_state("Prepared").has_value());
    EXPECT_FALSE(parse_replay_state("PREPARED").has_value());
    EXPECT_FALSE(parse_replay_state(" prepared").has_value());
    EXPECT_FALSE(parse_replay_state("prepared ").has_value());
    EXPECT_FALSE(parse_replay_state("replaying").has_value());
    EXPECT_FALSE(parse_replay_state("replay_initial").has_value());  // a step name, not a state
}

TEST(ReplayStateNames, StepNamesAreTheSqlFunctionNames) {
    EXPECT_EQ(to_string(Step::PrepareInitial), "prepare_initial");
    EXPECT_EQ(to_string(Step::ReplayInitial), "replay_initial");
    EXPECT_EQ(to_string(Step::ReplayIncrement), "replay_increment");
    EXPECT_EQ(to_string(Step::PrepareCompletion), "prepare_completion");
    EXPECT_EQ(to_string(Step::Complete), "complete");
    EXPECT_EQ(to_string(Step::Abort), "abort");
}

// ---- activity ---------------------------------------------------------------------------------

TEST(ReplayStateActivity, CompletedAndAbortedAreHistoryEveryOtherStateIsActive) {
    EXPECT_TRUE(is_active(S::Prepared));
    EXPECT_TRUE(is_active(S::ReplayingInitial));
    EXPECT_TRUE(is_active(S::Replayed));
    EXPECT_TRUE(is_active(S::CompletionPrepared));
    EXPECT_FALSE(is_active(S::Completed));
    EXPECT_FALSE(is_active(S::Aborted));
}

TEST(ReplayStateActivity, CompletedOrAbortedReplayIsTreatedExactlyLikeNoReplay) {
    for (Step step : kAllSteps) {
        const StepVerdict none = check_step(step, std::nullopt);
        for (S history : {S::Completed, S::Aborted}) {
            const StepVerdict v = check_step(step, history);
            EXPECT_EQ(v.allowed, none.allowed) << describe(step, history);
            EXPECT_EQ(v.message, none.message) << describe(step, history);
            EXPECT_EQ(v.hint, none.hint) << describe(step, history);
        }
    }
    EXPECT_EQ(next_step_sql(S::Completed), next_step_sql(std::nullopt));
    EXPECT_EQ(next_step_sql(S::Aborted), next_step_sql(std::nullopt));
}

// ---- transitions ------------------------------------------------------------------------------

TEST(ReplayStepCheck, EveryStepIsAllowedInExactlyTheStatesOfTheLifecycleTable) {
    for (Step step : kAllSteps) {
        const auto& allowed_in = allowed_table().at(step);
        for (MaybeState state : all_situations()) {
            const StepVerdict v = check_step(step, state);
            EXPECT_EQ(v.allowed, allowed_in.count(state) == 1) << describe(step, state) << ": " << v.message;
        }
    }
}

TEST(ReplayStepCheck, AnAllowedStepCarriesNoMessageAndNoHint) {
    for (Step step : kAllSteps)
        for (MaybeState state : all_situations()) {
            const StepVerdict v = check_step(step, state);
            if (!v.allowed) continue;
            EXPECT_TRUE(v.message.empty()) << describe(step, state);
            EXPECT_TRUE(v.hint.empty()) << describe(step, state);
        }
}

TEST(ReplayStepCheck, ARefusedStepAlwaysExplainsWhyAndHints) {
    for (Step step : kAllSteps)
        for (MaybeState state : all_situations()) {
            const StepVerdict v = check_step(step, state);
            if (v.allowed) continue;
            EXPECT_FALSE(v.message.empty()) << describe(step, state);
            EXPECT_FALSE(v.hint.empty()) << describe(step, state);
        }
}

TEST(ReplayStepCheck, ARefusedStepsHintNamesTheStepToCallNext) {
    for (Step step : kAllSteps) {
        if (step == Step::Abort) continue;  // aborting nothing has nothing to call instead (below)
        for (MaybeState state : all_situations()) {
            const StepVerdict v = check_step(step, state);
            if (v.allowed) continue;
            for (const std::string& next : expected_next_steps(state))
                EXPECT_NE(v.hint.find(next), std::string::npos)
                    << describe(step, state) << ": hint \"" << v.hint << "\" should name " << next;
        }
    }
}

TEST(ReplayStepCheck, ARefusedStepsHintNeverSuggestsTheRefusedStepItself) {
    for (Step step : kAllSteps)
        for (MaybeState state : all_situations()) {
            const StepVerdict v = check_step(step, state);
            if (v.allowed) continue;
            EXPECT_EQ(v.hint.find(sql(step)), std::string::npos) << describe(step, state) << ": hint \"" << v.hint << "\"";
        }
}

TEST(ReplayStepCheck, ARefusalWhileAReplayIsActiveNamesItsStateInTheMessage) {
    for (Step step : kAllSteps)
        for (S state : kAllStates) {
            if (!is_active(state)) continue;
            const StepVerdict v = check_step(step, state);
            if (v.allowed) continue;
            const std::string quoted = "\"" + std::string(to_string(state)) + "\"";
            EXPECT_NE(v.message.find(quoted), std::string::npos) << describe(step, state) << ": " << v.message;
        }
}

TEST(ReplayStepCheck, EveryStepButPrepareInitialAndAbortNeedsAPreparedReplayAndSaysSo) {
    for (Step step : {Step::ReplayInitial, Step::ReplayIncrement, Step::PrepareCompletion, Step::Complete}) {
        const StepVerdict v = check_step(step, std::nullopt);
        EXPECT_FALSE(v.allowed) << to_string(step);
        EXPECT_NE(v.message.find(sql(step)), std::string::npos) << v.message;
        EXPECT_NE(v.message.find("there is none"), std::string::npos) << v.message;
        EXPECT_EQ(v.hint, "call viewmig.prepare_initial() next");
    }
}

TEST(ReplayStepCheck, PrepareInitialWhileAReplayIsActiveHintsAbortOrTheNextStep) {
    for (S state : kAllStates) {
        if (!is_active(state)) continue;
        const StepVerdict v = check_step(Step::PrepareInitial, state);
        EXPECT_FALSE(v.allowed);
        EXPECT_NE(v.message.find("already active"), std::string::npos) << v.message;
        EXPECT_NE(v.hint.find("viewmig.abort()"), std::string::npos) << v.hint;
        EXPECT_NE(v.hint.find(next_step_sql(state)), std::string::npos) << v.hint;
    }
}

TEST(ReplayStepCheck, AbortWithoutAnActiveReplayIsRefusedWithNothingToDo) {
    for (MaybeState state : {MaybeState{}, MaybeState{S::Completed}, MaybeState{S::Aborted}}) {
        const StepVerdict v = check_step(Step::Abort, state);
        EXPECT_FALSE(v.allowed);
        EXPECT_EQ(v.message, "there is no active replay to abort");
        EXPECT_EQ(v.hint, "nothing to do");
    }
}

TEST(ReplayStepCheck, AbortIsAllowedInEveryActiveState) {
    for (S state : kAllStates) {
        if (is_active(state)) {
            EXPECT_TRUE(check_step(Step::Abort, state).allowed) << to_string(state);
        }
    }
}

TEST(ReplayStepCheck, RefusalHintIsCallNextStepNext) {
    EXPECT_EQ(check_step(Step::ReplayIncrement, S::Prepared).hint, "call viewmig.replay_initial() next");
    EXPECT_EQ(check_step(Step::Complete, S::Replayed).hint,
              "call viewmig.replay_increment() or viewmig.prepare_completion() next");
    EXPECT_EQ(check_step(Step::ReplayInitial, S::CompletionPrepared).hint, "call viewmig.complete() next");
}

TEST(ReplayStepCheck, TheDocumentedSessionIsAllowedStepByStep) {
    // prepare_initial → replay_initial (resumable) → increments → prepare_completion → increment → complete
    MaybeState state;
    auto run = [&](Step step, MaybeState after) {
        const StepVerdict v = check_step(step, state);
        EXPECT_TRUE(v.allowed) << describe(step, state) << ": " << v.message;
        state = after;
    };
    run(Step::PrepareInitial, S::Prepared);
    run(Step::ReplayInitial, S::ReplayingInitial);
    run(Step::ReplayInitial, S::Replayed);  // resumed after an interruption
    run(Step::ReplayIncrement, S::Replayed);
    run(Step::PrepareCompletion, S::CompletionPrepared);
    run(Step::ReplayIncrement, S::CompletionPrepared);
    run(Step::Complete, S::Completed);
    run(Step::PrepareInitial, S::Prepared);  // a completed replay does not block the next one
    run(Step::Abort, S::Aborted);
    run(Step::PrepareInitial, S::Prepared);  // nor does an aborted one
}

// ---- next step --------------------------------------------------------------------------------

TEST(ReplayNextStep, NextStepFollowsTheLifecycle) {
    EXPECT_EQ(next_step_sql(std::nullopt), "viewmig.prepare_initial()");
    EXPECT_EQ(next_step_sql(S::Prepared), "viewmig.replay_initial()");
    EXPECT_EQ(next_step_sql(S::ReplayingInitial), "viewmig.replay_initial()");
    EXPECT_EQ(next_step_sql(S::Replayed), "viewmig.replay_increment() or viewmig.prepare_completion()");
    EXPECT_EQ(next_step_sql(S::CompletionPrepared), "viewmig.complete()");
    EXPECT_EQ(next_step_sql(S::Completed), "viewmig.prepare_initial()");
    EXPECT_EQ(next_step_sql(S::Aborted), "viewmig.prepare_initial()");
}

TEST(ReplayNextStep, EverySuggestedNextStepIsAllowedInThatState) {
    const std::map<std::string, Step> by_sql{
        {"viewmig.prepare_initial()", Step::PrepareInitial},     {"viewmig.replay_initial()", Step::ReplayInitial},
        {"viewmig.replay_increment()", Step::ReplayIncrement},   {"viewmig.prepare_completion()", Step::PrepareCompletion},
        {"viewmig.complete()", Step::Complete},
    };
    for (MaybeState state : all_situations()) {
        const std::string next = next_step_sql(state);
        int named = 0;
        for (const auto& [text, step] : by_sql) {
            if (next.find(text) == std::string::npos) continue;
            ++named;
            EXPECT_TRUE(check_step(step, state).allowed) << describe(step, state) << " suggested by \"" << next << "\"";
        }
        EXPECT_GE(named, 1) << next;
    }
}

}  // namespace
}  // namespace viewmig::core
