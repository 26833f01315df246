// viewmig.jobs as C++ sees it: reading a job, appending its events (which also NOTIFY), and
// finding the launcher that serves this database. Shared by the SQL API (enqueue, cancel_job,
// retry_job), the job worker and the replay workers' progress reports.
#pragma once

#include "pg/pg_headers.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

namespace viewmig::pg {

struct Job {
    int64_t id = 0;
    std::string kind, lane, status;
    std::string arguments;  // jsonb as text
    Oid run_as = InvalidOid;
    std::string run_as_name;  // the role's name, or its OID when the role was dropped
    int attempts = 0, max_attempts = 0;
    std::optional<int> worker_pid;
    std::optional<int64_t> replay_id;
};

// The job, read as the extension owner; FOR UPDATE when asked. nullopt when there is none.
std::optional<Job> find_job(int64_t id, bool for_update);

// Appends to viewmig.job_events and sends NOTIFY viewmig (both at commit); `details` is JSON.
void record_job_event(int64_t job, const std::string& event, const std::string& details = "{}");

// Sets the job's progress (JSON) and records a 'progress' event.
void record_job_progress(int64_t job, const std::string& progress);

// The pid of the launcher serving the current database, 0 when none runs.
pid_t find_launcher_pid();

}  // namespace viewmig::pg
