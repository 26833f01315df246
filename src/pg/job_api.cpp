// The job queue's SQL API: viewmig.enqueue(), viewmig.cancel_job(), viewmig.retry_job().
// A job runs with the rights of the role that enqueued it, so enqueuing needs no privilege of
// its own; cancelling or retrying someone's job needs that role's privileges.
#include "core/json_text.hpp"
#include "core/jobs.hpp"
#include "pg/commit_actions.hpp"
#include "pg/guard.hpp"
#include "pg/job_queue.hpp"
#include "pg/spi.hpp"
#include "pg/step_args.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
}

using namespace viewmig;
using namespace viewmig::pg;

namespace {

// ERROR naming the bad key or value; every key must be an argument of the kind and its value
// must convert to the argument's type (checked now, not when the job runs hours later).
void check_arguments(const core::JobKind& kind, const SqlParam& arguments) {
    if (spi_value("SELECT jsonb_typeof($1::jsonb)", {arguments}) != "object")
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "the arguments of a job must be a JSON object")
            .hint("For example: SELECT viewmig.enqueue('replay', '{\"workers\": 2}');");
    const auto keys = parse_text_array(spi_value("SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys($1::jsonb) k", {arguments}));
    for (const std::string& key : keys) {
        const core::JobArg* arg = core::find_arg(kind, key);
        if (!arg) {
            const std::string accepted = core::arg_names(kind);
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                            "job kind \"" + std::string(kind.name) + "\" takes no argument \"" + key + "\"")
                .hint(accepted.empty() ? "This kind takes no arguments: pass '{}'." : "Its arguments are: " + accepted + ".");
        }
        if (arg->type == core::ArgType::TextArray &&
            spi_value("SELECT jsonb_typeof($1::jsonb -> $2) IN ('array', 'null')", {arguments, text_param(key)}) != "t")
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "argument \"" + key + "\" must be a JSON array of strings")
                .hint("For example: {\"" + key + "\": [\"blog\"]}");
        try {
            in_subtransaction([&] { spi_value("SELECT (" + core::arg_expression(*arg, 1) + ")::text", {arguments}); });
        } catch (const PgError& e) {
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "argument \"" + key + "\" of job kind \"" +
                                                                 std::string(kind.name) + "\" is not valid: " + e.what());
        }
    }
}

// ERROR (with a HINT) for a value the job's step would refuse, checked with the steps' own checks
// (step_args.hpp) so that a job never fails hours later -- a replay pipeline after having prepared
// a replay -- on a value refused now. The replay state is not checked: it changes until the job runs.
void check_values(const core::JobKind& kind, const SqlParam& arguments) {
    auto has_key = [&](std::string_view key) {
        return to_bool(spi_value("SELECT $1::jsonb ? $2", {arguments, text_param(std::string(key))}));
    };
    // The value the step gets (nullopt: NULL, or the key is absent and the step's default applies).
    auto value = [&](std::string_view key) -> std::optional<std::string> {
        const core::JobArg* arg = core::find_arg(kind, key);
        if (!arg || !has_key(key)) return std::nullopt;
        return spi_value("SELECT (" + core::arg_expression(*arg, 1) + ")::text", {arguments});
    };
    auto int_value = [&](std::string_view key) -> std::optional<int32_t> {
        const auto v = value(key);
        if (!v) return std::nullopt;
        return static_cast<int32_t>(std::stol(*v));
    };
    auto with_key = [&](std::string_view key, auto check) {
        try {
            check();
        } catch (const UserError& e) {
            throw UserError(e.sqlstate(), "argument \"" + std::string(key) + "\" of job kind \"" + std::string(kind.name) +
                                              "\" is not valid: " + e.message())
                .detail(e.detail_text())
                .hint(e.hint_text().empty() ? "Enqueue the job again with a valid value." : e.hint_text());
        }
    };
    if (core::find_arg(kind, "batch_size")) with_key("batch_size", [&] { check_batch_size(int_value("batch_size")); });
    if (core::find_arg(kind, "workers")) with_key("workers", [&] { check_workers(int_value("workers")); });
    for (const std::string_view key : {"lag_threshold", "max_increments"})
        if (const auto v = core::find_arg(kind, key) ? int_value(key) : std::nullopt)
            if (const auto error = core::pipeline_option_error(key, *v))
                throw UserError(ERRCODE_INVALID_PARAMETER_VALUE,
                                "argument \"" + std::string(key) + "\" of job kind \"" + std::string(kind.name) + "\" is not valid: " + *error)
                    .hint("Leave it out for its default (lag_threshold 1000, max_increments 20).");
    if (core::find_arg(kind, "replay_schema")) {
        std::optional<std::vector<std::string>> projectors;
        if (const auto p = value("projectors")) projectors = parse_text_array(p);
        std::string schemas[2] = {kDefaultReplaySchema, kDefaultArchiveSchema};
        const char* keys[2] = {"replay_schema", "archive_schema"};
        for (int i = 0; i < 2; ++i) {
            if (!has_key(keys[i])) continue;
            const auto v = value(keys[i]);
            if (!v)
                throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "argument \"" + std::string(keys[i]) + "\" of job kind \"" +
                                                                    std::string(kind.name) + "\" must not be null")
                    .hint("Leave it out for its default (" + schemas[i] + ").");
            schemas[i] = *v;
        }
        check_prepare_arguments(projectors, schemas[0], schemas[1]);
    }
}

// The job the current user may act on; ERROR when there is none or the user lacks the rights.
Job require_own_job(int64_t id, const char* action) {
    std::optional<Job> job = find_job(id, true);
    if (!job)
        throw UserError(ERRCODE_UNDEFINED_OBJECT, "there is no viewmig job " + std::to_string(id))
            .hint("SELECT id, kind, status FROM viewmig.jobs ORDER BY id DESC; lists the jobs.");
    const Oid run_as = job->run_as;
    if (!pg_call([&] { return has_privs_of_role(GetUserId(), run_as); }))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, std::string("permission denied to ") + action + " viewmig job " +
                                                            std::to_string(id))
            .detail("The job runs as role " + job->run_as_name + ".")
            .hint("Only members of that role (and superusers) may " + std::string(action) + " it.");
    return *job;
}

void wake_launcher_at_commit(int64_t job) {
    if (const pid_t launcher = find_launcher_pid()) {
        at_commit_wake(launcher);
        return;
    }
    const std::string db = *spi_value("SELECT current_database()");
    ereport(WARNING, (errmsg("no viewmig launcher serves database \"%s\": job %lld will not start by itself", db.c_str(),
                             static_cast<long long>(job)),
                      errhint("Set shared_preload_libraries = 'viewmig' and add \"%s\" to viewmig.database, then restart "
                              "the server. Until then run the steps yourself, e.g. SELECT viewmig.replay_initial();",
                              db.c_str())));
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(viewmig_enqueue);
PGDLLEXPORT Datum viewmig_enqueue(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.enqueue()");
        const std::string kind_name = text_to_cstring(PG_GETARG_TEXT_PP(0));
        const core::JobKind* kind = core::find_job_kind(kind_name);
        if (!kind)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "unknown viewmig job kind \"" + kind_name + "\"")
                .hint("Job kinds are: " + core::job_kind_names() + ".");
        const int32_t max_attempts = PG_GETARG_INT32(2);
        if (max_attempts < 1)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "max_attempts must be at least 1, not " + std::to_string(max_attempts));
        spi_connect();
        const SqlParam arguments = arg_param(fcinfo, 1);
        check_arguments(*kind, arguments);
        check_values(*kind, arguments);
        QueryResult r;
        try {
            r = in_subtransaction([&] {
                return spi_run_as_owner("INSERT INTO viewmig.jobs (kind, lane, arguments, run_as, max_attempts) "
                                        "VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING id",
                                        {text_param(kind_name), text_param(std::string(kind->lane)), arguments,
                                         oid_param(GetUserId()), int4_param(max_attempts)});
            });
        } catch (const PgError& e) {
            if (e.edata()->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) throw;
            const auto other = spi_value("SELECT id FROM viewmig.jobs WHERE kind = 'replay' AND status IN ('enqueued', 'running')");
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "a replay job is already queued or running (job " +
                                                                           other.value_or("?") + ")")
                .detail("Only one replay may be active at a time.")
                .hint("Wait for it, or SELECT viewmig.cancel_job(" + other.value_or("id") + ");");
        }
        const int64_t id = to_int8(r.rows.at(0)[0]);
        record_job_event(id, "enqueued",
                         core::JsonObject().add("kind", kind_name).add("by", GetUserNameFromId(GetUserId(), false)).str());
        wake_launcher_at_commit(id);
        spi_finish();
        PG_RETURN_INT64(id);
    });
}

PG_FUNCTION_INFO_V1(viewmig_cancel_job);
PGDLLEXPORT Datum viewmig_cancel_job(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.cancel_job()");
        const int64_t id = PG_GETARG_INT64(0);
        spi_connect();
        const Job job = require_own_job(id, "cancel");
        if (job.status != "enqueued" && job.status != "running") {
            ereport(NOTICE, (errmsg("viewmig job %lld already ended (%s)", static_cast<long long>(id), job.status.c_str())));
            spi_finish();
            PG_RETURN_BOOL(false);
        }
        spi_run_as_owner("UPDATE viewmig.jobs SET status = 'cancelled', finished_at = now() WHERE id = $1", {int8_param(id)});
        core::JsonObject details;
        details.add("by", GetUserNameFromId(GetUserId(), false)).add("was", job.status);
        if (job.worker_pid) details.add("pid", *job.worker_pid);
        record_job_event(id, "cancelled", details.str());
        // Its backend stops once this commits: stopping it earlier would look like a crash.
        if (job.status == "running" && job.worker_pid) at_commit_terminate(*job.worker_pid);
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}

PG_FUNCTION_INFO_V1(viewmig_retry_job);
PGDLLEXPORT Datum viewmig_retry_job(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.retry_job()");
        const int64_t id = PG_GETARG_INT64(0);
        spi_connect();
        const Job job = require_own_job(id, "retry");
        if (job.status != "failed" && job.status != "cancelled")
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "viewmig job " + std::to_string(id) + " is " + job.status + ", not failed or cancelled")
                .hint(job.status == "succeeded" ? "Enqueue a new job to run it again." : "Only an ended job can be retried.");
        try {
            in_subtransaction([&] {
                spi_run_as_owner("UPDATE viewmig.jobs SET status = 'enqueued', attempts = 0, run_after = now(), "
                                 "started_at = NULL, finished_at = NULL, worker_pid = NULL WHERE id = $1",
                                 {int8_param(id)});
            });
        } catch (const PgError& e) {
            if (e.edata()->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) throw;
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "another replay job is already queued or running")
                .detail("Only one replay may be active at a time.");
        }
        record_job_event(id, "retried", core::JsonObject().add("by", GetUserNameFromId(GetUserId(), false)).str());
        wake_launcher_at_commit(id);
        spi_finish();
        PG_RETURN_BOOL(true);
    });
}

}  // extern "C"
