// Argument checks shared by the replay steps and viewmig.enqueue() (see step_args.hpp).
#include "pg/step_args.hpp"

#include "core/schema_rules.hpp"
#include "pg/catalog.hpp"
#include "pg/gucs.hpp"
#include "pg/guard.hpp"
#include "pg/owned_schemas.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/errcodes.h"
}

#include <string>

namespace viewmig::pg {

int32_t check_batch_size(std::optional<int32_t> value) {
    const int32_t batch_size = value.value_or(viewmig_batch_size);
    if (batch_size <= 0)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "batch_size must be positive, not " + std::to_string(batch_size))
            .hint("Pass NULL to use viewmig.batch_size (" + std::to_string(viewmig_batch_size) + ").");
    return batch_size;
}

int check_workers(std::optional<int32_t> value) {
    if (!value) return 1;
    const int workers = *value;
    if (workers < 1)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "workers must be at least 1, not " + std::to_string(workers))
            .hint("Pass workers => 1 (or leave it out) for one worker.");
    if (workers > max_worker_processes)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "workers => " + std::to_string(workers) +
                                                             " is more than max_worker_processes")
            .detail("max_worker_processes is " + std::to_string(max_worker_processes) + ".")
            .hint("Use fewer workers, or raise max_worker_processes (needs a restart).");
    return workers;
}

int32_t resolve_batch_size(FunctionCallInfo fcinfo) {
    return check_batch_size(PG_ARGISNULL(0) ? std::nullopt : std::optional<int32_t>(PG_GETARG_INT32(0)));
}

int resolve_workers(FunctionCallInfo fcinfo) {
    return check_workers(PG_ARGISNULL(1) ? std::nullopt : std::optional<int32_t>(PG_GETARG_INT32(1)));
}

namespace {

void check_schema_name(const std::string& name, const char* purpose, const EventStore& es, const std::string& view_schema,
                       const std::string& other) {
    core::SchemaRoles roles{view_schema, es.schema, other};
    if (auto reason = core::forbidden_schema_reason(name, roles))
        throw UserError(ERRCODE_INVALID_SCHEMA_NAME,
                        "schema " + quote_ident(name) + " can not be the " + purpose + " schema: " + *reason)
            .hint(std::string("Pass another name, e.g. viewmig.prepare_initial(") + purpose + "_schema => '" + purpose +
                  "_schema').");
    require_ours_or_absent(name, purpose);
}

}  // namespace

void check_prepare_arguments(const std::optional<std::vector<std::string>>& projectors, const std::string& replay_schema,
                             const std::string& archive_schema) {
    const EventStore es = load_event_store();
    const std::vector<ProjectorVersion> versions = load_projectors_for_replay(projectors);
    const std::string& view_schema = versions.front().view_schema;
    check_schema_name(replay_schema, "replay", es, view_schema, archive_schema);
    check_schema_name(archive_schema, "archive", es, view_schema, replay_schema);
}

}  // namespace viewmig::pg
