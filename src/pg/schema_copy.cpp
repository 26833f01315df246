// Table definition copy for prepare_initial (see schema_copy.hpp). Definitions come from the
// catalog deparsers (pg_get_constraintdef, pg_get_indexdef) generated with search_path = the view
// schema, so references to view-schema objects come out unqualified, and are executed with
// search_path = replay schema, view schema: a referenced table resolves to its replay copy when
// there is one, else to the view schema's table.
#include "pg/schema_copy.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

namespace viewmig::pg {
namespace {

// The grants (table and column level) on table `source` to anyone but its owner, as
// (grantee, privilege, grantable, column) rows in a fixed order. search_path pinned.
QueryResult grants_of(const std::string& table) {
    return spi_run_with_setting(
        "search_path", "pg_catalog, pg_temp",
        "SELECT CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' "
        "            ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END, "
        "       g.privilege_type, g.is_grantable, NULL::pg_catalog.name "
        "FROM pg_catalog.pg_class c CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) g "
        "WHERE c.oid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND g.grantee OPERATOR(pg_catalog.<>) c.relowner "
        "UNION ALL "
        "SELECT CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' "
        "            ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END, "
        "       g.privilege_type, g.is_grantable, a.attname "
        "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) a.attrelid "
        "CROSS JOIN LATERAL pg_catalog.aclexplode(a.attacl) g "
        "WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass AND a.attnum OPERATOR(pg_catalog.>) 0 "
        "  AND NOT a.attisdropped AND g.grantee OPERATOR(pg_catalog.<>) c.relowner "
        "ORDER BY 1, 2, 3, 4",
        {text_param(table)});
}

// Grants on `target` what `source` grants (see grants_of); `target` is qualified and quoted. A
// column grant on a column `target` does not have (a new version of a table) is left out.
void grant_as_on(const std::string& source, const std::string& target) {
    for (const Row& g : grants_of(source).rows) {
        if (g[3] && !spi_run("SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid OPERATOR(pg_catalog.=) "
                             "$1::pg_catalog.regclass AND attname OPERATOR(pg_catalog.=) $2 AND attnum OPERATOR(pg_catalog.>) 0 "
                             "AND NOT attisdropped",
                             {text_param(target), text_param(*g[3])})
                             .rows.size())
            continue;
        const std::string columns = g[3] ? " (" + quote_ident(*g[3]) + ")" : "";
        spi_exec("GRANT " + *g[1] + columns + " ON " + target + " TO " + *g[0] + (to_bool(g[2]) ? " WITH GRANT OPTION" : ""));
    }
}

// Reads a query's result with search_path set to the view schema (see the file comment).
QueryResult run_in_view_path(const std::string& view_schema, const std::string& sql, const std::vector<SqlParam>& params) {
    return run_with_search_path(quote_ident(view_schema), sql, params);
}

void copy_one_table(const std::string& view_schema, const std::string& replay_schema, const TableToCopy& t,
                    std::vector<DeferredDdl>& deferred) {
    const std::string source = quote_qualified(view_schema, t.name);
    const std::string target = quote_qualified(replay_schema, t.name);
    const SqlParam source_param = text_param(source);
    QueryResult rel = spi_run(
        "SELECT c.relpersistence::text, pg_get_userbyid(c.relowner), c.reloptions::text, obj_description(c.oid, 'pg_class'), "
        "       array_to_string(c.reloptions, ', ') "
        "FROM pg_class c WHERE c.oid = $1::regclass",
        {source_param});
    const Row& r = rel.rows.at(0);
    spi_exec(std::string("CREATE ") + (*r[0] == "u" ? "UNLOGGED " : "") + "TABLE " + target + " (LIKE " + source +
             " INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING CONSTRAINTS INCLUDING STORAGE "
             "INCLUDING COMPRESSION INCLUDING COMMENTS INCLUDING STATISTICS)");
    if (r[4] && !r[4]->empty()) spi_exec("ALTER TABLE " + target + " SET (" + *r[4] + ")");
    if (r[3]) spi_exec("COMMENT ON TABLE " + target + " IS " + quote_literal(*r[3]));
    // The view table's owner owns the copy before anything of its definition is built: PostgreSQL
    // runs the expressions of indexes and EXCLUDE constraints as the table's owner, and they are the
    // owner's code — evaluated while the caller (a superuser, say) still owned the copy, they ran with
    // the caller's rights.
    const std::string owner = quote_ident(*r[1]);
    spi_exec("ALTER TABLE " + target + " OWNER TO " + owner);
    // Extended statistics copied with the table are the table owner's too.
    for (const Row& st : spi_run("SELECT pg_catalog.format('%I.%I', n.nspname, s.stxname) FROM pg_catalog.pg_statistic_ext s "
                                 "JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace WHERE s.stxrelid = $1::pg_catalog.regclass",
                                 {text_param(target)})
                             .rows)
        spi_exec("ALTER STATISTICS " + *st[0] + " OWNER TO " + owner);

    // Serial columns: a sequence of their own, owned by the new column, named like the original.
    QueryResult serials = spi_run(
        "SELECT a.attname, s.relname, format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax, q.seqstart, "
        "       q.seqcache, q.seqcycle "
        "FROM pg_attribute a JOIN pg_depend d ON d.refobjid = a.attrelid AND d.refobjsubid = a.attnum "
        "  AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'a' "
        "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' JOIN pg_sequence q ON q.seqrelid = s.oid "
        "WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = ''",
        {source_param});
    for (const Row& s : serials.rows) {
        const std::string seq = quote_qualified(replay_schema, *s[1]);
        spi_exec("CREATE SEQUENCE " + seq + " AS " + *s[2] + " INCREMENT BY " + *s[3] + " MINVALUE " + *s[4] +
                 " MAXVALUE " + *s[5] + " START WITH " + *s[6] + " CACHE " + *s[7] + (to_bool(s[8]) ? " CYCLE" : " NO CYCLE"));
        spi_exec("ALTER SEQUENCE " + seq + " OWNER TO " + owner);  // a sequence has its table's owner
        spi_exec("ALTER SEQUENCE " + seq + " OWNED BY " + target + "." + quote_ident(*s[0]));
        spi_exec("ALTER TABLE " + target + " ALTER COLUMN " + quote_ident(*s[0]) + " SET DEFAULT nextval(" +
                 quote_literal(seq) + "::regclass)");
    }

    // Primary key, UNIQUE and EXCLUDE constraints now: handlers' ON CONFLICT needs them. A table
    // the declarative engine loads gets its keys after the load (building an index once is much
    // faster than maintaining it row by row), unless a foreign key needs them now.
    QueryResult constraints = run_in_view_path(
        view_schema,
        "SELECT conname, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint'), "
        "       contype IN ('p', 'u') AND $2 "
        "       AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = $1::regclass AND f.contype = 'f') "
        "FROM pg_constraint WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'x') ORDER BY contype, conname",
        {source_param, bool_param(t.bulk_loaded)});
    for (const Row& c : constraints.rows) {
        const std::string add = "ALTER TABLE " + quote_ident(t.name) + " ADD CONSTRAINT " + quote_ident(*c[0]) + " " + *c[1];
        const std::string comment =
            c[2] ? "COMMENT ON CONSTRAINT " + quote_ident(*c[0]) + " ON " + quote_ident(t.name) + " IS " + quote_literal(*c[2]) : "";
        if (to_bool(c[3])) {
            deferred.push_back({"bulk_constraint", t.name, *c[0], add + (comment.empty() ? "" : "; " + comment)});
            continue;
        }
        exec_with_search_path(replay_first_path(view_schema, replay_schema), add);
        if (!comment.empty()) exec_with_search_path(replay_first_path(view_schema, replay_schema), comment);
    }

    // Other indexes: kept for prepare_completion unless the projector wants them during replay.
    QueryResult indexes = run_in_view_path(
        view_schema,
        "SELECT i.relname, pg_get_indexdef(i.oid, 0, true), "
        "       EXISTS (SELECT 1 FROM unnest($2::text[]) p WHERE i.relname ~ ('^(' || p || ')$')) "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = $1::regclass "
        "  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid "
        "                  AND c.contype IN ('p', 'u', 'x')) "
        "ORDER BY i.relname",
        {source_param, text_array_param(t.additional_index_patterns)});
    for (const Row& i : indexes.rows) {
        if (to_bool(i[2]))
            exec_with_search_path(quote_ident(replay_schema), *i[1]);
        else
            deferred.push_back({"index", t.name, *i[0], *i[1]});
    }

    // Grants (table and column level) as on the view table.
    grant_as_on(source, target);
}

// Foreign keys that cascade (or set NULL/default) change data during the replay and are created
// now; those that only check are deferred.
void copy_foreign_keys(const std::string& view_schema, const std::string& replay_schema, const TableToCopy& t,
                       std::vector<DeferredDdl>& deferred) {
    const std::string target = quote_qualified(replay_schema, t.name);
    QueryResult fks = run_in_view_path(
        view_schema,
        "SELECT conname, pg_get_constraintdef(oid), obj_description(oid, 'pg_constraint'), "
        "       confupdtype IN ('a', 'r') AND confdeltype IN ('a', 'r'), condeferrable, condeferred "
        "FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY conname",
        {text_param(quote_qualified(view_schema, t.name))});
    for (const Row& c : fks.rows) {
        const std::string table = quote_ident(t.name), name = quote_ident(*c[0]);
        const bool only_checks = to_bool(c[3]), deferrable = to_bool(c[4]), initially_deferred = to_bool(c[5]);
        std::string ddl = "ALTER TABLE " + table + " ADD CONSTRAINT " + name + " " + *c[1];
        if (only_checks && !initially_deferred) ddl += deferrable ? " INITIALLY DEFERRED" : " DEFERRABLE INITIALLY DEFERRED";
        if (c[2]) ddl += "; COMMENT ON CONSTRAINT " + name + " ON " + table + " IS " + quote_literal(*c[2]);
        if (!only_checks) {
            exec_with_search_path(replay_first_path(view_schema, replay_schema), ddl);
            continue;
        }
        deferred.push_back({"foreign_key", t.name, *c[0], ddl});
        if (!initially_deferred)
            deferred.push_back({"restore_deferrability", t.name, *c[0],
                                "ALTER TABLE " + table + " ALTER CONSTRAINT " + name +
                                    (deferrable ? " DEFERRABLE INITIALLY IMMEDIATE" : " NOT DEFERRABLE")});
    }
}

}  // namespace

bool carry_grants(const std::string& source, const std::string& target) {
    const QueryResult want = grants_of(source), have = grants_of(target);
    if (want.rows == have.rows) return false;
    // REVOKE on the table revokes the grantee's column privileges too.
    for (const Row& g : have.rows) spi_exec("REVOKE ALL ON " + target + " FROM " + *g[0] + " CASCADE");
    grant_as_on(source, target);
    return true;
}

QueryResult run_with_search_path(const std::string& path, const std::string& sql, const std::vector<SqlParam>& params) {
    return spi_run_in_search_path(path, sql, params);
}

void exec_with_search_path(const std::string& path, const std::string& sql) { run_with_search_path(path, sql, {}); }

std::string replay_first_path(const std::string& view_schema, const std::string& replay_schema) {
    return quote_ident(replay_schema) + ", " + quote_ident(view_schema);
}

std::vector<DeferredDdl> copy_tables(const std::string& view_schema, const std::string& replay_schema,
                                     const std::vector<TableToCopy>& tables) {
    std::vector<DeferredDdl> deferred;
    for (const auto& t : tables) copy_one_table(view_schema, replay_schema, t, deferred);
    for (const auto& t : tables) copy_foreign_keys(view_schema, replay_schema, t, deferred);
    return deferred;
}

}  // namespace viewmig::pg
