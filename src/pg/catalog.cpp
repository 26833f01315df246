// viewmig catalog readers (see catalog.hpp).
#include "pg/catalog.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/errcodes.h"
#include "utils/lsyscache.h"
}

namespace viewmig::pg {

std::string EventStore::qualified() const { return quote_qualified(schema, table); }

std::string EventStore::xact_bound_param(int n) const {
    const std::string p = "$" + std::to_string(n);
    return xact_id_type == "xid8" ? "(" + p + "::text::xid8)" : p;
}

std::optional<EventStore> find_event_store() {
    QueryResult r = spi_run(
        "SELECT s.events::oid, n.nspname, c.relname, s.aggregate_id_column, s.sequence_number_column, "
        "       s.event_type_column, s.xact_id_column, "
        "       (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a "
        "         WHERE a.attrelid = c.oid AND a.attname = s.aggregate_id_column AND NOT a.attisdropped), "
        "       (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a "
        "         WHERE a.attrelid = c.oid AND a.attname = s.xact_id_column AND NOT a.attisdropped), "
        "       c.reltype "
        "FROM viewmig.event_store s JOIN pg_class c ON c.oid = s.events JOIN pg_namespace n ON n.oid = c.relnamespace");
    if (r.rows.empty()) return std::nullopt;
    const Row& row = r.rows[0];
    EventStore es;
    es.events = static_cast<Oid>(std::stoul(*row[0]));
    es.schema = *row[1];
    es.table = *row[2];
    es.aggregate_id_column = *row[3];
    es.sequence_number_column = *row[4];
    es.event_type_column = *row[5];
    es.xact_id_column = *row[6];
    if (!row[7] || !row[8])
        throw UserError(ERRCODE_UNDEFINED_COLUMN, "the event table " + es.qualified() + " lost a column viewmig reads")
            .hint("Call viewmig.set_event_store() again with the current column names.");
    es.aggregate_id_type = *row[7];
    es.xact_id_type = *row[8];
    es.rowtype = static_cast<Oid>(std::stoul(*row[9]));
    return es;
}

EventStore load_event_store() {
    auto es = find_event_store();
    if (!es)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "no event store is set")
            .hint("Call viewmig.set_event_store('your_events_table') first.");
    return *es;
}

namespace {
const char* kProjectorColumns =
    "SELECT projector, version, handler::text, handler::oid, view_schema, managed_tables::text, "
    "       additional_replay_indexes::text, event_types::text, live, status, mode = 'batch', "
    "       rules::text, json_column, owner::oid, search_path "
    "FROM viewmig.projector_versions ";

ProjectorVersion to_projector(const Row& row) {
    ProjectorVersion p;
    p.projector = *row[0];
    p.version = static_cast<int>(to_int8(row[1]));
    p.handler = *row[2];
    p.handler_oid = static_cast<Oid>(std::stoul(*row[3]));
    p.view_schema = *row[4];
    p.managed_tables = parse_text_array(row[5]);
    p.additional_replay_indexes = parse_text_array(row[6]);
    if (row[7]) p.event_types = parse_text_array(row[7]);
    p.live = to_bool(row[8]);
    p.status = *row[9];
    p.batch = to_bool(row[10]);
    p.rules = row[11];
    p.json_column = row[12].value_or("");
    p.owner = row[13] ? static_cast<Oid>(std::stoul(*row[13])) : InvalidOid;
    p.search_path = row[14].value_or("");
    return p;
}
}  // namespace

std::vector<ProjectorVersion> load_projectors_for_replay(const std::optional<std::vector<std::string>>& names) {
    // DISTINCT ON picks the pending version over the active one ('pending' > 'active').
    QueryResult r = spi_run(std::string("SELECT * FROM (SELECT DISTINCT ON (projector) * FROM (") + kProjectorColumns +
                                "WHERE status IN ('active', 'pending') AND ($1::text[] IS NULL OR projector = ANY($1))) v "
                                "ORDER BY projector, status DESC) p ORDER BY projector",
                            {text_array_param(names)});
    std::vector<ProjectorVersion> out;
    for (const Row& row : r.rows) out.push_back(to_projector(row));
    if (names) {
        for (const std::string& n : *names) {
            bool found = false;
            for (const auto& p : out) found = found || p.projector == n;
            if (!found)
                throw UserError(ERRCODE_UNDEFINED_OBJECT, "projector \"" + n + "\" is not registered")
                    .hint("Register it with viewmig.register_projector(), or see SELECT projector FROM viewmig.projector_versions.");
        }
    }
    if (out.empty())
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "no projector is registered")
            .hint("Register one with viewmig.register_projector(name, handler, managed_tables).");
    return out;
}

std::vector<ProjectorVersion> load_projector_versions(const std::vector<std::string>& names,
                                                      const std::vector<int>& versions) {
    std::vector<ProjectorVersion> out;
    for (std::size_t i = 0; i < names.size(); ++i) {
        QueryResult r = spi_run(std::string(kProjectorColumns) + "WHERE projector = $1 AND version = $2",
                                {text_param(names[i]), int4_param(versions[i])});
        if (r.rows.empty())
            throw UserError(ERRCODE_UNDEFINED_OBJECT, "projector \"" + names[i] + "\" version " +
                                                          std::to_string(versions[i]) + " disappeared");
        out.push_back(to_projector(r.rows[0]));
    }
    return out;
}

namespace {
const char* kReplayColumns =
    "SELECT id, state, projectors::text, versions::text, view_schema, replay_schema, archive_schema, "
    "       managed_tables::text, batch_size, initial_bound, replayed_bound, events_total, events_done, kind, target_version, "
    "       increment_upper "
    "FROM viewmig.replays ";

Replay to_replay(const Row& row) {
    Replay r;
    r.id = to_int8(row[0]);
    r.state = *core::parse_replay_state(*row[1]);
    r.projectors = parse_text_array(row[2]);
    for (const auto& v : parse_text_array(row[3])) r.versions.push_back(std::stoi(v));
    r.view_schema = *row[4];
    r.replay_schema = *row[5];
    r.archive_schema = *row[6];
    r.managed_tables = parse_text_array(row[7]);
    auto opt = [](const std::optional<std::string>& v) -> std::optional<int64_t> {
        if (!v) return std::nullopt;
        return std::stoll(*v);
    };
    r.batch_size = opt(row[8]);
    r.initial_bound = opt(row[9]);
    r.replayed_bound = opt(row[10]);
    r.events_total = opt(row[11]);
    r.events_done = to_int8(row[12]);
    r.view_schema_migration = *row[13] == "view_schema";
    r.target_version = opt(row[14]);
    r.increment_upper = opt(row[15]);
    return r;
}
}  // namespace

std::optional<Replay> find_active_replay(bool for_update) {
    std::string sql = std::string(kReplayColumns) + "WHERE state NOT IN ('completed', 'aborted')";
    // Row locks need UPDATE rights on the catalog, which only the extension owner has.
    QueryResult r = for_update ? spi_run_as_owner(sql + " FOR UPDATE") : spi_run(sql);
    if (r.rows.empty()) return std::nullopt;
    return to_replay(r.rows[0]);
}

Replay load_replay(int64_t id) {
    QueryResult r = spi_run(std::string(kReplayColumns) + "WHERE id = $1", {int8_param(id)});
    if (r.rows.empty())
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, "replay " + std::to_string(id) + " is not visible")
            .hint("COMMIT the transaction that called viewmig.prepare_initial() before replaying.");
    return to_replay(r.rows[0]);
}

void require_table_owner_rights(const std::string& view_schema, const std::string& table, const std::string& purpose) {
    const std::string qualified = quote_qualified(view_schema, table);
    // In C, not SQL: no function or operator a caller controls can answer a rights check.
    Oid relid = InvalidOid;
    char relkind = 0;
    pg_call([&] {
        const Oid nsp = get_namespace_oid(view_schema.c_str(), true);
        relid = OidIsValid(nsp) ? get_relname_relid(table.c_str(), nsp) : InvalidOid;
        if (OidIsValid(relid)) relkind = get_rel_relkind(relid);
    });
    if (!OidIsValid(relid) || relkind != RELKIND_RELATION)
        throw UserError(ERRCODE_UNDEFINED_TABLE, "managed table " + qualified + " does not exist")
            .hint("Create it in the view schema, or register the projector again with its current tables.");
    if (!pg_call([&] { return pg_class_ownercheck(relid, GetUserId()); }))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "must be owner of table " + qualified + " to " + purpose)
            .hint("Run the replay as the owner of the view tables (or a member of that role).");
}

void require_replay_owner_rights(const Replay& replay, core::ReplayStep step) {
    for (const std::string& table : replay.managed_tables)
        require_table_owner_rights(replay.view_schema, table,
                                   "run viewmig." + std::string(core::to_string(step)) + "() on replay " + std::to_string(replay.id));
}

void finish_replay(const Replay& replay) {
    for (std::size_t i = 0; i < replay.projectors.size(); ++i) {
        const std::vector<SqlParam> key = {text_param(replay.projectors[i]), int4_param(replay.versions[i])};
        spi_run_as_owner("UPDATE viewmig.projector_versions SET status = 'retired' "
                         "WHERE projector = $1 AND status = 'active' AND version <> $2", key);
        spi_run_as_owner("UPDATE viewmig.projector_versions SET status = 'active', activated_at = now() "
                         "WHERE projector = $1 AND version = $2", key);
    }
    spi_run_as_owner("UPDATE viewmig.replays SET state = 'completed', finished_at = now(), updated_at = now(), "
                     "last_error = NULL WHERE id = $1", {int8_param(replay.id)});
}

void refuse_view_schema_migration(const Replay& replay, const char* step) {
    if (!replay.view_schema_migration) return;
    throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                    std::string("cannot run viewmig.") + step + "(): the active replay " + std::to_string(replay.id) +
                        " is a view-schema migration to version " + std::to_string(replay.target_version.value_or(0)))
        .hint("Finish it with viewmig.migrate_offline(), or drop it with viewmig.rollback_migration().");
}

std::optional<Replay> require_step(core::ReplayStep step, bool for_update) {
    std::optional<Replay> active = find_active_replay(for_update);
    std::optional<core::ReplayState> state;
    if (active) state = active->state;
    core::StepVerdict verdict = core::check_step(step, state);
    if (!verdict.allowed)
        throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                        "cannot run viewmig." + std::string(core::to_string(step)) + "(): " + verdict.message)
            .hint(verdict.hint.empty() ? "" : ([](std::string h) { h[0] = static_cast<char>(std::toupper(h[0])); return h + "."; })(verdict.hint));
    if (active) require_replay_owner_rights(*active, step);
    return active;
}

}  // namespace viewmig::pg
