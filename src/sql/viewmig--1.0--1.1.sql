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
-- registering role to have that owner's rights) and gets PostgreSQL's default search_path.
ALTER TABLE viewmig.projector_versions ADD COLUMN owner regrole, ADD COLUMN search_path text;
UPDATE viewmig.projector_versions v
SET owner = coalesce((SELECT c.relowner FROM pg_catalog.pg_class c
                      JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                      WHERE n.nspname OPERATOR(pg_catalog.=) f.view_schema
                        AND c.relname OPERATOR(pg_catalog.=) f.managed_tables[1]),
                     (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'viewmig'))::regrole,
    search_path = '"$user", public'
FROM (SELECT DISTINCT ON (projector) projector, view_schema, managed_tables FROM viewmig.projector_versions
      ORDER BY projector, version) f
WHERE f.projector OPERATOR(pg_catalog.=) v.projector;
ALTER TABLE viewmig.projector_versions ALTER COLUMN owner SET NOT NULL, ALTER COLUMN search_path SET NOT NULL;



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

