// The job queue's rules, kept free of PostgreSQL so they are unit-tested: which job kinds exist
// and which arguments each accepts (and how each becomes a SQL argument), when a failed job is
// tried again, and which step the `replay` pipeline job runs next.
#pragma once

#include "core/replay_state.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace viewmig::core {

// ---- kinds and arguments ----------------------------------------------------------------------

enum class ArgType { Int, Bool, Name, TextArray };

struct JobArg {
    std::string_view name;
    ArgType type;
};

struct JobKind {
    std::string_view name;        // what enqueue() takes
    std::string_view function;    // the SQL function a step job calls ("" for the pipeline)
    std::string_view lane;        // jobs of one lane run one at a time, in id order
    std::vector<JobArg> args;     // accepted keys of the arguments object
};

const std::vector<JobKind>& job_kinds();
const JobKind* find_job_kind(std::string_view name);
std::string job_kind_names();  // "prepare_initial, replay_initial, ..." for HINTs

// The accepted key names of a kind, comma-separated, for HINTs.
std::string arg_names(const JobKind& kind);
const JobArg* find_arg(const JobKind& kind, std::string_view key);

// SQL expression reading key `key` of the jsonb parameter `$param` as the argument's type.
std::string arg_expression(const JobArg& arg, int param);

// "SELECT viewmig.<function>(k1 => <expr>, ...)::text" passing only the keys present (absent
// keys keep the function's defaults); `keys` must all be arguments of the kind.
std::string step_call_sql(const JobKind& kind, const std::vector<std::string>& keys, int param);

// ---- retries -----------------------------------------------------------------------------------

// SQLSTATEs (5 characters) for which trying again can help: lock timeouts, deadlocks,
// serialization failures, a step still running elsewhere, resource shortages, cancellations and
// crashes. Errors in the job itself (bad arguments, missing rights, wrong replay state) fail at once.
bool is_retryable_sqlstate(std::string_view sqlstate);

// Seconds to wait before attempt `next_attempt` (2, 3, ...): base, 2 base, 4 base ... at most
// 10 min (base 10 s: 10 s, 20 s, 40 s ...).
int retry_delay_seconds(int next_attempt, int base_seconds = 10);

// ---- the replay pipeline -------------------------------------------------------------------------

struct PipelineOptions {
    int64_t lag_threshold = 1000;  // stop incrementing once an increment replays fewer events
    int max_increments = 20;       // ... or after this many increments
    bool auto_complete = false;    // run complete() at the end, or stop at completion_prepared
};

enum class PipelineStage { PrepareInitial, ReplayInitial, ReplayIncrement, PrepareCompletion, Complete, Done, Aborted };

std::string_view to_string(PipelineStage stage);

struct PipelineProgress {
    std::optional<ReplayState> state;           // of the pipeline's replay; nullopt before prepare
    int increments_done = 0;                    // by this run of the job
    std::optional<int64_t> last_increment;      // events of the last increment
};

PipelineStage next_pipeline_stage(const PipelineProgress& progress, const PipelineOptions& options);

// Why `value` is not a valid value of the pipeline's own option `key` (lag_threshold: >= 0,
// max_increments: >= 1), or nullopt when it is (or `key` is not one of them). Checked by
// viewmig.enqueue() and again when the pipeline reads its options.
std::optional<std::string> pipeline_option_error(std::string_view key, int64_t value);

}  // namespace viewmig::core
