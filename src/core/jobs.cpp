// Job kinds, retry policy and the replay pipeline's next step (see jobs.hpp).
#include "core/jobs.hpp"

#include <algorithm>

namespace viewmig::core {

const std::vector<JobKind>& job_kinds() {
    static const std::vector<JobKind> kinds = {
        {"prepare_initial", "prepare_initial", "replay",
         {{"projectors", ArgType::TextArray}, {"replay_schema", ArgType::Name}, {"archive_schema", ArgType::Name}}},
        {"replay_initial", "replay_initial", "replay", {{"batch_size", ArgType::Int}, {"workers", ArgType::Int}}},
        {"replay_increment", "replay_increment", "replay", {{"batch_size", ArgType::Int}, {"workers", ArgType::Int}}},
        {"prepare_completion", "prepare_completion", "replay", {}},
        {"complete", "complete", "replay", {}},
        {"abort", "abort", "replay", {}},
        {"migrate_online", "migrate_online", "replay", {{"batch_size", ArgType::Int}}},
        {"migrate_offline", "migrate_offline", "replay", {}},
        {"replay", "", "replay",
         {{"projectors", ArgType::TextArray}, {"replay_schema", ArgType::Name}, {"archive_schema", ArgType::Name},
          {"batch_size", ArgType::Int}, {"workers", ArgType::Int}, {"lag_threshold", ArgType::Int},
          {"max_increments", ArgType::Int}, {"auto_complete", ArgType::Bool}}},
    };
    return kinds;
}

const JobKind* find_job_kind(std::string_view name) {
    for (const JobKind& k : job_kinds())
        if (k.name == name) return &k;
    return nullptr;
}

std::string job_kind_names() {
    std::string out;
    for (const JobKind& k : job_kinds()) out += (out.empty() ? "" : ", ") + std::string(k.name);
    return out;
}

std::string arg_names(const JobKind& kind) {
    std::string out;
    for (const JobArg& a : kind.args) out += (out.empty() ? "" : ", ") + std::string(a.name);
    return out;
}

const JobArg* find_arg(const JobKind& kind, std::string_view key) {
    for (const JobArg& a : kind.args)
        if (a.name == key) return &a;
    return nullptr;
}

std::string arg_expression(const JobArg& arg, int param) {
    // Argument names are fixed identifiers of the table above, so they need no quoting.
    const std::string p = "$" + std::to_string(param);
    const std::string key = "'" + std::string(arg.name) + "'";
    switch (arg.type) {
        case ArgType::Int: return "(" + p + "->>" + key + ")::int";
        case ArgType::Bool: return "(" + p + "->>" + key + ")::boolean";
        case ArgType::Name: return "(" + p + "->>" + key + ")::name";
        case ArgType::TextArray:
            return "CASE WHEN jsonb_typeof(" + p + "->" + key + ") = 'null' THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(" +
                   p + "->" + key + ")) END";
    }
    return "NULL";
}

std::string step_call_sql(const JobKind& kind, const std::vector<std::string>& keys, int param) {
    std::string args;
    for (const JobArg& a : kind.args) {
        if (std::find(keys.begin(), keys.end(), a.name) == keys.end()) continue;
        args += (args.empty() ? "" : ", ") + std::string(a.name) + " => " + arg_expression(a, param);
    }
    return "SELECT viewmig." + std::string(kind.function) + "(" + args + ")::text";
}

bool is_retryable_sqlstate(std::string_view s) {
    if (s.size() != 5) return false;
    const std::string_view cls = s.substr(0, 2);
    if (cls == "40") return true;                   // transaction rollback: deadlock, serialization
    if (cls == "53") return true;                   // insufficient resources
    if (cls == "57") return true;                   // operator intervention: cancel, shutdown, crash
    if (cls == "58") return true;                   // system error (I/O)
    if (cls == "08") return true;                   // connection exceptions
    // lock not available, object in use, internal errors (a worker that died without a result)
    return s == "55P03" || s == "55006" || s == "XX000";
}

int retry_delay_seconds(int next_attempt, int base_seconds) {
    if (next_attempt <= 1 || base_seconds <= 0) return 0;
    int delay = std::min(base_seconds, 600);
    for (int i = 2; i < next_attempt && delay < 600; ++i) delay *= 2;
    return std::min(delay, 600);
}

std::string_view to_string(PipelineStage stage) {
    switch (stage) {
        case PipelineStage::PrepareInitial: return "prepare_initial";
        case PipelineStage::ReplayInitial: return "replay_initial";
        case PipelineStage::ReplayIncrement: return "replay_increment";
        case PipelineStage::PrepareCompletion: return "prepare_completion";
        case PipelineStage::Complete: return "complete";
        case PipelineStage::Done: return "done";
        case PipelineStage::Aborted: return "aborted";
    }
    return "?";
}

PipelineStage next_pipeline_stage(const PipelineProgress& p, const PipelineOptions& o) {
    if (!p.state) return PipelineStage::PrepareInitial;
    switch (*p.state) {
        case ReplayState::Prepared:
        case ReplayState::ReplayingInitial: return PipelineStage::ReplayInitial;
        case ReplayState::Replayed: {
            const bool caught_up = p.last_increment && *p.last_increment < o.lag_threshold;
            if (p.increments_done == 0 || (!caught_up && p.increments_done < o.max_increments))
                return PipelineStage::ReplayIncrement;
            return PipelineStage::PrepareCompletion;
        }
        case ReplayState::CompletionPrepared: return o.auto_complete ? PipelineStage::Complete : PipelineStage::Done;
        case ReplayState::Completed: return PipelineStage::Done;
        case ReplayState::Aborted: return PipelineStage::Aborted;
    }
    return PipelineStage::Aborted;
}

std::optional<std::string> pipeline_option_error(std::string_view key, int64_t value) {
    if (key == "lag_threshold" && value < 0) return "lag_threshold must not be negative, not " + std::to_string(value);
    if (key == "max_increments" && value < 1) return "max_increments must be at least 1, not " + std::to_string(value);
    return std::nullopt;
}

}  // namespace viewmig::core
