// Whose rights a projector's code runs with. A projector belongs to the role that registered it
// first (its owner). Its handler — code that role chose — runs as that role, never as whoever
// happens to replay, increment, complete or insert an event: like a SECURITY DEFINER function,
// and restricted like VACUUM runs a table owner's index expressions (SECURITY_RESTRICTED_OPERATION:
// no SET ROLE, no temporary objects, no cursors WITH HOLD), with its own GUC nest level so that
// nothing it sets outlives the call. It runs only while its owner still has the rights it had when
// registering: EXECUTE on the handler, the privileges of the handler's owner (so nobody else can
// change the code that runs), and of the owners of its managed tables.
#pragma once

#include "pg/catalog.hpp"

#include <optional>
#include <string>
#include <vector>

namespace viewmig::pg {

// Throws UserError unless p.owner may still run p (see above). `view_schema` is where the managed
// tables are checked (the view schema; their replay copies have the same owner).
void check_projector_owner(const ProjectorVersion& p);

// The search_path a handler runs with: the search_path recorded when the projector was registered
// (as CREATE FUNCTION ... SET search_path), with the target schema (the replay schema, or a
// view-schema migration's) just before the view schema — appended when the recorded path lacks the
// view schema. No schema is put ahead of the owner's own choice: the view schema is often shared,
// and a function another role created there must not take the place of one the handler calls.
std::string handler_search_path(const std::string& target_schema, const ProjectorVersion& p);
// The same in plain C (palloc'd; for the live-projection trigger).
char* handler_search_path_unguarded(Oid owner, const char* target_schema, const char* view_schema, const char* recorded_path);
// `path` with only the schemas that exist now, "$user" spelled out as `owner`'s schema, pg_temp
// left out: what registration records, and what each run starts from.
char* resolve_search_path_unguarded(Oid owner, const char* path);

// For the lifetime of the object: the current user is `role` (a security-restricted operation)
// and GUC changes are undone at the end. A transaction or subtransaction abort restores both on
// its own; the destructor covers the C++ path. No-op when `role` is InvalidOid.
class ActingAs {
public:
    explicit ActingAs(Oid role);
    ~ActingAs();
    ActingAs(const ActingAs&) = delete;
    ActingAs& operator=(const ActingAs&) = delete;

private:
    Oid saved_user_ = InvalidOid;
    int saved_context_ = 0;
    int guc_level_ = -1;
};

// Lets the owners of `projectors` (those who are not the current user) find their tables in
// `schema`, which the current user created: GRANT USAGE; and checks each can run there
// (check_projector_can_run).
void grant_schema_to_projector_owners(const std::string& schema, const std::vector<ProjectorVersion>& projectors);

// check_projector_owner, and that every schema of the handler's search_path for `target_schema`
// (handler_search_path) lets only roles with the owner's rights create objects: the best-matching
// function wins wherever it stands in the path, so a schema others create in would let them run
// code as the owner. ERROR otherwise. Every step that runs a projector calls it.
void check_projector_can_run(const ProjectorVersion& p, const std::string& target_schema);

// Plain C (ereport), for the live-projection trigger too. check_handler_unguarded: the owner still
// exists, the handler exists, its owner already has the projector owner's rights (skipped for a
// declarative projector's generated handler), and the owner may execute it.
void check_handler_unguarded(Oid handler, Oid owner, bool declarative, const char* projector);
void check_trusted_search_path_unguarded(const char* projector, Oid owner, const char* path);
// The owner of schema.table (whatever table has the name now; none: nothing to check) and the
// projector's owner must have each other's rights (see the .cpp).
void check_managed_table_unguarded(const char* schema, const char* table, Oid owner, const char* projector);
Oid get_rel_owner_unguarded(Oid relid);

// `owner` when it is not the current user, else InvalidOid (no switch needed).
Oid role_to_switch_to(Oid owner);

}  // namespace viewmig::pg
