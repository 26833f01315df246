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

