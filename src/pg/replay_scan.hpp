// The replay's hot loop: reads events of one range in (aggregate_id, sequence_number) order and
// calls each interested projector's handler directly through fmgr — no per-event SQL, no
// per-event planning — as each projector's owner, with the replay schema before the view schema in
// its search_path (projector_rights.hpp), so handlers write to the replay tables by unqualified names. Used by the initial replay (one call per group), by
// increments and by complete()'s final increment.
#pragma once

#include "core/event_router.hpp"
#include "pg/catalog.hpp"
#include "pg/spi.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace viewmig::pg {

struct ReplayTarget {
    std::vector<std::string> projector_names;
    std::vector<Oid> handlers;  // by projector index, as in the router
    std::vector<bool> batch;    // by projector index: called with arrays of events of whole aggregates
    core::EventRouter router;
    std::string target_schema;
    // By projector index: the role its handler runs as (InvalidOid: the current user, who owns
    // it) and its search_path (handler_search_path; see projector_rights.hpp).
    std::vector<Oid> run_as;
    std::vector<std::string> search_paths;

    // Checks that each projector's owner may still run it (ERROR otherwise).
    static ReplayTarget for_projectors(const std::vector<ProjectorVersion>& projectors, std::string target_schema);
};

// Events with lower <= aggregate_id < upper (lower < aggregate_id when lower_exclusive; open where
// absent) and xact_lower <= xact_id < xact_upper (no lower bound where absent).
struct EventRange {
    std::optional<std::string> aggregate_lower, aggregate_upper;
    std::optional<int64_t> xact_lower;
    int64_t xact_upper = 0;
    bool lower_exclusive = false;
    bool upper_inclusive = false;  // aggregate_id <= upper
    // Stop at the first aggregate boundary after this many events (0: read the whole range).
    uint64_t stop_after = 0;
    // With stop_after: also stop at an aggregate boundary, after at least one event, when this
    // says so (e.g. another worker waits for a row this transaction holds). Called between events,
    // outside any handler; it must not throw or raise.
    bool (*stop_early)(void* arg) = nullptr;
    void* stop_early_arg = nullptr;
};

struct ReplayedRange {
    uint64_t events = 0;
    std::optional<std::string> last_aggregate;  // the last aggregate replayed, whole
    bool complete = true;                       // false when stop_after ended the scan early
};

// Replays the range into the target. Batch projectors get the events of whole aggregates as one
// array per about viewmig.handler_batch_size events, in order. Runs in the current transaction (the caller decides when to
// commit). A handler ERROR propagates as PgError with the event's aggregate_id, sequence_number
// and event_type in its context.
ReplayedRange replay_range(const EventStore& es, const ReplayTarget& target, const EventRange& range);

// " FROM <events> e WHERE <the range> ORDER BY aggregate_id, sequence_number", its parameters
// appended to `params` (event_types: only those types; nullopt: all).
std::string event_range_sql(const EventStore& es, const EventRange& range,
                            const std::optional<std::vector<std::string>>& event_types, std::vector<SqlParam>& params);

// The current session's search_path setting.
std::string current_search_path();

}  // namespace viewmig::pg
