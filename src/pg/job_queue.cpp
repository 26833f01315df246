// Reading jobs and recording their events (see job_queue.hpp).
#include "pg/job_queue.hpp"

#include "bgw/launcher.hpp"
#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "utils/backend_status.h"
}

#include <cstring>

namespace viewmig::pg {

std::optional<Job> find_job(int64_t id, bool for_update) {
    QueryResult r = spi_run_as_owner(
        "SELECT kind, lane, status, arguments::text, run_as::oid, coalesce(r.rolname::text, j.run_as::oid::text), "
        "attempts, max_attempts, worker_pid, replay_id "
        "FROM viewmig.jobs j LEFT JOIN pg_roles r ON r.oid = j.run_as WHERE j.id = $1" +
            std::string(for_update ? " FOR UPDATE OF j" : ""),
        {int8_param(id)});
    if (r.rows.empty()) return std::nullopt;
    const Row& row = r.rows[0];
    Job job;
    job.id = id;
    job.kind = *row[0];
    job.lane = *row[1];
    job.status = *row[2];
    job.arguments = *row[3];
    job.run_as = static_cast<Oid>(std::stoul(*row[4]));
    job.run_as_name = *row[5];
    job.attempts = static_cast<int>(to_int8(row[6]));
    job.max_attempts = static_cast<int>(to_int8(row[7]));
    if (row[8]) job.worker_pid = static_cast<int>(to_int8(row[8]));
    if (row[9]) job.replay_id = to_int8(row[9]);
    return job;
}

void record_job_event(int64_t job, const std::string& event, const std::string& details) {
    spi_run_as_owner("SELECT viewmig.record_job_event($1, $2, $3::jsonb)",
                     {int8_param(job), text_param(event), text_param(details)});
}

void record_job_progress(int64_t job, const std::string& progress) {
    spi_run_as_owner("UPDATE viewmig.jobs SET progress = $2::jsonb WHERE id = $1", {int8_param(job), text_param(progress)});
    record_job_event(job, "progress", progress);
}

pid_t find_launcher_pid() {
    return pg_call([]() -> pid_t {
        const int n = pgstat_fetch_stat_numbackends();
        for (int i = 1; i <= n; ++i) {
            LocalPgBackendStatus* local = pgstat_fetch_stat_local_beentry(i);
            if (local == nullptr) continue;
            const PgBackendStatus& be = local->backendStatus;
            if (be.st_backendType != B_BG_WORKER || be.st_databaseid != MyDatabaseId) continue;
            const char* type = GetBackgroundWorkerTypeByPid(be.st_procpid);
            if (type != nullptr && strcmp(type, bgw::kLauncherType) == 0) return be.st_procpid;
        }
        return 0;
    });
}

}  // namespace viewmig::pg
