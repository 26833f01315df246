// Checks and version recording shared by both registration functions (see projector_registration.hpp).
#include "pg/projector_registration.hpp"

#include "pg/guard.hpp"
#include "pg/live_projection.hpp"
#include "pg/projector_rights.hpp"
#include "pg/replay_scan.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/acl.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {

// Returns the view schema and the table names (in the given order).
std::pair<std::string, std::vector<std::string>> check_managed_tables(const EventStore& es, const SqlParam& tables) {
    QueryResult r = spi_run(
        "SELECT u.t::oid, n.nspname, c.relname, c.relkind::text "
        "FROM unnest($1::regclass[]) WITH ORDINALITY u(t, ord) "
        "LEFT JOIN pg_class c ON c.oid = u.t LEFT JOIN pg_namespace n ON n.oid = c.relnamespace ORDER BY u.ord",
        {tables});
    if (r.rows.empty())
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "a projector needs at least one managed table");
    std::string view_schema;
    std::vector<std::string> names;
    for (const Row& row : r.rows) {
        if (!row[0]) throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "managed_tables must not contain NULL");
        const std::string qualified = quote_qualified(*row[1], *row[2]);
        if (static_cast<Oid>(std::stoul(*row[0])) == es.events)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "the event table " + qualified + " can not be a managed table");
        if (*row[3] != "r")
            throw UserError(ERRCODE_WRONG_OBJECT_TYPE, qualified + " is not a plain table")
                .hint("Managed tables must be ordinary tables.");
        if (view_schema.empty()) view_schema = *row[1];
        if (*row[1] != view_schema)
            throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "managed table " + qualified + " is outside the view schema " +
                                                                 quote_ident(view_schema))
                .detail("All managed tables of all projectors live in one view schema.");
        const Oid relid = static_cast<Oid>(std::stoul(*row[0]));
        if (!pg_call([&] { return pg_class_ownercheck(relid, GetUserId()); }))
            throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "must be owner of table " + qualified)
                .detail("viewmig rebuilds and swaps managed tables, which needs their owner's rights.");
        for (const auto& n : names)
            if (n == *row[2]) throw UserError(ERRCODE_DUPLICATE_OBJECT, "table " + qualified + " is listed twice");
        names.push_back(*row[2]);
    }
    return {view_schema, names};
}

void check_against_other_projectors(const std::string& projector, const std::string& view_schema,
                                    const std::vector<std::string>& tables) {
    auto other_schema = spi_value(
        "SELECT view_schema FROM viewmig.projector_versions WHERE status IN ('active', 'pending') "
        "AND projector <> $1 AND view_schema <> $2 LIMIT 1",
        {text_param(projector), text_param(view_schema)});
    if (other_schema)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "the view schema is " + quote_ident(*other_schema) +
                                                             ", but these managed tables are in " + quote_ident(view_schema))
            .detail("All managed tables of all projectors live in one view schema.");
    QueryResult taken = spi_run(
        "SELECT projector, t FROM viewmig.projector_versions, unnest(managed_tables) t "
        "WHERE status IN ('active', 'pending') AND projector <> $1 AND t = ANY($2::name[]) LIMIT 1",
        {text_param(projector), text_array_param(tables)});
    if (!taken.rows.empty())
        throw UserError(ERRCODE_DUPLICATE_OBJECT, "table " + quote_ident(*taken.rows[0][1]) +
                                                      " is already managed by projector \"" + *taken.rows[0][0] + "\"")
            .detail("Each managed table belongs to exactly one projector.");
}

void check_patterns(const SqlParam& patterns, const SqlParam& event_types) {
    if (to_bool(spi_value("SELECT $1::text[] IS NULL OR array_position($1, NULL) IS NOT NULL", {patterns})))
        throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "additional_replay_indexes must not be or contain NULL");
    // Compiling each pattern once reports an invalid regular expression now, not at prepare time.
    spi_run("SELECT '' ~ ('^(' || p || ')$') FROM unnest($1::text[]) p", {patterns});
    if (to_bool(spi_value("SELECT array_position($1::text[], NULL) IS NOT NULL", {event_types})))
        throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "event_types must not contain NULL")
            .hint("Pass NULL (not an array with NULL) to receive every event type.");
}

Oid projector_owner(const std::string& projector) {
    if (auto owner = spi_value("SELECT owner::oid FROM viewmig.projector_versions WHERE projector = $1 LIMIT 1",
                               {text_param(projector)}))
        return static_cast<Oid>(std::stoul(*owner));
    return pg_call([] { return GetUserId(); });
}

int record_projector_version(const ProjectorDefinition& d, const EventStore& es) {
    const std::vector<SqlParam> definition = {text_param(d.name),       d.handler,     text_param(d.view_schema),
                                              text_array_param(d.tables), d.indexes,   d.event_types,
                                              bool_param(d.live),       text_param(d.mode), text_param(d.rules),
                                              text_param(d.json_column)};
    const std::string same_definition =
        "projector = $1 AND handler = $2::regprocedure AND view_schema = $3 AND managed_tables = $4::name[] "
        "AND additional_replay_indexes = $5::text[] AND event_types IS NOT DISTINCT FROM $6::text[] AND live = $7 "
        "AND mode = $8 AND rules IS NOT DISTINCT FROM $9::jsonb AND json_column IS NOT DISTINCT FROM $10::name";
    const std::string& name = d.name;

    // Serialise registrations of one projector.
    spi_run("SELECT pg_advisory_xact_lock(hashtext('viewmig.register_projector'), hashtext($1))", {text_param(name)});

    // A projector belongs to the role that registered it first: only that role (or a member of it)
    // registers new versions, which then run its handlers with its rights.
    const Oid caller = pg_call([] { return GetUserId(); });
    const Oid owner = projector_owner(name);
    if (owner != caller) {
        if (!pg_call([&] { return has_privs_of_role(caller, owner); })) {
            const char* owner_name = pg_call([&] { return GetUserNameFromId(owner, true); });
            throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "projector \"" + name + "\" belongs to role " +
                                                                (owner_name ? owner_name : "(dropped)"))
                .detail("Only its owner (or a member of that role) may register new versions of it.")
                .hint("Choose another name for your projector.");
        }
    }
    // Refused now rather than at the first replay or insert: the tables' owners and the schemas
    // of the handler's search_path must be the owner's (see projector_rights.hpp).
    {
        const std::string recorded = current_search_path(), view = d.view_schema, projector = name;
        const char *recorded_c = recorded.c_str(), *view_c = view.c_str(), *projector_c = projector.c_str();
        for (const std::string& t : d.tables) {
            const char* table = t.c_str();
            pg_call([&] { check_managed_table_unguarded(view_c, table, owner, projector_c); });
        }
        pg_call([&] {
            const char* path = d.live ? handler_search_path_unguarded(owner, view_c, view_c, recorded_c) : recorded_c;
            check_trusted_search_path_unguarded(projector_c, owner, path);
        });
    }
    if (d.live && !pg_call([&] { return pg_class_aclcheck(es.events, caller, ACL_TRIGGER) == ACLCHECK_OK; }))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "permission denied to project event table " + es.qualified() + " live")
            .detail("live => true runs the handler for every event inserted into the event table, as a trigger does.")
            .hint("Ask the event table's owner for GRANT TRIGGER ON " + es.qualified() + ", or register with live => false.");
    QueryResult existing = spi_run(
        "SELECT version, status, (" + same_definition + ") FROM viewmig.projector_versions "
        "WHERE projector = $1 AND status IN ('active', 'pending') ORDER BY status DESC",
        definition);
    int version = 0;
    for (const Row& row : existing.rows) {
        if (to_bool(row[2])) {
            version = static_cast<int>(to_int8(row[0]));
            if (*row[1] == "active")  // back to the active definition: the pending change is withdrawn
                spi_run_as_owner("UPDATE viewmig.projector_versions SET status = 'retired' "
                                 "WHERE projector = $1 AND status = 'pending'", {text_param(name)});
            break;
        }
    }
    if (version == 0) {
        const bool has_active = !existing.rows.empty() && *existing.rows.back()[1] == "active";
        spi_run_as_owner("UPDATE viewmig.projector_versions SET status = 'retired' "
                         "WHERE projector = $1 AND status = 'pending'", {text_param(name)});
        std::vector<SqlParam> insert = definition;
        insert.push_back(bool_param(has_active));
        insert.push_back(oid_param(owner));
        // Recorded as it resolves now: only schemas that exist, "$user" spelled out. A schema
        // someone creates later (under the owner's name, say) never enters the handler's path.
        const std::string session_path = current_search_path();
        const char* session_c = session_path.c_str();
        insert.push_back(text_param(std::string(pg_call([&] { return resolve_search_path_unguarded(owner, session_c); }))));
        version = static_cast<int>(to_int8(spi_run_as_owner(
            "INSERT INTO viewmig.projector_versions (projector, version, handler, view_schema, managed_tables, "
            "  additional_replay_indexes, event_types, live, mode, rules, json_column, status, activated_at, owner, search_path) "
            "SELECT $1, coalesce((SELECT max(version) FROM viewmig.projector_versions WHERE projector = $1), 0) + 1, "
            "  $2::regprocedure, $3, $4::name[], $5::text[], $6::text[], $7, $8, $9::jsonb, $10::name, "
            "  CASE WHEN $11 THEN 'pending' ELSE 'active' END, CASE WHEN $11 THEN NULL ELSE now() END, $12::oid::regrole, $13 "
            "RETURNING version",
            insert).rows.at(0)[0]));
        if (has_active) {
            const std::string hint = "It becomes active when a replay that includes it completes: viewmig.prepare_initial(ARRAY[" +
                                     quote_literal(name) + "]), ..., viewmig.complete().";
            ereport(NOTICE, (errmsg("projector \"%s\" version %d is pending", name.c_str(), version),
                             errhint("%s", hint.c_str())));
        }
    }
    if (d.live) ensure_live_trigger(es);
    return version;
}

}  // namespace viewmig::pg
