-- The catalog of extension viewmig in this database, one sorted line per property: what
-- test/upgrade/run.sh compares between a fresh CREATE EXTENSION and an ALTER EXTENSION UPDATE
-- from the release before. It covers the extension's member objects (from pg_depend), whatever
-- the upgrade scripts add: tables and their columns, constraints, indexes, triggers, policies,
-- sequences, views, functions (their whole definition), types, privileges (and the initial
-- privileges pg_dump compares with), comments, and the tables and filters pg_dump dumps.
-- Nothing here names a version or an object: a later upgrade script is checked the same way.
\pset tuples_only on
\pset format unaligned
WITH ext AS (
    SELECT e.* FROM pg_catalog.pg_extension e WHERE e.extname = 'viewmig'
), members AS (
    SELECT d.classid, d.objid, d.objsubid FROM pg_catalog.pg_depend d, ext
    WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), rels AS (
    SELECT c.* FROM pg_catalog.pg_class c JOIN members m ON m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = c.oid
), lines(line) AS (
    SELECT 'extension ' || extname || ' ' || extversion || ' relocatable=' || extrelocatable
           || ' schema=' || extnamespace::regnamespace || ' owner=' || extowner::regrole FROM ext
    UNION ALL
    SELECT 'dumped ' || u.c::regclass || ' ' || coalesce(u.cond, '')
    FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(c, cond)
    UNION ALL
    SELECT 'member ' || pg_catalog.pg_describe_object(classid, objid, objsubid) FROM members
    UNION ALL
    SELECT 'schema ' || n.nspname || ' owner=' || n.nspowner::regrole || ' acl=' || coalesce(n.nspacl::text, '')
    FROM pg_catalog.pg_namespace n JOIN members m ON m.classid = 'pg_catalog.pg_namespace'::regclass AND m.objid = n.oid
    UNION ALL
    SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' persistence=' || c.relpersistence::text
           || ' owner=' || c.relowner::regrole || ' acl=' || coalesce(c.relacl::text, '')
           || ' options=' || coalesce(c.reloptions::text, '') || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
           || ' replident=' || c.relreplident::text
    FROM rels c
    UNION ALL
    SELECT 'column ' || a.attrelid::regclass || '.' || quote_ident(a.attname) || ' #' || a.attnum || ' '
           || pg_catalog.format_type(a.atttypid, a.atttypmod) || ' notnull=' || a.attnotnull
           || ' default=' || coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') || ' identity=' || a.attidentity::text
           || ' generated=' || a.attgenerated::text || ' collation=' || coalesce(a.attcollation::regcollation::text, '')
           || ' storage=' || a.attstorage::text || ' acl=' || coalesce(a.attacl::text, '')
    FROM pg_catalog.pg_attribute a JOIN rels c ON c.oid = a.attrelid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'constraint ' || co.conrelid::regclass || ' ' || quote_ident(co.conname) || ' '
           || pg_catalog.pg_get_constraintdef(co.oid) || ' deferrable=' || co.condeferrable || '/' || co.condeferred
    FROM pg_catalog.pg_constraint co JOIN rels c ON c.oid = co.conrelid
    UNION ALL
    SELECT 'index ' || pg_catalog.pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid || ' clustered=' || i.indisclustered
    FROM pg_catalog.pg_index i JOIN rels c ON c.oid = i.indrelid
    UNION ALL
    SELECT 'trigger ' || pg_catalog.pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
    FROM pg_catalog.pg_trigger t JOIN rels c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || p.polrelid::regclass || ' ' || quote_ident(p.polname) || ' ' || p.polcmd::text || ' '
           || p.polpermissive || ' ' || p.polroles::regrole[]::text || ' using=' || coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '')
           || ' check=' || coalesce(pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid), '')
    FROM pg_catalog.pg_policy p JOIN rels c ON c.oid = p.polrelid
    UNION ALL
    SELECT 'rule ' || pg_catalog.pg_get_ruledef(r.oid) FROM pg_catalog.pg_rewrite r JOIN rels c ON c.oid = r.ev_class
    UNION ALL
    SELECT 'sequence ' || s.seqrelid::regclass || ' ' || s.seqtypid::regtype || ' ' || s.seqstart || ' ' || s.seqincrement
           || ' ' || s.seqmax || ' ' || s.seqmin || ' ' || s.seqcache || ' ' || s.seqcycle
           || ' owned by ' || coalesce((SELECT d.refobjid::regclass || '.' || d.refobjsubid FROM pg_catalog.pg_depend d
                                        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = s.seqrelid
                                          AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'a'), '')
    FROM pg_catalog.pg_sequence s JOIN rels c ON c.oid = s.seqrelid
    UNION ALL
    SELECT 'function ' || p.oid::regprocedure || ' owner=' || p.proowner::regrole || ' acl=' || coalesce(p.proacl::text, '')
           || ' ' || CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_catalog.pg_get_functiondef(p.oid) END
    FROM pg_catalog.pg_proc p JOIN members m ON m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text || ' owner=' || t.typowner::regrole || ' acl=' || coalesce(t.typacl::text, '')
           || ' ' || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e
                               WHERE e.enumtypid = t.oid), '')
           || ' ' || coalesce((SELECT string_agg(pg_catalog.pg_get_constraintdef(co.oid), ',' ORDER BY co.conname)
                               FROM pg_catalog.pg_constraint co WHERE co.contypid = t.oid), '')
    FROM pg_catalog.pg_type t JOIN members m ON m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT 'initial privileges ' || pg_catalog.pg_describe_object(ip.classoid, ip.objoid, ip.objsubid) || ' '
           || ip.privtype::text || ' ' || ip.initprivs::text
    FROM pg_catalog.pg_init_privs ip JOIN members m ON m.classid = ip.classoid AND m.objid = ip.objoid
    UNION ALL
    SELECT 'comment ' || pg_catalog.pg_describe_object(ds.classoid, ds.objoid, ds.objsubid) || ': ' || ds.description
    FROM pg_catalog.pg_description ds JOIN members m ON m.classid = ds.classoid AND m.objid = ds.objoid
)
SELECT line FROM lines ORDER BY line COLLATE "C";
