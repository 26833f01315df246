-- upgrade_check.state(): the rows of every table and the position of every sequence of extension
-- viewmig, one text line each, over the columns the tables had when this file ran (before the
-- update). test/upgrade/run.sh compares the lines before and after ALTER EXTENSION viewmig UPDATE:
-- the update must carry the state over. Columns an upgrade script adds are not compared (they did
-- not exist before); a column whose type changes between oid and a reg* type is compared by OID;
-- updated_at columns are left out (a trigger sets them when an upgrade script fills a new column).
-- Nothing here names a table: whatever the extension holds is compared.
CREATE SCHEMA upgrade_check;
CREATE TABLE upgrade_check.columns AS
SELECT c.oid::regclass::text AS relation, c.relkind, a.attnum, a.attname,
       a.atttypid IN ('oid'::regtype, 'regclass'::regtype, 'regproc'::regtype, 'regprocedure'::regtype, 'regtype'::regtype,
                      'regrole'::regtype, 'regnamespace'::regtype, 'regoper'::regtype, 'regoperator'::regtype) AS by_oid
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class c ON c.oid = d.objid AND d.classid = 'pg_catalog.pg_class'::regclass
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind = 'r'
                                     AND a.attname <> 'updated_at'
WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
  AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'viewmig')
  AND c.relkind IN ('r', 'S');

CREATE FUNCTION upgrade_check.state() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    rel record;
    cols text;
BEGIN
    FOR rel IN SELECT DISTINCT relation, relkind FROM upgrade_check.columns ORDER BY relation LOOP
        IF rel.relkind = 'S' THEN
            RETURN QUERY EXECUTE format('SELECT %L || '': '' || last_value || '' '' || is_called FROM %s', rel.relation, rel.relation);
            CONTINUE;
        END IF;
        SELECT string_agg(format('coalesce(%I%s::text, ''<null>'')', attname, CASE WHEN by_oid THEN '::pg_catalog.oid' ELSE '' END),
                          ', ' ORDER BY attnum)
        INTO cols FROM upgrade_check.columns WHERE relation = rel.relation;
        RETURN QUERY EXECUTE format('SELECT %L || '': '' || concat_ws(''|'', %s) FROM %s ORDER BY 1', rel.relation, cols, rel.relation);
    END LOOP;
END $$;
