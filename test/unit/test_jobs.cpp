// The job queue's rules (src/core/jobs.hpp): the job kinds and their arguments, the SQL a step job
// runs, which failures are tried again and after how long, and the replay pipeline's next stage.
#include "core/jobs.hpp"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace viewmig::core {
namespace {

using S = ReplayState;
using Stage = PipelineStage;

// ---- kinds ---------------------------------------------------------------------------------------

struct ExpectedKind {
    std::string function;
    std::vector<std::pair<std::string, ArgType>> args;  // in declaration order
};

// The kinds, written out once. The step kinds call the SQL function of the same name, whose
// parameters (src/sql/viewmig--1.0.sql) are the accepted arguments.
const std::map<std::string, ExpectedKind>& expected_kinds() {
    static const std::map<std::string, ExpectedKind> kinds{
        {"prepare_initial",
         {"prepare_initial",
          {{"projectors", ArgType::TextArray}, {"replay_schema", ArgType::Name}, {"archive_schema", ArgType::Name}}}},
        {"replay_initial", {"replay_initial", {{"batch_size", ArgType::Int}, {"workers", ArgType::Int}}}},
        {"replay_increment", {"replay_increment", {{"batch_size", ArgType::Int}, {"workers", ArgType::Int}}}},
        {"prepare_completion", {"prepare_completion", {}}},
        {"complete", {"complete", {}}},
        {"abort", {"abort", {}}},
        {"migrate_online", {"migrate_online", {{"batch_size", ArgType::Int}}}},
        {"migrate_offline", {"migrate_offline", {}}},
        {"replay",
         {"",
          {{"projectors", ArgType::TextArray},
           {"replay_schema", ArgType::Name},
           {"archive_schema", ArgType::Name},
           {"batch_size", ArgType::Int},
           {"workers", ArgType::Int},
           {"lag_threshold", ArgType::Int},
           {"max_increments", ArgType::Int},
           {"auto_complete", ArgType::Bool}}}},
    };
    return kinds;
}

const JobKind& kind(std::string_view name) {
    const JobKind* k = find_job_kind(name);
    if (!k) throw std::runtime_error("no job kind " + std::string(name));
    return *k;
}

TEST(JobKinds, ExactlyTheExpectedKindsInOrder) {
    std::vector<std::string> names;
    for (const JobKind& k : job_kinds()) names.emplace_back(k.name);
    EXPECT_EQ(names, (std::vector<std::string>{"prepare_initial", "replay_initial", "replay_increment", "prepare_completion",
                                               "complete", "abort", "migrate_online", "migrate_offline", "replay"}));
    EXPECT_EQ(job_kind_names(),
              "prepare_initial, replay_initial, replay_increment, prepare_completion, complete, abort, migrate_online, "
              "migrate_offline, replay");
}

TEST(JobKinds, EveryKindHasItsFunctionLaneAndArguments) {
    for (const auto& [name, expected] : expected_kinds()) {
        SCOPED_TRACE(name);
        const JobKind* k = find_job_kind(name);
        ASSERT_NE(k, nullptr);
        EXPECT_EQ(k->name, name);
        EXPECT_EQ(k->function, expected.function);
        // All kinds act on the one active replay, so they share a lane and never run concurrently.
        EXPECT_EQ(k->lane, "replay");
        ASSERT_EQ(k->args.size(), expected.args.size());
        for (size_t i = 0; i < k->args.size(); ++i) {
            EXPECT_EQ(k->args[i].name, expected.args[i].first) << "argument " << i;
            EXPECT_EQ(k->args[i].type, expected.args[i].second) << "argument " << i;
        }
    }
}

TEST(JobKinds, StepKindsCallTheFunctionOfTheirName) {
    for (const JobKind& k : job_kinds()) {
        if (k.name == "replay") {
            EXPECT_TRUE(k.function.empty()) << "the pipeline calls no single function";
        } else {
            EXPECT_EQ(k.function, k.name);
        }
    }
}

TEST(JobKinds, EveryPipelineStageThatRunsAStepIsAStepKind) {
    for (Stage st : {Stage::PrepareInitial, Stage::ReplayInitial, Stage::ReplayIncrement, Stage::PrepareCompletion,
                     Stage::Complete}) {
        const JobKind* k = find_job_kind(to_string(st));
        ASSERT_NE(k, nullptr) << to_string(st);
        EXPECT_EQ(k->function, to_string(st));
    }
}

TEST(JobKinds, PipelineAcceptsEveryArgumentOfTheStepsItRuns) {
    const JobKind& pipeline = kind("replay");
    for (std::string_view step : {"prepare_initial", "replay_initial", "replay_increment", "prepare_completion", "complete"}) {
        for (const JobArg& a : kind(step).args) {
            const JobArg* p = find_arg(pipeline, a.name);
            ASSERT_NE(p, nullptr) << step << "." << a.name;
            EXPECT_EQ(p->type, a.type) << step << "." << a.name;
        }
    }
}

TEST(JobKinds, UnknownKindsAreNotFound) {
    EXPECT_EQ(find_job_kind(""), nullptr);
    EXPECT_EQ(find_job_kind("nope"), nullptr);
    EXPECT_EQ(find_job_kind("Replay"), nullptr);          // case matters
    EXPECT_EQ(find_job_kind("replay "), nullptr);         // no trimming
    EXPECT_EQ(find_job_kind("prepare"), nullptr);         // no prefix matching
    EXPECT_EQ(find_job_kind("replay_initial_x"), nullptr);
    EXPECT_EQ(find_job_kind("viewmig.complete"), nullptr);
}

TEST(JobKinds, FindJobKindReturnsTheTableEntry) {
    for (const JobKind& k : job_kinds()) EXPECT_EQ(find_job_kind(k.name), &k);
}

// ---- arguments -----------------------------------------------------------------------------------

TEST(JobArgs, ArgNamesListsTheKeysInDeclarationOrder) {
    EXPECT_EQ(arg_names(kind("prepare_initial")), "projectors, replay_schema, archive_schema");
    EXPECT_EQ(arg_names(kind("replay_initial")), "batch_size, workers");
    EXPECT_EQ(arg_names(kind("replay_increment")), "batch_size, workers");
    EXPECT_EQ(arg_names(kind("complete")), "");
    EXPECT_EQ(arg_names(kind("replay")),
              "projectors, replay_schema, archive_schema, batch_size, workers, lag_threshold, max_increments, auto_complete");
}

TEST(JobArgs, FindArgKnowsOnlyTheKindsOwnKeys) {
    const JobKind& ri = kind("replay_initial");
    ASSERT_NE(find_arg(ri, "workers"), nullptr);
    EXPECT_EQ(find_arg(ri, "workers")->type, ArgType::Int);
    EXPECT_EQ(find_arg(ri, "workers"), &ri.args[1]);
    EXPECT_EQ(find_arg(ri, "projectors"), nullptr);     // an argument of another kind
    EXPECT_EQ(find_arg(ri, "lag_threshold"), nullptr);  // a pipeline-only argument
    EXPECT_EQ(find_arg(ri, "Workers"), nullptr);
    EXPECT_EQ(find_arg(ri, ""), nullptr);
    for (std::string_view none : {"prepare_completion", "complete", "abort"})
        EXPECT_EQ(find_arg(kind(none), "batch_size"), nullptr) << none;

    const JobKind& pipeline = kind("replay");
    ASSERT_NE(find_arg(pipeline, "auto_complete"), nullptr);
    EXPECT_EQ(find_arg(pipeline, "auto_complete")->type, ArgType::Bool);
    EXPECT_EQ(find_arg(pipeline, "projectors")->type, ArgType::TextArray);
    EXPECT_EQ(find_arg(pipeline, "replay_schema")->type, ArgType::Name);
    EXPECT_EQ(find_arg(pipeline, "max_increments")->type, ArgType::Int);
}

TEST(JobArgs, ExpressionCastsTheKeyOfTheParameterToTheType) {
    EXPECT_EQ(arg_expression({"workers", ArgType::Int}, 1), "($1->>'workers')::int");
    EXPECT_EQ(arg_expression({"auto_complete", ArgType::Bool}, 1), "($1->>'auto_complete')::boolean");
    EXPECT_EQ(arg_expression({"replay_schema", ArgType::Name}, 1), "($1->>'replay_schema')::name");
    EXPECT_EQ(arg_expression({"batch_size", ArgType::Int}, 3), "($3->>'batch_size')::int");
}

TEST(JobArgs, TextArrayExpressionMapsJsonNullToSqlNull) {
    EXPECT_EQ(arg_expression({"projectors", ArgType::TextArray}, 1),
              "CASE WHEN jsonb_typeof($1->'projectors') = 'null' THEN NULL "
              "ELSE ARRAY(SELECT jsonb_array_elements_text($1->'projectors')) END");
    EXPECT_EQ(arg_expression({"projectors", ArgType::TextArray}, 12),
              "CASE WHEN jsonb_typeof($12->'projectors') = 'null' THEN NULL "
              "ELSE ARRAY(SELECT jsonb_array_elements_text($12->'projectors')) END");
}

// ---- step_call_sql -------------------------------------------------------------------------------

TEST(StepCallSql, NoKeysKeepsAllDefaults) {
    EXPECT_EQ(step_call_sql(kind("replay_initial"), {}, 1), "SELECT viewmig.replay_initial()::text");
    EXPECT_EQ(step_call_sql(kind("prepare_initial"), {}, 1), "SELECT viewmig.prepare_initial()::text");
    EXPECT_EQ(step_call_sql(kind("prepare_completion"), {}, 1), "SELECT viewmig.prepare_completion()::text");
    EXPECT_EQ(step_call_sql(kind("complete"), {}, 1), "SELECT viewmig.complete()::text");
    EXPECT_EQ(step_call_sql(kind("abort"), {}, 1), "SELECT viewmig.abort()::text");
}

TEST(StepCallSql, PassesOnlyThePresentKeysByName) {
    EXPECT_EQ(step_call_sql(kind("replay_initial"), {"workers"}, 1),
              "SELECT viewmig.replay_initial(workers => ($1->>'workers')::int)::text");
    EXPECT_EQ(step_call_sql(kind("replay_increment"), {"batch_size"}, 1),
              "SELECT viewmig.replay_increment(batch_size => ($1->>'batch_size')::int)::text");
    EXPECT_EQ(step_call_sql(kind("prepare_initial"), {"archive_schema"}, 2),
              "SELECT viewmig.prepare_initial(archive_schema => ($2->>'archive_schema')::name)::text");
}

TEST(StepCallSql, ArgumentsFollowDeclarationOrderNotKeyOrder) {
    const std::string expected =
        "SELECT viewmig.replay_initial(batch_size => ($1->>'batch_size')::int, workers => ($1->>'workers')::int)::text";
    EXPECT_EQ(step_call_sql(kind("replay_initial"), {"batch_size", "workers"}, 1), expected);
    EXPECT_EQ(step_call_sql(kind("replay_initial"), {"workers", "batch_size"}, 1), expected);

    // Keys come sorted alphabetically from jsonb_object_keys(); the call still follows the signature.
    EXPECT_EQ(step_call_sql(kind("prepare_initial"), {"archive_schema", "projectors", "replay_schema"}, 1),
              "SELECT viewmig.prepare_initial(projectors => " + arg_expression(kind("prepare_initial").args[0], 1) +
                  ", replay_schema => ($1->>'replay_schema')::name, archive_schema => ($1->>'archive_schema')::name)::text");
    EXPECT_EQ(step_call_sql(kind("prepare_initial"), {"replay_schema", "projectors"}, 1),
              "SELECT viewmig.prepare_initial(projectors => " + arg_expression(kind("prepare_initial").args[0], 1) +
                  ", replay_schema => ($1->>'replay_schema')::name)::text");
}

TEST(StepCallSql, DuplicateKeysPassTheArgumentOnce) {
    EXPECT_EQ(step_call_sql(kind("replay_initial"), {"workers", "workers"}, 1),
              "SELECT viewmig.replay_initial(workers => ($1->>'workers')::int)::text");
}

TEST(StepCallSql, KeysTheKindDoesNotTakeAreLeftOut) {
    // The pipeline hands its own keys to each step; those a step lacks must not reach its call.
    EXPECT_EQ(step_call_sql(kind("replay_increment"), {"auto_complete", "batch_size", "lag_threshold", "projectors"}, 1),
              "SELECT viewmig.replay_increment(batch_size => ($1->>'batch_size')::int)::text");
    EXPECT_EQ(step_call_sql(kind("complete"), {"workers"}, 1), "SELECT viewmig.complete()::text");
}

// ---- retries -------------------------------------------------------------------------------------

TEST(Retry, TransientFailuresAreRetryable) {
    for (std::string_view s : {
             "40P01",  // deadlock_detected
             "40001",  // serialization_failure
             "40000",  // transaction_rollback
             "55P03",  // lock_not_available (lock_timeout)
             "55006",  // object_in_use (a step still running elsewhere)
             "57P01",  // admin_shutdown
             "57P02",  // crash_shutdown
             "57014",  // query_canceled (statement_timeout)
             "53100",  // disk_full
             "53200",  // out_of_memory
             "53300",  // too_many_connections
             "58030",  // io_error
             "08006",  // connection_failure
             "XX000",  // internal_error (a worker that died without a result)
         })
        EXPECT_TRUE(is_retryable_sqlstate(s)) << s;
}

TEST(Retry, ErrorsOfTheJobItselfFailAtOnce) {
    for (std::string_view s : {
             "42501",  // insufficient_privilege
             "22P02",  // invalid_text_representation (a bad argument)
             "22023",  // invalid_parameter_value
             "55000",  // object_not_in_prerequisite_state (wrong replay state)
             "42704",  // undefined_object
             "42P01",  // undefined_table
             "42883",  // undefined_function
             "23505",  // unique_violation
             "P0001",  // raise_exception
             "XX001",  // data_corrupted
             "XX002",  // index_corrupted
             "00000",  // successful_completion
         })
        EXPECT_FALSE(is_retryable_sqlstate(s)) << s;
}

TEST(Retry, OnlyFiveCharacterCodesCount) {
    EXPECT_FALSE(is_retryable_sqlstate(""));
    EXPECT_FALSE(is_retryable_sqlstate("40"));       // a class alone
    EXPECT_FALSE(is_retryable_sqlstate("40P0"));
    EXPECT_FALSE(is_retryable_sqlstate("40P011"));
    EXPECT_FALSE(is_retryable_sqlstate("XX0000"));
    EXPECT_FALSE(is_retryable_sqlstate("55P033"));
}

TEST(Retry, DelaysDoubleFromTenSecondsUpToTenMinutes) {
    const std::map<int, int> expected{{2, 10},  {3, 20},  {4, 40},  {5, 80},  {6, 160},
                                      {7, 320}, {8, 600}, {9, 600}, {10, 600}, {50, 600}};
    for (const auto& [attempt, delay] : expected) EXPECT_EQ(retry_delay_seconds(attempt), delay) << "attempt " << attempt;
}

TEST(Retry, DelaysNeverDecreaseNorExceedTheCap) {
    int previous = 0;
    for (int attempt = 2; attempt <= 1000; ++attempt) {
        const int d = retry_delay_seconds(attempt);
        EXPECT_GE(d, previous) << "attempt " << attempt;
        EXPECT_LE(d, 600) << "attempt " << attempt;
        EXPECT_GT(d, 0) << "attempt " << attempt;
        previous = d;
    }
    EXPECT_EQ(retry_delay_seconds(2'000'000'000), 600);  // no overflow for absurd attempt counts
}

TEST(Retry, TheFirstAttemptDoesNotWait) {
    EXPECT_EQ(retry_delay_seconds(1), 0);
    EXPECT_EQ(retry_delay_seconds(0), 0);
    EXPECT_EQ(retry_delay_seconds(-3), 0);
}

// ---- the replay pipeline -------------------------------------------------------------------------

PipelineProgress progress(std::optional<S> state, int increments_done = 0, std::optional<int64_t> last = std::nullopt) {
    PipelineProgress p;
    p.state = state;
    p.increments_done = increments_done;
    p.last_increment = last;
    return p;
}

PipelineOptions options(int64_t lag_threshold, int max_increments, bool auto_complete) {
    PipelineOptions o;
    o.lag_threshold = lag_threshold;
    o.max_increments = max_increments;
    o.auto_complete = auto_complete;
    return o;
}

TEST(Pipeline, StageNames) {
    EXPECT_EQ(to_string(Stage::PrepareInitial), "prepare_initial");
    EXPECT_EQ(to_string(Stage::ReplayInitial), "replay_initial");
    EXPECT_EQ(to_string(Stage::ReplayIncrement), "replay_increment");
    EXPECT_EQ(to_string(Stage::PrepareCompletion), "prepare_completion");
    EXPECT_EQ(to_string(Stage::Complete), "complete");
    EXPECT_EQ(to_string(Stage::Done), "done");
    EXPECT_EQ(to_string(Stage::Aborted), "aborted");
}

TEST(Pipeline, DefaultOptions) {
    const PipelineOptions o;
    EXPECT_EQ(o.lag_threshold, 1000);
    EXPECT_EQ(o.max_increments, 20);
    EXPECT_FALSE(o.auto_complete);
    const PipelineProgress p;
    EXPECT_FALSE(p.state.has_value());
    EXPECT_EQ(p.increments_done, 0);
    EXPECT_FALSE(p.last_increment.has_value());
}

TEST(Pipeline, NoReplayYetPrepares) {
    EXPECT_EQ(next_pipeline_stage(progress(std::nullopt), {}), Stage::PrepareInitial);
    EXPECT_EQ(next_pipeline_stage(progress(std::nullopt), options(0, 0, true)), Stage::PrepareInitial);
}

TEST(Pipeline, PreparedOrInterruptedInitialReplayRunsReplayInitial) {
    EXPECT_EQ(next_pipeline_stage(progress(S::Prepared), {}), Stage::ReplayInitial);
    EXPECT_EQ(next_pipeline_stage(progress(S::ReplayingInitial), {}), Stage::ReplayInitial);  // resumes
}

TEST(Pipeline, AfterTheInitialReplayAtLeastOneIncrementRuns) {
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 0), {}), Stage::ReplayIncrement);
    // Even a zero max_increments or a huge threshold does not skip the first increment, which
    // catches up on events committed while the initial replay ran.
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 0), options(1000, 0, false)), Stage::ReplayIncrement);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 0, 0), options(1000, 20, false)), Stage::ReplayIncrement);
}

TEST(Pipeline, IncrementsContinueWhileTheLagIsAtOrAboveTheThreshold) {
    const PipelineOptions o = options(1000, 20, false);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 1, 5000), o), Stage::ReplayIncrement);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 1, 1000), o), Stage::ReplayIncrement);  // not fewer
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 19, 1000), o), Stage::ReplayIncrement);
}

TEST(Pipeline, IncrementsStopBelowTheThreshold) {
    const PipelineOptions o = options(1000, 20, false);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 1, 999), o), Stage::PrepareCompletion);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 1, 0), o), Stage::PrepareCompletion);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 7, 12), o), Stage::PrepareCompletion);
}

TEST(Pipeline, IncrementsStopAtMaxIncrements) {
    const PipelineOptions o = options(1000, 3, false);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 2, 100000), o), Stage::ReplayIncrement);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 3, 100000), o), Stage::PrepareCompletion);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 4, 100000), o), Stage::PrepareCompletion);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 1, 100000), options(1000, 1, false)), Stage::PrepareCompletion);
}

TEST(Pipeline, ZeroThresholdIncrementsUntilMaxIncrements) {
    // No increment replays fewer than 0 events, so only max_increments ends the loop.
    const PipelineOptions o = options(0, 4, false);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 1, 0), o), Stage::ReplayIncrement);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 3, 0), o), Stage::ReplayIncrement);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed, 4, 0), o), Stage::PrepareCompletion);
}

TEST(Pipeline, CompletionPreparedCompletesOnlyWithAutoComplete) {
    EXPECT_EQ(next_pipeline_stage(progress(S::CompletionPrepared, 2, 5), options(1000, 20, true)), Stage::Complete);
    EXPECT_EQ(next_pipeline_stage(progress(S::CompletionPrepared, 2, 5), options(1000, 20, false)), Stage::Done);
    EXPECT_EQ(next_pipeline_stage(progress(S::CompletionPrepared), {}), Stage::Done);
}

TEST(Pipeline, CompletedIsDoneAndAbortedIsAborted) {
    for (bool auto_complete : {false, true}) {
        const PipelineOptions o = options(1000, 20, auto_complete);
        EXPECT_EQ(next_pipeline_stage(progress(S::Completed, 3, 10), o), Stage::Done);
        EXPECT_EQ(next_pipeline_stage(progress(S::Aborted), o), Stage::Aborted);
        EXPECT_EQ(next_pipeline_stage(progress(S::Aborted, 3, 10), o), Stage::Aborted);
    }
}

// Drives the pipeline the way the job runner does: run the stage, move the replay's state as the
// step would, and ask again. `increment_events` are the events each increment replays.
std::vector<Stage> simulate(const PipelineOptions& o, std::vector<int64_t> increment_events) {
    std::vector<Stage> stages;
    PipelineProgress p;
    size_t next_increment = 0;
    for (int guard = 0; guard < 100; ++guard) {
        const Stage st = next_pipeline_stage(p, o);
        stages.push_back(st);
        switch (st) {
            case Stage::PrepareInitial: p.state = S::Prepared; break;
            case Stage::ReplayInitial: p.state = S::Replayed; break;
            case Stage::ReplayIncrement:
                ++p.increments_done;
                p.last_increment = next_increment < increment_events.size() ? increment_events[next_increment++] : 0;
                break;
            case Stage::PrepareCompletion: p.state = S::CompletionPrepared; break;
            case Stage::Complete: p.state = S::Completed; break;
            case Stage::Done:
            case Stage::Aborted: return stages;
        }
    }
    ADD_FAILURE() << "the pipeline did not end";
    return stages;
}

TEST(Pipeline, TypicalReplayWithoutAutoCompleteStopsAtCompletionPrepared) {
    EXPECT_EQ(simulate(options(1000, 20, false), {50000, 4000, 300}),
              (std::vector<Stage>{Stage::PrepareInitial, Stage::ReplayInitial, Stage::ReplayIncrement, Stage::ReplayIncrement,
                                  Stage::ReplayIncrement, Stage::PrepareCompletion, Stage::Done}));
}

TEST(Pipeline, TypicalReplayWithAutoCompleteCompletes) {
    EXPECT_EQ(simulate(options(1000, 20, true), {50000, 4000, 300}),
              (std::vector<Stage>{Stage::PrepareInitial, Stage::ReplayInitial, Stage::ReplayIncrement, Stage::ReplayIncrement,
                                  Stage::ReplayIncrement, Stage::PrepareCompletion, Stage::Complete, Stage::Done}));
}

TEST(Pipeline, AQuietDatabaseNeedsOneIncrement) {
    EXPECT_EQ(simulate(options(1000, 20, true), {0}),
              (std::vector<Stage>{Stage::PrepareInitial, Stage::ReplayInitial, Stage::ReplayIncrement,
                                  Stage::PrepareCompletion, Stage::Complete, Stage::Done}));
}

TEST(Pipeline, ANeverCatchingUpReplayStopsAfterMaxIncrements) {
    const std::vector<Stage> stages = simulate(options(1000, 5, false), std::vector<int64_t>(50, 1'000'000));
    std::vector<Stage> expected{Stage::PrepareInitial, Stage::ReplayInitial};
    expected.insert(expected.end(), 5, Stage::ReplayIncrement);
    expected.push_back(Stage::PrepareCompletion);
    expected.push_back(Stage::Done);
    EXPECT_EQ(stages, expected);
}

TEST(Pipeline, ResumingAfterAnInterruptionPicksUpAtTheCommittedState) {
    // A retried job starts with increments_done = 0 and sees the state an earlier attempt left.
    const PipelineOptions o = options(1000, 20, true);
    EXPECT_EQ(next_pipeline_stage(progress(S::ReplayingInitial), o), Stage::ReplayInitial);
    EXPECT_EQ(next_pipeline_stage(progress(S::Replayed), o), Stage::ReplayIncrement);
    EXPECT_EQ(next_pipeline_stage(progress(S::CompletionPrepared), o), Stage::Complete);
    EXPECT_EQ(next_pipeline_stage(progress(S::Completed), o), Stage::Done);
}

TEST(Pipeline, OptionValuesAreCheckedNotOnlyTheirTypes) {
    EXPECT_EQ(pipeline_option_error("lag_threshold", 0), std::nullopt);
    EXPECT_EQ(pipeline_option_error("lag_threshold", -1), "lag_threshold must not be negative, not -1");
    EXPECT_EQ(pipeline_option_error("max_increments", 1), std::nullopt);
    EXPECT_EQ(pipeline_option_error("max_increments", 0), "max_increments must be at least 1, not 0");
    EXPECT_EQ(pipeline_option_error("max_increments", -3), "max_increments must be at least 1, not -3");
    EXPECT_EQ(pipeline_option_error("workers", -3), std::nullopt);  // a step's argument: checked by the step's own check
}

}  // namespace
}  // namespace viewmig::core
