// Defining a versioned view schema (Sequent 7's ViewSchema model): each managed table's DDL with
// %SUFFIX% on every name that must be unique in the view schema, the projectors each version
// rebuilds, and create_view_tables() for a fresh setup. The DDL is checked when stored: parsed
// (PostgreSQL's own parser splits it, so dollar quotes and comments are handled), it must create
// exactly the named table and only touch that table, every explicit index or constraint name
// must carry %SUFFIX%, and it must run (tried in a rolled-back subtransaction).
#include "core/view_schema_versions.hpp"
#include "pg/catalog.hpp"
#include "pg/guard.hpp"
#include "pg/replay_scan.hpp"
#include "pg/spi.hpp"
#include "pg/stored_ddl.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
}

#include <cstring>

using namespace viewmig;
using namespace viewmig::pg;

namespace {

constexpr const char* kMarker = "__viewmig_suffix__";

bool has_marker(const char* name) { return name != nullptr && strstr(name, kMarker) != nullptr; }

// Plain C over the parse tree (runs under PG_TRY): the first problem found, or nullptr.
const char* ddl_problem_unguarded(List* stmts, const char* table) {
    char* want = psprintf("%s%s", table, kMarker);
    int creates = 0;
    ListCell* lc;
    foreach (lc, stmts) {
        Node* stmt = lfirst_node(RawStmt, lc)->stmt;
        RangeVar* rel = nullptr;
        if (IsA(stmt, CreateStmt)) {
            auto* create = castNode(CreateStmt, stmt);
            rel = create->relation;
            ++creates;
            ListCell* ec;
            foreach (ec, create->tableElts) {
                Node* elt = static_cast<Node*>(lfirst(ec));
                List* constraints = IsA(elt, ColumnDef) ? castNode(ColumnDef, elt)->constraints : nullptr;
                if (IsA(elt, Constraint)) constraints = list_make1(elt);
                ListCell* cc;
                foreach (cc, constraints) {
                    auto* con = castNode(Constraint, lfirst(cc));
                    if (con->conname && !has_marker(con->conname))
                        return psprintf("constraint name \"%s\" has no %%SUFFIX%%", con->conname);
                }
            }
        } else if (IsA(stmt, IndexStmt)) {
            auto* index = castNode(IndexStmt, stmt);
            rel = index->relation;
            if (index->idxname && !has_marker(index->idxname)) return psprintf("index name \"%s\" has no %%SUFFIX%%", index->idxname);
        } else if (IsA(stmt, AlterTableStmt)) {
            auto* alter = castNode(AlterTableStmt, stmt);
            rel = alter->relation;
            ListCell* cc;
            foreach (cc, alter->cmds) {
                auto* cmd = castNode(AlterTableCmd, lfirst(cc));
                if (cmd->subtype == AT_AddConstraint && cmd->def && IsA(cmd->def, Constraint)) {
                    auto* con = castNode(Constraint, cmd->def);
                    if (con->conname && !has_marker(con->conname))
                        return psprintf("constraint name \"%s\" has no %%SUFFIX%%", con->conname);
                }
            }
        } else if (IsA(stmt, CommentStmt)) {
            continue;
        } else {
            return "only CREATE TABLE, CREATE INDEX, ALTER TABLE and COMMENT statements are allowed";
        }
        if (rel->schemaname) return psprintf("\"%s.%s\" is schema-qualified; names must be unqualified", rel->schemaname, rel->relname);
        if (strcmp(rel->relname, want) != 0)
            return psprintf("the statements must create and change only table \"%s%%SUFFIX%%\", not \"%s\"", table, rel->relname);
    }
    if (creates != 1) return "the DDL must contain exactly one CREATE TABLE";
    return nullptr;
}

// The DDL is run later by whoever migrates, so only a role that could create or change the table
// itself may store it: the table's owner (a member of the owning role), or, for a table that does
// not exist yet, a role with CREATE on the view schema; and never over another role's definition
// unless it has that role's rights.
void require_definition_rights(const std::string& table, const std::string& view_schema) {
    // In C: no function or operator of the caller's can answer a rights check.
    Oid nsp = InvalidOid, relid = InvalidOid;
    pg_call([&] {
        nsp = get_namespace_oid(view_schema.c_str(), true);
        if (OidIsValid(nsp)) relid = get_relname_relid(table.c_str(), nsp);
    });
    if (!OidIsValid(nsp))
        throw UserError(ERRCODE_INVALID_SCHEMA_NAME, "schema " + quote_ident(view_schema) + " does not exist")
            .hint("Create the view schema first.");
    const bool table_exists = OidIsValid(relid);
    const bool allowed = pg_call([&] {
        return table_exists ? pg_class_ownercheck(relid, GetUserId())
                            : pg_namespace_aclcheck(nsp, GetUserId(), ACL_CREATE) == ACLCHECK_OK;
    });
    if (!allowed)
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE,
                        table_exists ? "must be owner of table " + quote_qualified(view_schema, table) + " to define its DDL"
                                     : "permission denied to define a table in schema " + quote_ident(view_schema))
            .hint(table_exists ? "Define it as the table's owner." : "Define it as a role with CREATE on the schema.");
    const auto definer = spi_value("SELECT defined_by::oid FROM viewmig.table_definitions WHERE table_name = $1",
                                   {text_param(table)});
    if (definer && !caller_acts_for(static_cast<Oid>(std::stoul(*definer))))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "the DDL of table " + table + " was defined by another role")
            .hint("Only members of that role may replace it.");
}

void check_ddl(const std::string& table, const std::string& ddl, const std::string& view_schema) {
    if (ddl.find(core::kSuffix) == std::string::npos)
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "the DDL of table " + table + " has no %SUFFIX%")
            .hint("Write CREATE TABLE " + quote_ident(table + "%SUFFIX%") + " (...): migrate_online creates " +
                  quote_ident(table + "_<version>") + " from it.");
    const std::string marked = core::replace_suffix(ddl, kMarker);
    const char* text = marked.c_str();
    const char* tbl = table.c_str();
    const std::string problem = pg_call([&]() -> std::string {
        const char* p = ddl_problem_unguarded(raw_parser(text, RAW_PARSE_DEFAULT), tbl);
        return p ? std::string(p) : std::string();
    });
    if (!problem.empty())
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "invalid DDL for table " + table + ": " + problem)
            .hint("Every name that must be unique in the view schema needs %SUFFIX%, e.g. CREATE INDEX " +
                  quote_ident(table + "_x%SUFFIX%") + " ON " + quote_ident(table + "%SUFFIX%") + " (x).");
    if (!spi_value("SELECT 1 FROM pg_namespace WHERE nspname = $1", {text_param(view_schema)}))
        throw UserError(ERRCODE_INVALID_SCHEMA_NAME, "schema " + quote_ident(view_schema) + " does not exist")
            .hint("Create the view schema first.");
    // It must also run: tried in the view schema under a name nobody uses, then rolled back.
    try {
        in_rolled_back_subtransaction([&] {
            spi_run_in_search_path(quote_ident(view_schema), core::replace_suffix(ddl, "_viewmig_check"));
        });
    } catch (const PgError& e) {
        throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "the DDL of table " + table + " does not run: " + e.what());
    }
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(viewmig_define_table_sql);
PGDLLEXPORT Datum viewmig_define_table_sql(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.define_table_sql()");
        const std::string table = NameStr(*PG_GETARG_NAME(0));
        const std::string ddl = text_to_cstring(PG_GETARG_TEXT_PP(1));
        const std::string view_schema = NameStr(*PG_GETARG_NAME(2));
        spi_connect();
        require_definition_rights(table, view_schema);
        check_ddl(table, ddl, view_schema);
        spi_run_as_owner("INSERT INTO viewmig.table_definitions (table_name, view_schema, ddl, defined_by) "
                         "VALUES ($1, $2, $3, $4) "
                         "ON CONFLICT (table_name) DO UPDATE SET view_schema = EXCLUDED.view_schema, ddl = EXCLUDED.ddl, "
                         "defined_by = EXCLUDED.defined_by, defined_at = now()",
                         {text_param(table), text_param(view_schema), text_param(ddl), oid_param(GetUserId())});
        spi_finish();
        PG_RETURN_VOID();
    });
}

PG_FUNCTION_INFO_V1(viewmig_define_view_schema_version);
PGDLLEXPORT Datum viewmig_define_view_schema_version(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        require_non_null_args(fcinfo, "viewmig.define_view_schema_version()");
        const int32_t version = PG_GETARG_INT32(0);
        spi_connect();
        const std::vector<std::string> projectors = parse_text_array(arg_param(fcinfo, 1).text);
        if (version < 1) throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "view-schema versions start at 1");
        if (projectors.empty()) throw UserError(ERRCODE_INVALID_PARAMETER_VALUE, "a version must name at least one projector");
        const int current = static_cast<int>(to_int8(spi_value("SELECT viewmig.current_view_schema_version()")));
        if (version <= current && !spi_value("SELECT 1 FROM viewmig.view_schema_version_definitions WHERE version = $1 "
                                             "AND projectors = $2::text[]",
                                             {int4_param(version), text_array_param(projectors)}))
            throw UserError(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                            "view-schema version " + std::to_string(version) + " is already migrated (current: " +
                                std::to_string(current) + ")")
                .hint("Define version " + std::to_string(current + 1) + " instead.");
        // A version decides which projectors migrate_online rebuilds: only the owners of those
        // projectors (and of the ones an existing definition names) may define or change it.
        std::vector<std::string> involved = projectors;
        for (const auto& p : parse_text_array(spi_value("SELECT projectors::text FROM viewmig.view_schema_version_definitions "
                                                        "WHERE version = $1", {int4_param(version)})))
            involved.push_back(p);
        for (const std::string& p : involved) {
            const auto owner = spi_value("SELECT owner::oid FROM viewmig.projector_versions WHERE projector = $1 LIMIT 1",
                                         {text_param(p)});
            if (owner && !caller_acts_for(static_cast<Oid>(std::stoul(*owner))))
                throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "projector \"" + p + "\" belongs to another role")
                    .detail("A view-schema version names the projectors migrate_online rebuilds; only their owners define it.")
                    .hint("Define the version as the projectors' owner (or a member of that role).");
        }
        for (const std::string& p : projectors) {
            if (!spi_value("SELECT 1 FROM viewmig.projector_versions WHERE projector = $1", {text_param(p)}))
                throw UserError(ERRCODE_UNDEFINED_OBJECT, "projector \"" + p + "\" is not registered")
                    .hint("Register it first with viewmig.register_projector().");
            const std::vector<ProjectorVersion> versions = load_projectors_for_replay(std::vector<std::string>{p});
            for (const std::string& t : versions.front().managed_tables)
                if (!spi_value("SELECT 1 FROM viewmig.table_definitions WHERE table_name = $1", {text_param(t)}))
                    throw UserError(ERRCODE_UNDEFINED_OBJECT, "table " + t + " of projector \"" + p + "\" has no DDL")
                        .hint("Store it with viewmig.define_table_sql('" + t + "', 'CREATE TABLE " + t + "%SUFFIX% (...)').");
        }
        spi_run_as_owner("INSERT INTO viewmig.view_schema_version_definitions (version, projectors) VALUES ($1, $2::text[]) "
                         "ON CONFLICT (version) DO UPDATE SET projectors = EXCLUDED.projectors, defined_at = now()",
                         {int4_param(version), text_array_param(projectors)});
        spi_finish();
        PG_RETURN_VOID();
    });
}

PG_FUNCTION_INFO_V1(viewmig_create_view_tables);
PGDLLEXPORT Datum viewmig_create_view_tables(PG_FUNCTION_ARGS) {
    return sql_entry([&]() -> Datum {
        spi_connect();
        int created = 0, skipped = 0;
        for (const Row& row : spi_run("SELECT table_name, view_schema, ddl, defined_by::oid FROM viewmig.table_definitions d "
                                      "WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                                      "                  WHERE n.nspname = d.view_schema AND c.relname = d.table_name) "
                                      "ORDER BY table_name")
                                  .rows) {
            const Oid definer = static_cast<Oid>(std::stoul(*row[3]));
            if (!caller_acts_for(definer)) {
                // Someone else's table: created when that role (or a member) calls this.
                ereport(NOTICE, (errmsg("viewmig: table %s not created: it was defined by another role",
                                        quote_qualified(*row[1], *row[0]).c_str())));
                ++skipped;
                continue;
            }
            run_stored_ddl(definer, *row[0], *row[1], core::replace_suffix(*row[2], ""));
            ++created;
        }
        if (skipped) {
            spi_finish();
            PG_RETURN_INT32(created);
        }
        // A fresh setup is at the newest defined version.
        spi_run_as_owner("INSERT INTO viewmig.view_schema_versions (version) "
                         "SELECT max(version) FROM viewmig.view_schema_version_definitions "
                         "WHERE NOT EXISTS (SELECT 1 FROM viewmig.view_schema_versions) HAVING max(version) IS NOT NULL");
        spi_finish();
        PG_RETURN_INT32(created);
    });
}

}  // extern "C"
