// Running a job in its worker (see job_runner.hpp).
#include "pg/job_runner.hpp"

#include "core/json_text.hpp"
#include "core/jobs.hpp"
#include "pg/abort.hpp"
#include "pg/catalog.hpp"
#include "pg/gucs.hpp"
#include "pg/guard.hpp"
#include "pg/job_queue.hpp"
#include "pg/run_as.hpp"
#include "pg/spi.hpp"
#include "pg/step_lock.hpp"
#include "pg/transaction_control.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/errcodes.h"
}

#include <algorithm>

namespace viewmig::pg {

int64_t current_job_id = 0;

namespace {

std::string job_label(int64_t id) { return "viewmig job " + std::to_string(id); }

std::vector<std::string> argument_keys(const Job& job) {
    return parse_text_array(spi_value("SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys($1) k", {jsonb_param(job.arguments)}));
}

// Calls the step's SQL function with the job's arguments that the step accepts; returns its
// result as text (empty for void).
std::string call_step(const Job& job, std::string_view step, std::vector<std::string> keys) {
    const core::JobKind* kind = core::find_job_kind(step);
    keys.erase(std::remove_if(keys.begin(), keys.end(), [&](const std::string& k) { return !core::find_arg(*kind, k); }),
               keys.end());
    return spi_value(core::step_call_sql(*kind, keys, 1), {jsonb_param(job.arguments)}).value_or("");
}

void remember_replay(int64_t job, std::optional<int64_t> replay_id) {
    spi_run_as_owner("UPDATE viewmig.jobs SET replay_id = coalesce($2, (SELECT max(id) FROM viewmig.replays)) WHERE id = $1",
                     {int8_param(job), replay_id ? int8_param(*replay_id) : SqlParam{INT8OID, std::nullopt}});
}

std::string run_step(const Job& job) {
    worker_begin(job_label(job.id) + ": " + job.kind);
    const std::vector<std::string> keys = argument_keys(job);
    const std::string value = call_step(job, job.kind, keys);
    remember_replay(job.id, job.kind == "prepare_initial" && !value.empty() ? std::optional<int64_t>(std::stoll(value))
                                                                             : std::nullopt);
    worker_commit();
    return core::JsonObject().add("step", job.kind).add("value", value).str();
}

core::PipelineOptions pipeline_options(const Job& job) {
    const Row row = spi_run("SELECT coalesce(($1->>'lag_threshold')::bigint, 1000), coalesce(($1->>'max_increments')::int, 20), "
                            "coalesce(($1->>'auto_complete')::boolean, false)",
                            {jsonb_param(job.arguments)})
                        .rows.at(0);
    core::PipelineOptions o;
    o.lag_threshold = to_int8(row[0]);
    o.max_increments = static_cast<int>(to_int8(row[1]));
    o.auto_complete = to_bool(row[2]);
    // viewmig.enqueue() refused these values already; a job queued by viewmig 1.0 may hold them.
    for (const auto& [key, value] : {std::pair<std::string_view, int64_t>{"lag_threshold", o.lag_threshold},
                                     {"max_increments", o.max_increments}})
        if (const auto error = core::pipeline_option_error(key, value))
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "argument \"" + std::string(key) + "\" of job " +
                                                                 std::to_string(job.id) + " is not valid: " + *error)
                .hint("Enqueue a new replay job with a valid value.");
    return o;
}

std::string run_pipeline(const Job& job) {
    worker_begin(job_label(job.id) + ": replay pipeline");
    const core::PipelineOptions options = pipeline_options(job);
    std::vector<std::string> keys = argument_keys(job);
    worker_commit();
    std::vector<std::string> increment_keys = keys;  // increments run in this worker's transaction
    increment_keys.erase(std::remove(increment_keys.begin(), increment_keys.end(), "workers"), increment_keys.end());

    std::optional<int64_t> replay_id = job.replay_id;  // set by an earlier attempt
    core::PipelineProgress progress;
    for (;;) {
        // Decide on committed state, and report the stage in a transaction of its own: the
        // replay workers update the job's progress row while the step runs.
        worker_begin(job_label(job.id) + ": replay pipeline");
        progress.state.reset();
        if (replay_id) progress.state = core::parse_replay_state(*spi_value("SELECT state FROM viewmig.replays WHERE id = $1",
                                                                            {int8_param(*replay_id)}));
        const core::PipelineStage stage = core::next_pipeline_stage(progress, options);
        if (stage == core::PipelineStage::Done) {
            worker_commit();
            return core::JsonObject()
                .add("replay_id", *replay_id)
                .add("state", core::to_string(*progress.state))
                .add("increments", progress.increments_done)
                .str();
        }
        if (stage == core::PipelineStage::Aborted)
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "replay " + std::to_string(*replay_id) + " was aborted")
                .hint("Enqueue a new replay job to start over.");
        if (stage != core::PipelineStage::PrepareInitial) {
            const std::optional<Replay> active = find_active_replay(false);
            if (!active || active->id != *replay_id)
                throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                                "replay " + std::to_string(*replay_id) + " of this job is no longer the active replay");
        }
        core::JsonObject stage_json;
        stage_json.add("stage", core::to_string(stage)).add("increments", progress.increments_done);
        if (replay_id) stage_json.add("replay_id", *replay_id);
        record_job_progress(job.id, stage_json.str());
        worker_commit();

        const std::string step(core::to_string(stage));
        worker_begin(job_label(job.id) + ": " + step);
        const std::string value = call_step(job, step, stage == core::PipelineStage::ReplayIncrement ? increment_keys : keys);
        if (stage == core::PipelineStage::PrepareInitial) {
            replay_id = std::stoll(value);
            remember_replay(job.id, replay_id);
        } else if (stage == core::PipelineStage::ReplayIncrement) {
            ++progress.increments_done;
            progress.last_increment = std::stoll(value);
        }
        worker_commit();
    }
}

}  // namespace

void run_job(int64_t id, int attempt) {
    worker_begin(job_label(id) + ": starting");
    const std::optional<Job> job = find_job(id, true);
    if (!job || job->status != "running" || job->attempts != attempt || job->worker_pid) {
        worker_commit();
        return;
    }
    // Held until this process exits: how the launcher tells a live job from one whose worker died.
    spi_run("SELECT pg_catalog.pg_advisory_lock(30318, $1::int4)", {int8_param(id)});
    spi_run_as_owner("UPDATE viewmig.jobs SET worker_pid = pg_backend_pid() WHERE id = $1", {int8_param(id)});
    record_job_event(id, "started",
                     core::JsonObject().add("attempt", job->attempts).add("pid", MyProcPid).add("run_as", job->run_as_name).str());
    worker_commit();

    current_job_id = id;
    become_role(job->run_as, "job " + std::to_string(id));
    const std::string result = job->kind == "replay" ? run_pipeline(*job) : run_step(*job);

    worker_begin(job_label(id) + ": finishing");
    const uint64_t updated = spi_run_as_owner("UPDATE viewmig.jobs SET status = 'succeeded', finished_at = now(), "
                                              "result = $2::jsonb, last_error = NULL, worker_pid = NULL "
                                              "WHERE id = $1 AND status = 'running'",
                                              {int8_param(id), text_param(result)})
                                 .processed;
    if (updated) record_job_event(id, "succeeded", result);
    worker_commit();
}

namespace {

// A replay pipeline that fails for good ends the replay it prepared, which would otherwise block
// every other replay (only one may be active) until its owner or a superuser aborts it. The job
// forgets the replay, so retry_job() starts over with prepare_initial. Left alone when a step of
// someone else holds the step lock (it is in use). Returns the aborted replay's id.
std::optional<int64_t> end_pipeline_replay(const Job& job) {
    if (job.kind != "replay" || !job.replay_id) return std::nullopt;
    try {
        return in_subtransaction([&]() -> std::optional<int64_t> {
            lock_replay_steps("abort");
            const std::optional<Replay> active = find_active_replay(true);
            if (!active || active->id != *job.replay_id) return std::nullopt;
            abort_replay(*active);
            spi_run_as_owner("UPDATE viewmig.jobs SET replay_id = NULL WHERE id = $1", {int8_param(job.id)});
            return active->id;
        });
    } catch (const std::exception& e) {
        ereport(WARNING, (errmsg("viewmig job %lld failed for good and could not abort its replay %lld: %s",
                                 static_cast<long long>(job.id), static_cast<long long>(*job.replay_id), e.what()),
                          errhint("End it with SELECT viewmig.abort(); or continue it with SELECT viewmig.retry_job(%lld);",
                                  static_cast<long long>(job.id))));
        return std::nullopt;
    }
}

}  // namespace

void record_job_failure(int64_t id, const JobFailure& f) {
    worker_begin(job_label(id) + ": recording its failure");
    const std::optional<Job> job = find_job(id, true);
    if (!job || job->status != "running" || job->worker_pid.value_or(MyProcPid) != MyProcPid) {
        worker_commit();
        return;
    }
    core::JsonObject details;
    details.add("error", f.message).add("sqlstate", f.sqlstate).add("attempt", job->attempts);
    if (!f.detail.empty()) details.add("detail", f.detail);
    if (!f.hint.empty()) details.add("hint", f.hint);
    if (!f.context.empty()) details.add("context", f.context);
    const bool retry = core::is_retryable_sqlstate(f.sqlstate) && job->attempts < job->max_attempts;
    if (retry) {
        const int delay = core::retry_delay_seconds(job->attempts + 1, viewmig_retry_delay_s);
        details.add("retry_in_s", delay);
        spi_run_as_owner("UPDATE viewmig.jobs SET status = 'enqueued', worker_pid = NULL, last_error = $2, "
                         "run_after = now() + make_interval(secs => $3) WHERE id = $1",
                         {int8_param(id), text_param(f.message), int4_param(delay)});
        record_job_event(id, "retried", details.str());
    } else {
        if (const auto aborted = end_pipeline_replay(*job)) details.add("aborted_replay", *aborted);
        spi_run_as_owner("UPDATE viewmig.jobs SET status = 'failed', worker_pid = NULL, last_error = $2, finished_at = now() "
                         "WHERE id = $1",
                         {int8_param(id), text_param(f.message)});
        record_job_event(id, "failed", details.str());
    }
    worker_commit();
}

}  // namespace viewmig::pg
