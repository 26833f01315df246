// What a job worker does with its job: run one replay step, or the `replay` pipeline (prepare,
// initial replay, increments until the lag is small, prepare_completion, and complete when
// asked), each step in its own transaction so that a crash or a retry resumes where the
// committed work ends. Success, failure and retries are recorded in viewmig.jobs/job_events.
#pragma once

#include <cstdint>
#include <string>

namespace viewmig::pg {

// The job this process runs (0 when none): replay workers started for it report progress to it.
extern int64_t current_job_id;

// Runs job `id`, which the launcher marked running for attempt `attempt`. Throws on failure (the
// job is then left for record_job_failure). Does nothing when the job is no longer this
// worker's: cancelled, or claimed again (a restarted launcher) before this worker started.
void run_job(int64_t id, int attempt);

struct JobFailure {
    std::string sqlstate;  // 5 characters
    std::string message, detail, hint, context;
};

// Marks the job failed, or queues it again after a delay when the error is worth retrying and
// attempts remain. Nothing happens when the job is no longer this worker's (it was cancelled).
void record_job_failure(int64_t id, const JobFailure& failure);

}  // namespace viewmig::pg
