// Ownership records for replay and archive schemas (see owned_schemas.hpp).
#include "pg/owned_schemas.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "storage/lmgr.h"
#include "utils/errcodes.h"
}

namespace viewmig::pg {

namespace {
std::optional<std::string> schema_oid(const std::string& name) {
    return spi_value("SELECT oid::text FROM pg_namespace WHERE nspname = $1", {text_param(name)});
}
// Everything DROP SCHEMA ... CASCADE removes together with the schema's own objects: the objects
// in the schema, the parts of its relations (rules, triggers, defaults, policies, constraints) and
// their TOAST tables. An object outside this set that depends on one inside would be dropped by
// the cascade although viewmig did not create it.
constexpr const char* kInsideSchema = R"sql(
    SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass AS classid, s.oid AS objid FROM s
    UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid FROM rel c
    UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.reltoastrelid FROM rel c
              WHERE c.reltoastrelid OPERATOR(pg_catalog.<>) 0
    UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, i.indexrelid FROM rel c
              JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) c.reltoastrelid
    UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid FROM pg_catalog.pg_type t, s
              WHERE t.typnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, p.oid FROM pg_catalog.pg_proc p, s
              WHERE p.pronamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, k.oid FROM pg_catalog.pg_constraint k, s
              WHERE k.connamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_rewrite'::pg_catalog.regclass, r.oid FROM pg_catalog.pg_rewrite r
              JOIN rel c ON c.oid OPERATOR(pg_catalog.=) r.ev_class
    UNION ALL SELECT 'pg_catalog.pg_trigger'::pg_catalog.regclass, g.oid FROM pg_catalog.pg_trigger g
              JOIN rel c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
    UNION ALL SELECT 'pg_catalog.pg_attrdef'::pg_catalog.regclass, a.oid FROM pg_catalog.pg_attrdef a
              JOIN rel c ON c.oid OPERATOR(pg_catalog.=) a.adrelid
    UNION ALL SELECT 'pg_catalog.pg_policy'::pg_catalog.regclass, y.oid FROM pg_catalog.pg_policy y
              JOIN rel c ON c.oid OPERATOR(pg_catalog.=) y.polrelid
    UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_operator o, s
              WHERE o.oprnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_opclass o, s
              WHERE o.opcnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_opfamily o, s
              WHERE o.opfnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_collation o, s
              WHERE o.collnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_conversion o, s
              WHERE o.connamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_statistic_ext o, s
              WHERE o.stxnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_ts_config o, s
              WHERE o.cfgnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_ts_dict o, s
              WHERE o.dictnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_ts_parser'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_ts_parser o, s
              WHERE o.prsnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_ts_template'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_ts_template o, s
              WHERE o.tmplnamespace OPERATOR(pg_catalog.=) s.oid
    UNION ALL SELECT 'pg_catalog.pg_default_acl'::pg_catalog.regclass, o.oid FROM pg_catalog.pg_default_acl o, s
              WHERE o.defaclnamespace OPERATOR(pg_catalog.=) s.oid
)sql";


// Takes the locks DROP SCHEMA would take on the schema's relations now, so that nobody can add
// a dependent object between the check below and the drop.
void lock_schema_relations(const std::string& name) {
    for (const Row& r : spi_run("SELECT c.oid::pg_catalog.text FROM pg_catalog.pg_class c "
                                   "JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace "
                                   "WHERE n.nspname OPERATOR(pg_catalog.=) $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
                                   "ORDER BY c.oid",
                                   {text_param(name)})
                            .rows) {
        const Oid oid = static_cast<Oid>(std::stoul(*r[0]));
        pg_call([oid] { LockRelationOid(oid, AccessExclusiveLock); });
    }
}
// The tables viewmig put into schema `name`: the managed tables of every replay that used it as
// its replay or archive schema — and, since replays are not dumped (a restored database has
// the schemas but not the replays that filled them), the managed tables of every projector version.
std::vector<std::string> placed_by_viewmig(const std::string& name) {
    return parse_text_array(spi_run("SELECT pg_catalog.array_agg(DISTINCT t)::pg_catalog.text FROM ("
                                       "  SELECT t FROM viewmig.replays r, pg_catalog.unnest(r.managed_tables) t "
                                       "  WHERE r.replay_schema OPERATOR(pg_catalog.=) $1 OR r.archive_schema OPERATOR(pg_catalog.=) $1 "
                                       "  UNION SELECT t FROM viewmig.projector_versions v, pg_catalog.unnest(v.managed_tables) t) p",
                                       {text_param(name)})
                                .rows.at(0)[0]);
}
}  // namespace

void refuse_foreign_dependents(const std::string& name, const char* step) {
    QueryResult deps = spi_run(
        std::string("WITH s AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1), "
                    "rel AS (SELECT c.oid, c.relname, c.relkind, c.reltoastrelid FROM pg_catalog.pg_class c, s "
                    "        WHERE c.relnamespace OPERATOR(pg_catalog.=) s.oid), "
                    "inside AS (") + kInsideSchema + ") "
        "SELECT DISTINCT pg_catalog.format('%s depends on %s', "
        "       pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), "
        "       pg_catalog.pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)) "
        "FROM pg_catalog.pg_depend d JOIN inside r ON r.classid OPERATOR(pg_catalog.=) d.refclassid "
        "     AND r.objid OPERATOR(pg_catalog.=) d.refobjid "
        "WHERE d.deptype OPERATOR(pg_catalog.<>) 'p' "
        "  AND NOT EXISTS (SELECT 1 FROM inside i WHERE i.classid OPERATOR(pg_catalog.=) d.classid "
        "                  AND i.objid OPERATOR(pg_catalog.=) d.objid) "
        "UNION "
        // What else is in the schema: viewmig puts there only the managed tables of the replays
        // that name it (with their sequences), or views named like them (view-schema migrations).
        "SELECT pg_catalog.format('%s was not created by viewmig', "
        "       pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)) "
        "FROM pg_catalog.pg_depend d, s "
        "WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass "
        "  AND d.refobjid OPERATOR(pg_catalog.=) s.oid AND d.deptype OPERATOR(pg_catalog.=) 'n' "
        "  AND NOT EXISTS (SELECT 1 FROM rel c WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
        "                  AND c.oid OPERATOR(pg_catalog.=) d.objid "
        "                  AND (c.relname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[]) "
        "                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend o JOIN rel t ON t.oid OPERATOR(pg_catalog.=) o.refobjid "
        "                                  WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
        "                                    AND o.objid OPERATOR(pg_catalog.=) c.oid AND o.deptype IN ('a', 'i') "
        "                                    AND c.relkind OPERATOR(pg_catalog.=) 'S' "
        "                                    AND t.relname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[])))) "
        // ... and the extended statistics of those tables (copied with them, moved with them).
        "  AND NOT (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_statistic_ext'::pg_catalog.regclass "
        "           AND EXISTS (SELECT 1 FROM pg_catalog.pg_statistic_ext x JOIN rel t ON t.oid OPERATOR(pg_catalog.=) x.stxrelid "
        "                       WHERE x.oid OPERATOR(pg_catalog.=) d.objid "
        "                         AND t.relname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[]))) "
        "ORDER BY 1",
        {text_param(name), text_array_param(placed_by_viewmig(name))});
    if (deps.rows.empty()) return;
    std::string list;
    std::size_t shown = 0;
    for (const Row& r : deps.rows) {
        if (++shown > 50) {
            list += "\n... and " + std::to_string(deps.rows.size() - 50) + " more";
            break;
        }
        list += (list.empty() ? "" : "\n") + r[0].value_or("?");
    }
    throw UserError(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
                    "cannot drop schema " + quote_ident(name) + ": it would drop objects viewmig did not create")
        .detail(list)
        .hint(std::string("viewmig drops the schemas it created, never what others made that depends on them. Drop these "
                          "objects, move them out of schema ") +
              quote_ident(name) + " or make them independent of it (e.g. point them at the view tables), then run " + step +
              " again.");
}

bool schema_is_ours(const std::string& name) {
    auto oid = schema_oid(name);
    return oid && to_bool(spi_value("SELECT EXISTS (SELECT 1 FROM viewmig.owned_schemas WHERE schema_oid = $1::oid)",
                                    {text_param(oid)}));
}

void require_ours_or_absent(const std::string& name, const char* purpose) {
    if (schema_oid(name) && !schema_is_ours(name))
        throw UserError(ERRCODE_DUPLICATE_SCHEMA, "schema " + quote_ident(name) + " already exists and was not created by viewmig")
            .detail(std::string("viewmig drops and re-creates its ") + purpose + " schema; it never drops a schema it did not create.")
            .hint(std::string("Choose another ") + purpose + "_schema, or drop the schema yourself if it is not needed.");
}

void create_our_schema(const std::string& name, const char* purpose) {
    spi_exec("CREATE SCHEMA " + quote_ident(name));
    spi_run_as_owner("INSERT INTO viewmig.owned_schemas (schema_oid, schema_name, purpose) "
                     "SELECT oid, nspname, $2 FROM pg_namespace WHERE nspname = $1",
                     {text_param(name), text_param(std::string(purpose))});
}

void drop_our_schema(const std::string& name, const char* step) {
    if (schema_is_ours(name)) {
        lock_schema_relations(name);
        refuse_foreign_dependents(name, step);
        // The cascade lists every object it drops; that is expected here, not news for the DBA.
        spi_run_with_setting("client_min_messages", "warning", "DROP SCHEMA " + quote_ident(name) + " CASCADE");
    }
    spi_run_as_owner("DELETE FROM viewmig.owned_schemas WHERE schema_name = $1 "
                     "OR schema_oid NOT IN (SELECT oid FROM pg_namespace)",
                     {text_param(name)});
}

}  // namespace viewmig::pg
