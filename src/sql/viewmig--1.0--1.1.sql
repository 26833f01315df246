-- viewmig 1.0 -> 1.1: the trust release (rights, crash freedom, backups, upgrades).
-- A fresh CREATE EXTENSION viewmig runs viewmig--1.0.sql and then this script, so new
-- installations and upgraded ones have exactly the same catalog. Keep every statement valid
-- on a 1.0 catalog that holds live state (registered projectors, an active replay, queued jobs).

\echo Use "ALTER EXTENSION viewmig UPDATE TO '1.1'" to load this file. \quit

-- ---- rights: projector owners, stored code run as its definer (classes 1-5) -------------------

-- A projector belongs to the role that registered it first: its handler runs as that role, with
-- the view or replay schema first in search_path and then the search_path of the session that
-- registered it (as CREATE FUNCTION ... SET search_path). 1.0 recorded neither: a projector
-- registered under 1.0 belongs to the owner of its first managed table (1.0 required the
-- registering role to have that owner's rights) — or, that table gone, to its handler's owner, never
-- to the extension owner — and gets PostgreSQL's default search_path, resolved.
ALTER TABLE viewmig.projector_versions ADD COLUMN owner regrole, ADD COLUMN search_path text;
UPDATE viewmig.projector_versions v
SET owner = coalesce((SELECT c.relowner FROM pg_catalog.pg_class c
                      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                      WHERE n.nspname OPERATOR(pg_catalog.=) f.view_schema
                        AND c.relname OPERATOR(pg_catalog.=) f.managed_tables[1]),
                     (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) f.handler))::regrole,
    search_path = '"$user", public'
FROM (SELECT DISTINCT ON (projector) projector, view_schema, managed_tables, handler FROM viewmig.projector_versions
      ORDER BY projector, version) f
WHERE f.projector OPERATOR(pg_catalog.=) v.projector;
-- As registration records it: "$user" spelled out only when that schema exists now, so a schema
-- created later under the owner's name never enters the handler's path.
UPDATE viewmig.projector_versions v
SET search_path = CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n
                                    WHERE n.nspname OPERATOR(pg_catalog.=) pg_catalog.pg_get_userbyid(v.owner))
                       THEN pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(v.owner)) OPERATOR(pg_catalog.||) ', public'
                       ELSE 'public' END;
ALTER TABLE viewmig.projector_versions ALTER COLUMN owner SET NOT NULL, ALTER COLUMN search_path SET NOT NULL;



-- viewmig.throttle_function is called by the launcher, as the bootstrap superuser. Only a
-- superuser may set it, but a function in a schema someone else owns (public belongs to the
-- database owner) can be dropped and created anew by that someone: only a function a superuser
-- owns runs; any other keeps schema migrations throttled, with a WARNING saying why.
CREATE OR REPLACE FUNCTION viewmig.schema_migrations_throttled(throttle_function text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    busy boolean;
    waiting bigint;
    fn regproc;
BEGIN
    IF coalesce(throttle_function, '') = '' THEN
        RETURN false;
    END IF;
    fn := throttle_function::regproc;
    IF NOT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.oid = fn AND r.rolsuper) THEN
        RAISE WARNING 'viewmig.throttle_function % is not owned by a superuser: background schema migrations stay throttled', fn
            USING HINT = 'It runs with the rights of the bootstrap superuser. ALTER FUNCTION ... OWNER TO a superuser, or reset viewmig.throttle_function.';
        RETURN true;
    END IF;
    EXECUTE format('SELECT %s()', fn) INTO busy;
    IF NOT coalesce(busy, false) THEN
        RETURN false;
    END IF;
    waiting := viewmig.next_runnable_schema_migration();
    IF waiting IS NOT NULL AND (SELECT e.event FROM viewmig.schema_migration_events e WHERE e.migration_id = waiting
                                ORDER BY e.id DESC LIMIT 1) IS DISTINCT FROM 'throttled' THEN
        PERFORM viewmig.record_schema_migration_event(waiting, 'throttled',
                                                      jsonb_build_object('function', throttle_function));
    END IF;
    RETURN true;
END;
$$;
REVOKE EXECUTE ON FUNCTION viewmig.schema_migrations_throttled(text) FROM PUBLIC;

-- ---- crash freedom and foreign transaction ids (classes 6, 13) -------------------------------


-- ---- complete(): archive, changed view tables, snapshot horizon (classes 7-9) ----------------

-- What prepare_initial copied of each view table: its OID and a description of its definition
-- (columns, constraints, indexes, triggers, policies, rules, owner, options; one line each,
-- sorted; see src/pg/table_definition.cpp). complete() describes the view table again and refuses
-- when it changed meanwhile, since the swap would move the change into the archive. Grants are not
-- part of it: complete() carries them over to the swapped-in table. A replay prepared before 1.1
-- has no rows here; complete() then says that it could not check.
CREATE TABLE viewmig.replay_copied_tables (
    replay_id    bigint NOT NULL REFERENCES viewmig.replays ON DELETE CASCADE,
    table_name   name NOT NULL,
    table_oid    oid NOT NULL,
    definition   text[] NOT NULL,
    PRIMARY KEY (replay_id, table_name)
);
GRANT SELECT ON viewmig.replay_copied_tables TO PUBLIC;


-- ---- schema migrations and stuck states (classes 10-11) --------------------------------------

-- Who may end a replay with viewmig.abort() (abort.cpp): a role with the privileges of the role
-- that prepared it, or with the owner's rights on every managed table that still exists. Replays
-- prepared by 1.0 did not record it: the owner of the replay schema viewmig created for them
-- (prepare_initial creates it as the preparing role) is that role.
ALTER TABLE viewmig.replays ADD COLUMN prepared_by regrole;
UPDATE viewmig.replays r SET prepared_by = n.nspowner::regrole
FROM viewmig.owned_schemas o JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) o.schema_oid
WHERE o.schema_name OPERATOR(pg_catalog.=) r.replay_schema AND r.state NOT IN ('completed', 'aborted');


-- ---- backups: pg_dump / pg_restore (class 12) ------------------------------------------------

-- pg_dump leaves out the tables of an extension unless they are marked here, yet it dumps the
-- objects of users that depend on viewmig (the live-projection trigger on the event table, the
-- declarative handlers in schema viewmig). Marked below: the configuration a restored database
-- needs to go on as before. Every filter keeps a row only when restoring it yields a correct
-- row in the new database; transient state is left out on purpose:
--   event_store, view_schema_versions, table_definitions, view_schema_version_definitions:
--     configuration, every row.
--   projector_versions: active and pending versions (retired ones are history, and their
--     handlers may be dropped). Whatever columns a later section adds dump with them.
--   owned_schemas: rows whose schema still exists (schema_oid is regnamespace below, so it dumps
--     as the name and restores as the new schema's OID): a replay or archive schema restored
--     with the user's data stays viewmig's to drop, and a row whose schema is gone can never
--     claim an unrelated schema that gets its OID in the new cluster.
--   background_schema_migrations (and its id sequence, so new ids follow the restored ones):
--     the unfinished ones -- enqueued, delayed, errored, failed (waiting for retry_schema_migration)
--     and running (the restored database has no worker: housekeeping counts it as an errored
--     attempt and retries it) -- with the whole composite they belong to (parent and children,
--     so parent_id always refers to a restored row), unless one of them names a table that is gone.
--   Not dumped: replays and their groups and deferred DDL (a replay in progress is bound to the
--     transaction ids of the old cluster: start it again after the restore; the replay schema it
--     left is restored as data and dropped by the next prepare_initial), view_schema_migration_tables
--     (only meaningful with that unfinished replay; migrate_online's "exists and was not created by
--     viewmig" error names the <table>_<version> tables to drop), jobs and job events (steps of
--     replays that are not carried over; enqueue them again), schema migration events (history).
-- A restore needs the roles first (pg_dumpall --globals-only): table_definitions.defined_by and
-- background_schema_migrations.run_as name roles, and a row whose role is missing fails to load.
ALTER TABLE viewmig.owned_schemas ALTER COLUMN schema_oid TYPE regnamespace USING schema_oid::regnamespace;

SELECT pg_catalog.pg_extension_config_dump('viewmig.event_store', '');
SELECT pg_catalog.pg_extension_config_dump('viewmig.projector_versions', $$WHERE status <> 'retired'$$);
SELECT pg_catalog.pg_extension_config_dump('viewmig.owned_schemas',
    $$WHERE schema_oid OPERATOR(pg_catalog.=) ANY (SELECT n.oid FROM pg_catalog.pg_namespace n)$$);
SELECT pg_catalog.pg_extension_config_dump('viewmig.view_schema_versions', '');
SELECT pg_catalog.pg_extension_config_dump('viewmig.table_definitions', '');
SELECT pg_catalog.pg_extension_config_dump('viewmig.view_schema_version_definitions', '');
SELECT pg_catalog.pg_extension_config_dump('viewmig.background_schema_migrations', $$
    WHERE coalesce(parent_id, id) OPERATOR(pg_catalog.=) ANY (
        SELECT coalesce(t.parent_id, t.id) FROM viewmig.background_schema_migrations t
        WHERE t.status OPERATOR(pg_catalog.=) ANY ('{enqueued,delayed,errored,failed,running}'::pg_catalog.text[]))
    AND NOT coalesce(parent_id, id) OPERATOR(pg_catalog.=) ANY (
        SELECT coalesce(t.parent_id, t.id) FROM viewmig.background_schema_migrations t
        WHERE NOT t.table_name OPERATOR(pg_catalog.=) ANY (SELECT c.oid FROM pg_catalog.pg_class c))$$);
SELECT pg_catalog.pg_extension_config_dump('viewmig.background_schema_migrations_id_seq', '');
-- Whoever may read the configuration (everyone: see the GRANT in viewmig--1.0.sql) may dump it,
-- a database owner who is not a superuser included; pg_dump reads the sequence too.
GRANT SELECT ON SEQUENCE viewmig.background_schema_migrations_id_seq TO PUBLIC;
