// Argument checks shared by the replay steps and by viewmig.enqueue(), which checks a job's
// arguments with these same functions when it is queued (not hours later, when it runs).
#pragma once

#include "pg/pg_headers.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace viewmig::pg {

// batch_size (NULL → viewmig.batch_size) must be positive. Throws UserError otherwise.
int32_t check_batch_size(std::optional<int32_t> batch_size);
// workers (NULL → 1): at least 1, at most max_worker_processes. Throws UserError otherwise.
int check_workers(std::optional<int32_t> workers);

// The same for a step's arguments 0 (batch_size) and 1 (workers).
int32_t resolve_batch_size(FunctionCallInfo fcinfo);
int resolve_workers(FunctionCallInfo fcinfo);

// prepare_initial's arguments: the projectors (NULL: all) must be registered, and the replay and
// archive schema names must be ones viewmig may create and drop (never the view or event
// schema, never a schema viewmig did not create). Needs SPI. Throws UserError otherwise.
// Defaults as in viewmig.prepare_initial().
inline constexpr const char* kDefaultReplaySchema = "replay_schema";
inline constexpr const char* kDefaultArchiveSchema = "archive_schema";
void check_prepare_arguments(const std::optional<std::vector<std::string>>& projectors, const std::string& replay_schema,
                             const std::string& archive_schema);

}  // namespace viewmig::pg
