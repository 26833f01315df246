// Reading viewmig's own catalog (event store, projector versions, the active replay) into plain
// C++ structs, so the lifecycle steps never parse catalog rows themselves.
#pragma once

#include "core/replay_state.hpp"
#include "pg/pg_headers.hpp"

#include <optional>
#include <string>
#include <vector>

namespace viewmig::pg {

struct EventStore {
    Oid events = InvalidOid;
    std::string schema, table;  // unquoted
    std::string aggregate_id_column, sequence_number_column, event_type_column, xact_id_column;
    std::string aggregate_id_type;  // format_type(), e.g. "uuid"
    std::string xact_id_type;       // "bigint" or "xid8"
    Oid rowtype = InvalidOid;

    std::string qualified() const;
    // SQL expression of type `xact_id_type` for a bigint parameter $n.
    std::string xact_bound_param(int n) const;
};

struct ProjectorVersion {
    std::string projector;
    int version = 0;
    std::string handler;  // regprocedure text
    Oid handler_oid = InvalidOid;
    std::string view_schema;
    std::vector<std::string> managed_tables;
    std::vector<std::string> additional_replay_indexes;
    std::optional<std::vector<std::string>> event_types;
    bool live = false;
    bool batch = false;  // mode 'batch': the handler takes an array of events of whole aggregates
    // mode 'declarative': the rules (jsonb text) and the event JSON column they read; `handler` is
    // the PL/pgSQL function generated from them.
    std::optional<std::string> rules;
    std::string json_column;
    std::string status;
    // The role that registered the projector first: its handler runs as that role, with the
    // target schema and then `search_path` (the registering session's) as search_path.
    Oid owner = InvalidOid;
    std::string search_path;
};

struct Replay {
    int64_t id = 0;
    core::ReplayState state{};
    std::vector<std::string> projectors;
    std::vector<int> versions;
    std::string view_schema, replay_schema, archive_schema;
    std::vector<std::string> managed_tables;
    std::optional<int64_t> batch_size, initial_bound, replayed_bound, events_total;
    int64_t events_done = 0;
    // A versioned view-schema migration (migrate_online): replay_schema holds views onto the
    // view schema's <table>_<target_version> tables; migrate_offline swaps by renaming.
    bool view_schema_migration = false;
    std::optional<int64_t> target_version;
    // The end of an unfinished replay_increment(workers => N) window (parallel_increment.cpp).
    std::optional<int64_t> increment_upper;
};

// ERROR with a HINT to call set_event_store when none is set.
EventStore load_event_store();
std::optional<EventStore> find_event_store();

// The version a replay should build for each projector: the pending one if any, else the active.
std::vector<ProjectorVersion> load_projectors_for_replay(const std::optional<std::vector<std::string>>& names);
// The versions a replay recorded at prepare time.
std::vector<ProjectorVersion> load_projector_versions(const std::vector<std::string>& names, const std::vector<int>& versions);

std::optional<Replay> find_active_replay(bool for_update);
Replay load_replay(int64_t id);

// ERROR unless view_schema.table exists and the caller has its owner's rights (the swap needs
// them); `purpose` completes "must be owner of table X to ...".
void require_table_owner_rights(const std::string& view_schema, const std::string& table, const std::string& purpose);

void require_replay_owner_rights(const Replay& replay, core::ReplayStep step);

// Marks the replay completed and its projector versions active (retiring the versions they replace).
void finish_replay(const Replay& replay);

// ERROR for lifecycle steps that do not apply to a view-schema migration (it ends with migrate_offline).
void refuse_view_schema_migration(const Replay& replay, const char* step);

// ERROR naming the step to call when `step` is not allowed in the active replay's state.
// Other steps also need the owner's rights on the replay's tables.
// Returns the active replay (none only for PrepareInitial).
std::optional<Replay> require_step(core::ReplayStep step, bool for_update = true);

}  // namespace viewmig::pg
