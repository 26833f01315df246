-- viewmig 1.0 -> 1.1: the trust release (rights, crash freedom, backups, upgrades).
-- A fresh CREATE EXTENSION viewmig runs viewmig--1.0.sql and then this script, so new
-- installations and upgraded ones have exactly the same catalog. Keep every statement valid
-- on a 1.0 catalog that holds live state (registered projectors, an active replay, queued jobs).

\echo Use "ALTER EXTENSION viewmig UPDATE TO '1.1'" to load this file. \quit

-- ---- rights: projector owners, stored code run as its definer (classes 1-5) -------------------


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


-- ---- backups: pg_dump / pg_restore (class 12) ------------------------------------------------

