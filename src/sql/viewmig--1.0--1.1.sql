-- viewmig 1.0 -> 1.1: the trust release (rights, crash freedom, backups, upgrades).
-- A fresh CREATE EXTENSION viewmig runs viewmig--1.0.sql and then this script, so new
-- installations and upgraded ones have exactly the same catalog. Keep every statement valid
-- on a 1.0 catalog that holds live state (registered projectors, an active replay, queued jobs).

\echo Use "ALTER EXTENSION viewmig UPDATE TO '1.1'" to load this file. \quit

-- ---- rights: projector owners, stored code run as its definer (classes 1-5) -------------------


-- ---- crash freedom and foreign transaction ids (classes 6, 13) -------------------------------


-- ---- complete(): archive, changed view tables, snapshot horizon (classes 7-9) ----------------


-- ---- schema migrations and stuck states (classes 10-11) --------------------------------------


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
