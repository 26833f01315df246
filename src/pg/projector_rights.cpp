// Rights of projector owners and running their code as them (see projector_rights.hpp).
#include "pg/projector_rights.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/regproc.h"
#include "utils/varlena.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace viewmig::pg {

namespace {
std::string role_name(Oid role) {
    const char* name = pg_call([&] { return GetUserNameFromId(role, true); });
    return name ? std::string(name) : "(dropped role " + std::to_string(role) + ")";
}
}  // namespace

void check_handler_unguarded(Oid handler, Oid owner, bool declarative, const char* projector) {
    if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(owner)))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("the owner of projector \"%s\" no longer exists", projector),
                        errhint("Register the projector again as the role that owns its tables and handler.")));
    HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(handler));
    if (!HeapTupleIsValid(tuple))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_FUNCTION), errmsg("the handler of projector \"%s\" no longer exists", projector),
                        errhint("Register the projector again with an existing handler.")));
    const Oid handler_owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->proowner;
    ReleaseSysCache(tuple);
    // A declarative projector's handler is viewmig's own, generated from the rules (data, not code).
    // The handler's owner can change its code: it must already have the rights the code runs with.
    if (!declarative && !has_privs_of_role(handler_owner, owner))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("projector \"%s\" runs handler %s, owned by role %s, which has not the rights of its owner %s",
                               projector, format_procedure_qualified(handler), GetUserNameFromId(handler_owner, false),
                               GetUserNameFromId(owner, false)),
                        errdetail("A handler runs as the projector's owner; code someone else can change must not run with its rights."),
                        errhint("Give the handler to the projector's owner (ALTER FUNCTION ... OWNER TO), or register the "
                                "projector again as the handler's owner.")));
    if (pg_proc_aclcheck(handler, owner, ACL_EXECUTE) != ACLCHECK_OK)
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("the owner %s of projector \"%s\" may not execute its handler %s", GetUserNameFromId(owner, false),
                               projector, format_procedure_qualified(handler))));
}

void check_projector_owner(const ProjectorVersion& p) {
    const Oid owner = p.owner, handler = p.handler_oid;
    const bool declarative = p.rules.has_value();
    const char* projector_name = p.projector.c_str();
    pg_call([&] { check_handler_unguarded(handler, owner, declarative, projector_name); });
    const char* schema = p.view_schema.c_str();
    for (const std::string& table : p.managed_tables) {
        const char* table_name = table.c_str();
        pg_call([&] { check_managed_table_unguarded(schema, table_name, owner, projector_name); });
    }
}

void check_managed_table_unguarded(const char* schema, const char* table, Oid owner, const char* projector) {
    const Oid nsp = get_namespace_oid(schema, true);
    const Oid relid = OidIsValid(nsp) ? get_relname_relid(table, nsp) : InvalidOid;
    if (!OidIsValid(relid)) return;  // a missing table is reported by the step that needs it
    // Both ways: the owner writes the table (it must have the table owner's rights), and the
    // table's owner decides its triggers, defaults and index expressions, which run when the
    // handler writes — as the projector's owner (it must already have those rights). A superuser's
    // projector therefore never writes a table a tenant owns, even one re-created under the name.
    const Oid table_owner = get_rel_owner_unguarded(relid);
    if (!has_privs_of_role(owner, table_owner) || !has_privs_of_role(table_owner, owner))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("projector \"%s\" runs as role %s, but its table %s belongs to role %s", projector,
                               GetUserNameFromId(owner, false), get_rel_name(relid), GetUserNameFromId(table_owner, false)),
                        errdetail("The handler writes the table with its owner's rights, and the table's triggers, defaults "
                                  "and index expressions run with them."),
                        errhint("Register the projector as the tables' owner, or give the tables to the projector's owner.")));
}

Oid get_rel_owner_unguarded(Oid relid) {
    HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for relation %u", relid);
    const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);
    return owner;
}

namespace {
// pg_database_owner stands for the current database's owner.
Oid effective_role(Oid role) {
    if (role != ROLE_PG_DATABASE_OWNER) return role;
    HeapTuple tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(MyDatabaseId));
    if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for database %u", MyDatabaseId);
    const Oid owner = reinterpret_cast<Form_pg_database>(GETSTRUCT(tuple))->datdba;
    ReleaseSysCache(tuple);
    return owner;
}

void refuse_untrusted_schema(const char* projector, Oid owner, const char* schema, const char* creator) {
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                    errmsg("projector \"%s\" runs as role %s with schema %s in its search_path, where %s may create objects",
                           projector, GetUserNameFromId(owner, false), schema, creator),
                    errdetail("A function created there could take the place of one the handler calls (the best-matching "
                              "function wins wherever it is in the path) and run with the projector owner's rights."),
                    errhint("Let only roles with the rights of role %s create objects in schema %s (REVOKE CREATE, or "
                            "ALTER SCHEMA ... OWNER TO), or register the projector again from a session whose search_path "
                            "leaves the schema out.",
                            GetUserNameFromId(owner, false), quote_identifier(schema))));
}
}  // namespace

void check_trusted_search_path_unguarded(const char* projector, Oid owner, const char* path) {
    List* names = NIL;
    char* raw = pstrdup(path ? path : "");
    if (!SplitIdentifierString(raw, ',', &names)) return;  // set_config_option would have refused it
    ListCell* lc;
    foreach (lc, names) {
        const char* name = static_cast<const char*>(lfirst(lc));
        if (strcmp(name, "$user") == 0) name = GetUserNameFromId(owner, false);
        if (strcmp(name, "pg_catalog") == 0 || strcmp(name, "pg_temp") == 0) continue;
        const Oid nsp = get_namespace_oid(name, true);
        if (!OidIsValid(nsp)) continue;
        HeapTuple tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
        if (!HeapTupleIsValid(tuple)) continue;
        const Oid schema_owner = effective_role(reinterpret_cast<Form_pg_namespace>(GETSTRUCT(tuple))->nspowner);
        bool isnull;
        const Datum acl_datum = SysCacheGetAttr(NAMESPACEOID, tuple, Anum_pg_namespace_nspacl, &isnull);
        if (!has_privs_of_role(schema_owner, owner))
            refuse_untrusted_schema(projector, owner, name,
                                    psprintf("its owner %s", GetUserNameFromId(schema_owner, false)));
        if (!isnull) {
            Acl* acl = DatumGetAclPCopy(acl_datum);
            const AclItem* items = ACL_DAT(acl);
            for (int i = 0; i < ACL_NUM(acl); ++i) {
                if (!(items[i].ai_privs & ACL_CREATE)) continue;
                if (items[i].ai_grantee == ACL_ID_PUBLIC) refuse_untrusted_schema(projector, owner, name, "every role (PUBLIC)");
                const Oid grantee = effective_role(items[i].ai_grantee);
                if (!has_privs_of_role(grantee, owner))
                    refuse_untrusted_schema(projector, owner, name, psprintf("role %s", GetUserNameFromId(grantee, false)));
            }
        }
        ReleaseSysCache(tuple);
    }
}

void check_projector_can_run(const ProjectorVersion& p, const std::string& target_schema) {
    check_projector_owner(p);
    const std::string path = handler_search_path(target_schema, p);
    const char *projector = p.projector.c_str(), *path_c = path.c_str();
    const Oid owner = p.owner;
    pg_call([&] { check_trusted_search_path_unguarded(projector, owner, path_c); });
}

char* resolve_search_path_unguarded(Oid owner, const char* path) {
    StringInfoData out;
    initStringInfo(&out);
    List* names = NIL;
    char* raw = pstrdup(path ? path : "");
    if (!SplitIdentifierString(raw, ',', &names)) return out.data;
    ListCell* lc;
    foreach (lc, names) {
        const char* name = static_cast<const char*>(lfirst(lc));
        if (strcmp(name, "pg_temp") == 0 || strncmp(name, "pg_temp_", 8) == 0) continue;  // appended last by the caller
        if (strcmp(name, "$user") == 0) name = GetUserNameFromId(owner, false);
        if (!OidIsValid(get_namespace_oid(name, true))) continue;
        if (out.len) appendStringInfoString(&out, ", ");
        appendStringInfoString(&out, quote_identifier(name));
    }
    return out.data;
}

char* handler_search_path_unguarded(Oid owner, const char* target_schema, const char* view_schema, const char* recorded_path) {
    StringInfoData out;
    initStringInfo(&out);
    List* names = NIL;
    // Only schemas that exist now, "$user" spelled out: a schema created later — by a handler of
    // another owner that runs earlier in the same step, say — never enters this path.
    char* raw = resolve_search_path_unguarded(owner, recorded_path);
    bool placed = false;
    if (SplitIdentifierString(raw, ',', &names)) {
        ListCell* lc;
        foreach (lc, names) {
            const char* name = static_cast<const char*>(lfirst(lc));
            if (out.len) appendStringInfoString(&out, ", ");
            if (strcmp(name, view_schema) == 0) {
                // The target's tables come first; the view schema's functions (and other tables)
                // stay where the owner put them, as in live projection.
                appendStringInfoString(&out, quote_identifier(target_schema));
                if (strcmp(target_schema, view_schema) != 0) appendStringInfo(&out, ", %s", quote_identifier(view_schema));
                placed = true;
            } else {
                appendStringInfoString(&out, quote_identifier(name));
            }
        }
    }
    if (!placed) {
        if (out.len) appendStringInfoString(&out, ", ");
        appendStringInfoString(&out, quote_identifier(target_schema));
    }
    // The session's temporary schema is searched first for tables unless the path names it: in
    // live projection that is the inserting role's, whose temporary table named like a managed
    // table would receive the owner's writes or feed its reads. Last, it can shadow nothing.
    appendStringInfoString(&out, ", pg_temp");
    return out.data;
}

std::string handler_search_path(const std::string& target_schema, const ProjectorVersion& p) {
    const char *target = target_schema.c_str(), *view = p.view_schema.c_str(), *recorded = p.search_path.c_str();
    const Oid owner = p.owner;
    return std::string(pg_call([&] { return handler_search_path_unguarded(owner, target, view, recorded); }));
}

void grant_schema_to_projector_owners(const std::string& schema, const std::vector<ProjectorVersion>& projectors) {
    for (const auto& p : projectors) {
        if (OidIsValid(role_to_switch_to(p.owner)))
            spi_exec("GRANT USAGE ON SCHEMA " + quote_ident(schema) + " TO " + quote_ident(role_name(p.owner)));
        // Refused now rather than in the first worker: the schema is the caller's, and it is in
        // each handler's search_path, so the caller must already have each owner's rights.
        check_projector_can_run(p, schema);
    }
}

Oid role_to_switch_to(Oid owner) {
    return pg_call([] { return GetUserId(); }) == owner ? InvalidOid : owner;
}

ActingAs::ActingAs(Oid role) {
    if (!OidIsValid(role)) return;
    pg_call([&] {
        GetUserIdAndSecContext(&saved_user_, &saved_context_);
        guc_level_ = NewGUCNestLevel();
        SetUserIdAndSecContext(role, saved_context_ | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    });
}

ActingAs::~ActingAs() {
    if (guc_level_ < 0) return;
    AtEOXact_GUC(false, guc_level_);
    SetUserIdAndSecContext(saved_user_, saved_context_);
}

}  // namespace viewmig::pg
