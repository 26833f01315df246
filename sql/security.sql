-- Security: the roles of the threat model (a database owner who is not a superuser, a tenant
-- owning a few tables, the application role that inserts events, a read-only role) attack viewmig.
-- Every attack must end in an ERROR and leave no effect; code a role chose runs only as that role.
SET viewmig.progress_interval = 0;
SET client_min_messages = warning;
\set VERBOSITY default
CREATE ROLE viewmig_sec_dbowner LOGIN;
CREATE ROLE viewmig_sec_tenant LOGIN;
CREATE ROLE viewmig_sec_writer LOGIN;
CREATE ROLE viewmig_sec_reader LOGIN;
GRANT CREATE ON DATABASE contrib_regression TO viewmig_sec_dbowner, viewmig_sec_tenant;
GRANT SELECT, INSERT ON event_records TO viewmig_sec_writer, viewmig_sec_tenant;
GRANT SELECT ON event_records TO viewmig_sec_reader;
GRANT USAGE ON SEQUENCE event_records_id_seq TO viewmig_sec_writer, viewmig_sec_tenant;
-- Nobody but the superuser creates in the view schema (see "the shared view schema" below): it makes
-- the other roles' tables there and gives them away.
GRANT USAGE ON SCHEMA view_schema TO viewmig_sec_tenant;
GRANT USAGE ON SCHEMA view_schema TO viewmig_sec_reader, viewmig_sec_writer;

-- Who ran what: every trap and every handler below writes its current_user here.
CREATE TABLE public.ran_as (what text, role name, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.ran_as TO PUBLIC;

-- 1. Name resolution under elevated rights. The database owner puts its own schema first in the
--    search_path of every session (and every viewmig worker) of the database, with operators and
--    functions that shadow pg_catalog's and note who calls them.
SET ROLE viewmig_sec_dbowner;
CREATE SCHEMA trap;
CREATE FUNCTION trap.noting_texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('trap', current_user);
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE FUNCTION trap.noting_nameeq(a name, b name) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('trap', current_user);
    RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE FUNCTION trap.noting_int8lt(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('trap', current_user);
    RETURN a OPERATOR(pg_catalog.<) b;
END $$;
CREATE OPERATOR trap.= (FUNCTION = trap.noting_texteq, LEFTARG = text, RIGHTARG = text);
CREATE OPERATOR trap.= (FUNCTION = trap.noting_nameeq, LEFTARG = name, RIGHTARG = name);
CREATE OPERATOR trap.< (FUNCTION = trap.noting_int8lt, LEFTARG = bigint, RIGHTARG = bigint);
CREATE FUNCTION trap.pg_has_role(oid, text) RETURNS boolean LANGUAGE sql AS $$ INSERT INTO public.ran_as VALUES ('trap', current_user) RETURNING true $$;
CREATE FUNCTION trap.format_type(oid, integer) RETURNS text LANGUAGE sql AS $$ INSERT INTO public.ran_as VALUES ('trap', current_user) RETURNING 'uuid' $$;
GRANT USAGE ON SCHEMA trap TO PUBLIC;
RESET ROLE;
-- The database owner's own projector, registered before the trap is set.
GRANT USAGE ON SCHEMA view_schema TO viewmig_sec_dbowner;
CREATE TABLE view_schema.sec_counts (event_type text PRIMARY KEY, n bigint NOT NULL);
ALTER TABLE view_schema.sec_counts OWNER TO viewmig_sec_dbowner;
SET ROLE viewmig_sec_dbowner;
CREATE SCHEMA dbo;
CREATE FUNCTION dbo.sec_count(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO sec_counts AS c VALUES (e.event_type, 1) ON CONFLICT (event_type) DO UPDATE SET n = c.n + 1;
END $$;
SELECT viewmig.register_projector('sec_counts', 'dbo.sec_count(public.event_records)', ARRAY['view_schema.sec_counts']::regclass[]);
RESET ROLE;
-- The trap works: a plain query of the superuser under that search_path runs it.
SET search_path = trap, public, pg_catalog;
SELECT count(*) > 0 AS trap_works FROM pg_class WHERE relname::text = 'ran_as'::text;
SELECT DISTINCT role = current_user AS ran_as_the_superuser FROM public.ran_as WHERE what = 'trap';
DELETE FROM public.ran_as;
-- viewmig's functions, called by the superuser with that search_path, and its workers (which
-- read the database's default search_path when they connect), never run it.
ALTER DATABASE contrib_regression SET search_path = trap, public, pg_catalog;
SELECT viewmig.prepare_initial(ARRAY['sec_counts'], replay_schema => 'sec_replay', archive_schema => 'sec_archive') > 0 AS prepared;
SELECT viewmig.replay_initial(workers => 2) > 0 AS replayed;
SELECT viewmig.replay_increment() >= 0 AS incremented;
SELECT viewmig.prepare_completion();
SELECT viewmig.complete() >= 0 AS completed;
SELECT viewmig.register_projector('sec_counts', 'dbo.sec_count(public.event_records)', ARRAY['view_schema.sec_counts']::regclass[]);
SELECT count(*) AS trap_calls FROM public.ran_as WHERE what = 'trap';
ALTER DATABASE contrib_regression RESET search_path;
RESET search_path;
SELECT (SELECT sum(n) FROM view_schema.sec_counts) = (SELECT count(*) FROM event_records) AS counted_everything;
DELETE FROM public.ran_as;

-- 2. Rights checks a caller could spoof: the tenant's own pg_has_role says yes to everything.
SET ROLE viewmig_sec_tenant;
CREATE SCHEMA tenant;
CREATE FUNCTION tenant.pg_has_role(oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION tenant.has_table_privilege(oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION tenant.steal(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('tenant handler', current_user);
END $$;
SET search_path = tenant, public, pg_catalog;
SELECT viewmig.register_projector('stolen', 'tenant.steal(event_records)', ARRAY['view_schema.sec_counts']::regclass[]);
SELECT viewmig.set_event_store('event_records');
RESET search_path;

-- 3. Whose projector is it. The tenant can not register a new version of another role's
--    projector, nor project the event table live without TRIGGER on it.
RESET ROLE;
CREATE TABLE view_schema.tenant_counts (event_type text PRIMARY KEY, n bigint NOT NULL);
ALTER TABLE view_schema.tenant_counts OWNER TO viewmig_sec_tenant;
-- Extended statistics on a tenant's table go with it through every swap (left behind they would
-- tie the view schema to the archive and stop the next complete() and abort() for good).
CREATE STATISTICS view_schema.tenant_counts_stats (dependencies) ON event_type, n FROM view_schema.tenant_counts;
ALTER STATISTICS view_schema.tenant_counts_stats OWNER TO viewmig_sec_tenant;
SET ROLE viewmig_sec_tenant;
CREATE FUNCTION tenant.count(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('tenant handler', current_user);
    INSERT INTO tenant_counts AS c VALUES (e.event_type, 1) ON CONFLICT (event_type) DO UPDATE SET n = c.n + 1;
END $$;
SELECT viewmig.register_projector('sec_counts', 'tenant.count(event_records)', ARRAY['view_schema.tenant_counts']::regclass[]);
SELECT viewmig.register_projector('tenant_counts', 'tenant.count(event_records)', ARRAY['view_schema.tenant_counts']::regclass[],
                                  live => true);
SELECT count(*) AS tenant_rows FROM viewmig.projector_versions WHERE owner = 'viewmig_sec_tenant'::regrole;
-- Registered without live, it is the tenant's projector.
SELECT viewmig.register_projector('tenant_counts', 'tenant.count(event_records)', ARRAY['view_schema.tenant_counts']::regclass[]);
RESET ROLE;
SELECT projector, version, owner, search_path FROM viewmig.projector_versions WHERE projector IN ('sec_counts', 'tenant_counts') ORDER BY 1, 2;
-- A superuser may not register a projector whose handler another role controls (the tenant
-- could change the code the superuser's projector runs) ...
SELECT viewmig.register_projector('trojan', 'tenant.count(event_records)', ARRAY['view_schema.sec_counts']::regclass[]);
-- ... and a replay run by the superuser runs the tenant's handler as the tenant, never as itself.
SELECT viewmig.prepare_initial(ARRAY['tenant_counts'], replay_schema => 'tenant_replay', archive_schema => 'tenant_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES ('00000000-0000-0000-0000-00000000f001', 1, 'SecurityProbe', '{}');
SELECT viewmig.replay_increment() AS incremented;
SELECT viewmig.prepare_completion();
SELECT viewmig.complete() >= 0 AS completed;
SELECT DISTINCT what, role FROM public.ran_as ORDER BY 1;
SELECT (SELECT sum(n) FROM view_schema.tenant_counts) = (SELECT count(*) FROM event_records) AS tenant_counted_everything;
DELETE FROM public.ran_as;
-- The tenant hands its handler to another role afterwards: its projector no longer runs.
ALTER FUNCTION tenant.count(event_records) OWNER TO viewmig_sec_dbowner;
SELECT viewmig.prepare_initial(ARRAY['tenant_counts'], replay_schema => 'tenant_replay', archive_schema => 'tenant_archive') > 0 AS prepared;
SELECT viewmig.replay_initial();
SELECT viewmig.abort() IS NOT NULL AS ended;
ALTER FUNCTION tenant.count(event_records) OWNER TO viewmig_sec_tenant;

-- Live handlers run as the projector's owner, never as the inserting role, and with the
-- projector's recorded search_path, never the inserting session's.
GRANT TRIGGER ON event_records TO viewmig_sec_tenant;
SET ROLE viewmig_sec_tenant;
SELECT viewmig.register_projector('tenant_counts', 'tenant.count(event_records)', ARRAY['view_schema.tenant_counts']::regclass[],
                                  live => true);
RESET ROLE;
SELECT viewmig.prepare_initial(ARRAY['tenant_counts'], replay_schema => 'tenant_replay', archive_schema => 'tenant_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.prepare_completion();
SELECT viewmig.complete() >= 0 AS completed;
DELETE FROM public.ran_as;
SET ROLE viewmig_sec_writer;
SET search_path = public;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES ('00000000-0000-0000-0000-00000000f002', 1, 'SecurityProbe', '{}');
RESET search_path;
RESET ROLE;
SELECT what, role FROM public.ran_as ORDER BY 1;
DELETE FROM public.ran_as;
-- The tenant's handler is not a SECURITY DEFINER: the writer's rights are not the tenant's, and
-- the tenant's code could not have used the writer's (the writer may not write tenant_counts).
SET ROLE viewmig_sec_writer;
INSERT INTO view_schema.tenant_counts VALUES ('x', 1);
RESET ROLE;
-- The inserting role's temporary table named like a managed table neither receives the owner's
-- writes nor feeds its reads: the handler's search_path names pg_temp last.
SET ROLE viewmig_sec_writer;
CREATE TEMP TABLE tenant_counts (event_type text PRIMARY KEY, n bigint NOT NULL);
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES ('00000000-0000-0000-0000-00000000f005', 1, 'SecurityProbe', '{}');
SELECT count(*) AS rows_in_the_writers_temp_table FROM pg_temp.tenant_counts;
DROP TABLE pg_temp.tenant_counts;
RESET ROLE;
DELETE FROM public.ran_as;
-- A live handler given away afterwards (here the handler of the superuser's live projector "blog"
-- to the tenant, who could then change the code that runs as the superuser) stops its projector:
-- the insert fails.
SELECT handler AS blog_handler FROM viewmig.projector_versions WHERE projector = 'blog' AND status = 'active' AND live \gset
ALTER FUNCTION :blog_handler OWNER TO viewmig_sec_tenant;
SET ROLE viewmig_sec_writer;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES ('00000000-0000-0000-0000-00000000f007', 1, 'SecurityProbe', '{}');
RESET ROLE;
ALTER FUNCTION :blog_handler OWNER TO CURRENT_USER;
-- A trigger with viewmig's function on any other table is refused when it fires: the tenant
-- can not feed its own "events" to other roles' projectors.
SET ROLE viewmig_sec_tenant;
CREATE TABLE tenant.fake_events (LIKE public.event_records);
CREATE TRIGGER feed AFTER INSERT ON tenant.fake_events FOR EACH ROW EXECUTE FUNCTION viewmig.live_projection();
INSERT INTO tenant.fake_events (id, aggregate_id, sequence_number, event_type, event_json, created_at, xact_id)
VALUES (1, '00000000-0000-0000-0000-00000000f003', 1, 'SecurityProbe', '{}', now(), 1);
RESET ROLE;
SELECT count(*) AS fake_events_projected FROM public.ran_as;

-- 4. Shared configuration: the event store is named by the owner of the event table only.
SET ROLE viewmig_sec_reader;
SELECT viewmig.set_event_store('event_records');
RESET ROLE;
SET ROLE viewmig_sec_tenant;
CREATE TABLE tenant.events (LIKE public.event_records INCLUDING ALL);
SELECT viewmig.set_event_store('tenant.events');
RESET ROLE;
SELECT events FROM viewmig.event_store;

-- 5. Stored DDL runs as the role that stored it, when that role (or a member) asks.
SET ROLE viewmig_sec_tenant;
SELECT viewmig.define_table_sql('tenant_audit', 'CREATE TABLE tenant_audit%SUFFIX% (id int PRIMARY KEY)', view_schema => 'tenant');
RESET ROLE;
SET ROLE viewmig_sec_reader;
SET client_min_messages = notice;
SELECT viewmig.create_view_tables();
SET client_min_messages = warning;
RESET ROLE;
SELECT to_regclass('tenant.tenant_audit') AS created_for_the_reader;
SELECT viewmig.create_view_tables();
SELECT pg_get_userbyid(relowner) AS tenant_audit_owner FROM pg_class WHERE oid = 'tenant.tenant_audit'::regclass;

-- A view-schema version names projectors to rebuild: only their owners define it.
SET ROLE viewmig_sec_tenant;
SELECT viewmig.define_view_schema_version(100, ARRAY['sec_counts']);
RESET ROLE;
SELECT count(*) AS versions_defined FROM viewmig.view_schema_version_definitions WHERE version = 100;

-- A declarative projector's table with a constant default: evaluating it (to compile the rules)
-- runs the table owner's "immutable" function as that owner, even when a superuser replays.
SET ROLE viewmig_sec_tenant;
CREATE FUNCTION tenant.start_value() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RAISE WARNING 'tenant.start_value() runs as %', current_user;
    RETURN 0;
END $$;
RESET ROLE;
CREATE TABLE view_schema.tenant_types (event_type text PRIMARY KEY, n int NOT NULL DEFAULT tenant.start_value());
ALTER TABLE view_schema.tenant_types OWNER TO viewmig_sec_tenant;
SET ROLE viewmig_sec_tenant;
SELECT viewmig.register_declarative_projector('tenant_types',
    '{"SecurityProbe": [{"upsert": "tenant_types", "key": {"event_type": "event_type"}, "values": {"n": 1}, "set": {"n": {"add": 1}}}]}',
    ARRAY['view_schema.tenant_types']::regclass[]) AS version;
RESET ROLE;
DELETE FROM public.ran_as;
SELECT viewmig.prepare_initial(ARRAY['tenant_types'], replay_schema => 'tenant_replay', archive_schema => 'tenant_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.abort() AS ended;

-- The replay copy of a view table belongs to the table's owner before any of its indexes or
-- EXCLUDE constraints is built: their expressions (a tenant's "immutable" function, folded at once
-- for a constant argument) never run as the superuser who prepares the replay.
SET ROLE viewmig_sec_tenant;
CREATE FUNCTION tenant.payload() RETURNS int VOLATILE LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('index expression', current_user);
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE 'ALTER ROLE viewmig_sec_tenant SUPERUSER';
    END IF;
    RETURN 0;
END $$;
CREATE FUNCTION tenant.evil(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM tenant.payload(); RETURN $1; END $$;
RESET ROLE;
-- (The superuser builds them on the tenant's table: PostgreSQL runs their expressions as the
-- table's owner.)
CREATE TABLE view_schema.tenant_marks (event_type text, n bigint);
ALTER TABLE view_schema.tenant_marks OWNER TO viewmig_sec_tenant;
ALTER TABLE view_schema.tenant_marks ADD EXCLUDE USING btree ((n + tenant.evil(0)) WITH =);
CREATE INDEX tenant_marks_idx ON view_schema.tenant_marks ((n + tenant.evil(1)));
SET ROLE viewmig_sec_tenant;
SELECT viewmig.register_projector('tenant_marks', 'tenant.steal(event_records)', ARRAY['view_schema.tenant_marks']::regclass[],
                                  additional_replay_indexes => ARRAY['tenant_marks_idx']);
RESET ROLE;
DELETE FROM public.ran_as;
SELECT viewmig.prepare_initial(ARRAY['tenant_marks'], replay_schema => 'tenant_replay', archive_schema => 'tenant_archive') > 0 AS prepared;
SELECT DISTINCT what, role FROM public.ran_as WHERE what = 'index expression' ORDER BY 1;
SELECT rolsuper AS tenant_is_superuser FROM pg_roles WHERE rolname = 'viewmig_sec_tenant';
SELECT viewmig.abort() AS ended;
DELETE FROM public.ran_as;

-- A live handler resolves names through its owner's recorded search_path; the shared view schema
-- comes after it, so a function a tenant creates there never takes the place of one the handler calls.
GRANT TRIGGER ON event_records TO viewmig_sec_dbowner;
CREATE TABLE view_schema.dbo_counts (event_type text PRIMARY KEY, n bigint NOT NULL);
ALTER TABLE view_schema.dbo_counts OWNER TO viewmig_sec_dbowner;
SET ROLE viewmig_sec_dbowner;
CREATE FUNCTION dbo.bump(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO view_schema.dbo_counts AS c VALUES (t, 1) ON CONFLICT (event_type) DO UPDATE SET n = c.n + 1;
END $$;
CREATE FUNCTION dbo.count_live(e event_records) RETURNS void LANGUAGE plpgsql AS $$ BEGIN PERFORM bump(e.event_type); END $$;
SET search_path = "$user", dbo, public;
SELECT viewmig.register_projector('dbo_counts', 'dbo.count_live(public.event_records)', ARRAY['view_schema.dbo_counts']::regclass[],
                                  live => true);
RESET search_path;
RESET ROLE;
-- The shared view schema: once a role without an owner's rights may create there, a function of
-- its own could win over one the owner's handler calls (the best match wins wherever it is in
-- the path: a bump(integer) beats bump(bigint) for an integer argument). Live projectors whose
-- search_path holds the view schema then refuse to run: the insert fails, nothing runs as anyone.
GRANT CREATE ON SCHEMA view_schema TO viewmig_sec_tenant;
SET ROLE viewmig_sec_tenant;
CREATE FUNCTION view_schema.bump(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('shadowing bump', current_user);
END $$;
RESET ROLE;
SET ROLE viewmig_sec_writer;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES ('00000000-0000-0000-0000-00000000f004', 1, 'SecurityProbe', '{}');
RESET ROLE;
SELECT what, role FROM public.ran_as WHERE what = 'shadowing bump';
DROP FUNCTION view_schema.bump(text);
REVOKE CREATE ON SCHEMA view_schema FROM viewmig_sec_tenant;
SET ROLE viewmig_sec_writer;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES ('00000000-0000-0000-0000-00000000f004', 1, 'SecurityProbe', '{}');
RESET ROLE;
SELECT event_type, n FROM view_schema.dbo_counts;
DELETE FROM public.ran_as;
-- The path was recorded as it resolved at registration: "$user" named no schema then, so a schema
-- the tenant creates under the owner's name later (also from its own handler, in the middle of a
-- replay) never enters it — neither shadowing bump() nor stopping the inserts.
SELECT search_path FROM viewmig.projector_versions WHERE projector = 'dbo_counts';
SET ROLE viewmig_sec_tenant;
CREATE SCHEMA viewmig_sec_dbowner;
GRANT USAGE ON SCHEMA viewmig_sec_dbowner TO PUBLIC;
CREATE FUNCTION viewmig_sec_dbowner.bump(t text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.ran_as VALUES ('planted bump', current_user);
END $$;
RESET ROLE;
SET ROLE viewmig_sec_writer;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES ('00000000-0000-0000-0000-00000000f006', 1, 'SecurityProbe', '{}');
RESET ROLE;
SELECT what, role FROM public.ran_as WHERE what = 'planted bump';
SELECT event_type, n FROM view_schema.dbo_counts;
DROP SCHEMA viewmig_sec_dbowner CASCADE;
-- A managed table given to another role: the superuser's projector would write a table whose
-- triggers that role decides, so it refuses to run (also when a table is dropped and a tenant's
-- is created under the name).
CREATE TABLE view_schema.su_marks (event_type text PRIMARY KEY);
CREATE FUNCTION public.su_mark(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO su_marks VALUES (e.event_type) ON CONFLICT DO NOTHING;
END $$;
SELECT viewmig.register_projector('su_marks', 'public.su_mark(public.event_records)', ARRAY['view_schema.su_marks']::regclass[]);
ALTER TABLE view_schema.su_marks OWNER TO viewmig_sec_tenant;
SELECT viewmig.prepare_initial(ARRAY['su_marks'], replay_schema => 'sec_replay', archive_schema => 'sec_archive') > 0 AS prepared;
-- A projector registered with the view schema in its search_path: during a replay its tables come
-- from the replay schema, and a helper function of its own in the view schema is still found.
CREATE FUNCTION view_schema.dbo_label(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'seen ' || t $$;
ALTER FUNCTION view_schema.dbo_label(text) OWNER TO viewmig_sec_dbowner;
CREATE TABLE view_schema.dbo_labels (label text PRIMARY KEY);
ALTER TABLE view_schema.dbo_labels OWNER TO viewmig_sec_dbowner;
SET ROLE viewmig_sec_dbowner;
CREATE FUNCTION dbo.label(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dbo_labels VALUES (dbo_label(e.event_type)) ON CONFLICT DO NOTHING;
END $$;
SET search_path = view_schema, dbo, public;
SELECT viewmig.register_projector('dbo_labels', 'dbo.label(public.event_records)', ARRAY['view_schema.dbo_labels']::regclass[]);
RESET search_path;
RESET ROLE;
SELECT viewmig.prepare_initial(ARRAY['dbo_labels'], replay_schema => 'sec_replay', archive_schema => 'sec_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT count(*) AS live_rows_written_by_the_replay FROM view_schema.dbo_labels;
SELECT viewmig.prepare_completion();
SELECT viewmig.complete() >= 0 AS completed;
SELECT label FROM view_schema.dbo_labels WHERE label = 'seen SecurityProbe';

-- The read-only role changes nothing.
SET ROLE viewmig_sec_reader;
SELECT viewmig.register_projector('reader', 'tenant.count(event_records)', ARRAY['view_schema.tenant_counts']::regclass[]);
SELECT viewmig.prepare_initial(ARRAY['tenant_counts']) > 0 AS prepared;
SELECT viewmig.abort() IS NOT NULL AS ended;
UPDATE viewmig.projector_versions SET owner = 'viewmig_sec_reader';
RESET ROLE;

SELECT n.nspname, pg_get_userbyid(s.stxowner) AS owner, s.stxrelid::regclass AS on_table
FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
WHERE s.stxrelid IN (SELECT oid FROM pg_class WHERE relname = 'tenant_counts') ORDER BY 1;

-- Clean up.
SELECT viewmig.abort() IS NOT NULL AS ended;
DELETE FROM viewmig.projector_versions WHERE projector IN ('sec_counts', 'tenant_counts', 'tenant_types', 'tenant_marks', 'dbo_counts', 'dbo_labels', 'su_marks');
DELETE FROM viewmig.table_definitions WHERE table_name = 'tenant_audit';
DROP TABLE public.ran_as, view_schema.sec_counts, view_schema.tenant_counts, tenant.tenant_audit, view_schema.tenant_types, view_schema.su_marks,
           view_schema.tenant_marks, view_schema.dbo_counts, view_schema.dbo_labels;
DROP FUNCTION view_schema.dbo_label(text), public.su_mark(event_records);
DROP SCHEMA trap, tenant, dbo, tenant_archive, sec_archive CASCADE;
REVOKE ALL ON SCHEMA view_schema FROM viewmig_sec_dbowner;
REVOKE ALL ON event_records FROM viewmig_sec_writer, viewmig_sec_tenant, viewmig_sec_reader, viewmig_sec_dbowner;
REVOKE ALL ON SEQUENCE event_records_id_seq FROM viewmig_sec_writer, viewmig_sec_tenant;
REVOKE ALL ON SCHEMA view_schema FROM viewmig_sec_tenant, viewmig_sec_reader, viewmig_sec_writer;
REVOKE CREATE ON DATABASE contrib_regression FROM viewmig_sec_dbowner, viewmig_sec_tenant;
DROP ROLE viewmig_sec_dbowner, viewmig_sec_tenant, viewmig_sec_writer, viewmig_sec_reader;
