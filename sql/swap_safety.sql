-- What complete() and the other steps must never drop or undo (issue 14, classes 7 and 8):
--  * a DROP SCHEMA ... CASCADE of a schema viewmig created is refused while objects viewmig did
--    not create (a view, a foreign key, a column, a function ...) depend on what is in it;
--  * complete() refuses when a view table's definition changed since prepare_initial copied it
--    (the swap would move the change into the archive), and carries grants over.
SET viewmig.progress_interval = 0;
CREATE TABLE view_schema.guard_counts (aggregate_id uuid PRIMARY KEY, n int NOT NULL DEFAULT 0);
CREATE FUNCTION public.guard_count_event(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO guard_counts AS c VALUES (e.aggregate_id, 1) ON CONFLICT (aggregate_id) DO UPDATE SET n = c.n + 1;
END $$;
SELECT viewmig.register_projector('guard', 'public.guard_count_event(event_records)', ARRAY['view_schema.guard_counts']::regclass[]);
CREATE ROLE guard_reader;
CREATE ROLE guard_other_owner;
GRANT SELECT ON view_schema.guard_counts TO guard_reader;

-- A first replay and swap: the previous tables go to schema guard_archive.
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['guard'], replay_schema => 'guard_replay', archive_schema => 'guard_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.prepare_completion();
SELECT viewmig.complete() >= 0 AS completed;
RESET client_min_messages;
-- what prepare_initial recorded of the view table, to compare at complete()
SELECT table_name, definition FROM viewmig.replay_copied_tables c JOIN viewmig.replays r ON r.id = c.replay_id
WHERE r.replay_schema = 'guard_replay' ORDER BY r.id DESC LIMIT 1;

-- 1. Class 7: others build on the archived table. The next complete() would drop schema
--    guard_archive with CASCADE, and all of these with it: it refuses and lists them.
CREATE VIEW public.archived_counts AS SELECT * FROM guard_archive.guard_counts;
CREATE TABLE public.keeps_archived (id uuid REFERENCES guard_archive.guard_counts);
CREATE TABLE public.holds_row (r guard_archive.guard_counts);
CREATE FUNCTION public.takes_row(guard_archive.guard_counts) RETURNS int LANGUAGE sql AS 'SELECT 1';
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['guard'], replay_schema => 'guard_replay', archive_schema => 'guard_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.prepare_completion();
RESET client_min_messages;
SELECT viewmig.complete();
-- nothing happened: the objects are there, the replay waits, the view table is the old one
SELECT count(*) FROM pg_class WHERE oid IN ('public.archived_counts'::regclass, 'public.keeps_archived'::regclass,
    'public.holds_row'::regclass);
SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1;
DROP VIEW public.archived_counts;
DROP TABLE public.keeps_archived, public.holds_row;
DROP FUNCTION public.takes_row(guard_archive.guard_counts);
-- Nor may it drop what others put into the archive schema, or what builds on that.
CREATE VIEW guard_archive.inside_view AS SELECT * FROM guard_archive.guard_counts;
CREATE FUNCTION guard_archive.helper() RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE VIEW public.via_inside AS SELECT * FROM guard_archive.inside_view;
SELECT viewmig.complete();
DROP VIEW public.via_inside, guard_archive.inside_view;
DROP FUNCTION guard_archive.helper();
-- What viewmig put there (the archived table, its index, sequence, ...) goes; a trigger or an
-- index someone added to the archived table belongs to it and goes too.
CREATE INDEX archived_n_idx ON guard_archive.guard_counts (n);
SET client_min_messages = warning;
SELECT viewmig.complete() >= 0 AS completed;
RESET client_min_messages;
SELECT to_regclass('guard_archive.archived_n_idx') AS archived_index_gone;

-- 2. abort() too drops only what viewmig created: a view onto a replay table stops it.
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['guard'], replay_schema => 'guard_replay', archive_schema => 'guard_archive') > 0 AS prepared;
RESET client_min_messages;
CREATE VIEW public.replay_peek AS SELECT count(*) FROM guard_replay.guard_counts;
SELECT viewmig.abort();
SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1;
DROP VIEW public.replay_peek;
SELECT viewmig.abort();

-- 3. Class 8: the view table changes while a replay is under way. complete() would swap in the
--    copy made at prepare_initial and move all of this into the archive: it refuses and says what.
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['guard'], replay_schema => 'guard_replay', archive_schema => 'guard_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.prepare_completion();
RESET client_min_messages;
ALTER TABLE view_schema.guard_counts ADD COLUMN note text DEFAULT 'kept by hand';
CREATE INDEX counts_n_idx ON view_schema.guard_counts (n);
ALTER TABLE view_schema.guard_counts ADD CONSTRAINT counts_n_positive CHECK (n > 0);
CREATE FUNCTION public.guard_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER counts_audit BEFORE UPDATE ON view_schema.guard_counts FOR EACH ROW EXECUTE FUNCTION public.guard_audit();
ALTER TABLE view_schema.guard_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY counts_reader ON view_schema.guard_counts FOR SELECT TO guard_reader USING (n > 1);
ALTER TABLE view_schema.guard_counts OWNER TO guard_other_owner;
SELECT viewmig.complete();
SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1;
SELECT attname FROM pg_attribute WHERE attrelid = 'view_schema.guard_counts'::regclass AND attname = 'note';
-- Undo the changes (grants need nothing): complete() then swaps and carries the grants over.
ALTER TABLE view_schema.guard_counts OWNER TO CURRENT_USER;
DROP POLICY counts_reader ON view_schema.guard_counts;
ALTER TABLE view_schema.guard_counts DISABLE ROW LEVEL SECURITY;
DROP TRIGGER counts_audit ON view_schema.guard_counts;
ALTER TABLE view_schema.guard_counts DROP CONSTRAINT counts_n_positive;
DROP INDEX view_schema.counts_n_idx;
ALTER TABLE view_schema.guard_counts DROP COLUMN note;
GRANT INSERT ON view_schema.guard_counts TO guard_reader;
GRANT SELECT (n) ON view_schema.guard_counts TO guard_other_owner;
REVOKE SELECT ON view_schema.guard_counts FROM guard_reader;
\set VERBOSITY terse
SELECT viewmig.complete() >= 0 AS completed;
\set VERBOSITY default
SELECT grantee, privilege_type FROM information_schema.role_table_grants
WHERE table_schema = 'view_schema' AND table_name = 'guard_counts' AND grantee LIKE 'guard%' ORDER BY 1, 2;
SELECT grantee, column_name, privilege_type FROM information_schema.column_privileges
WHERE table_schema = 'view_schema' AND table_name = 'guard_counts' AND grantee LIKE 'guard%' ORDER BY 1, 2, 3;

-- 4. A table dropped and created again under the same name is not the table that was copied.
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['guard'], replay_schema => 'guard_replay', archive_schema => 'guard_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.prepare_completion();
RESET client_min_messages;
BEGIN;
ALTER TABLE view_schema.guard_counts RENAME TO counts_old;
CREATE TABLE view_schema.guard_counts (LIKE view_schema.counts_old INCLUDING ALL);
SELECT viewmig.complete();
ROLLBACK;
SELECT viewmig.abort();

-- 5. A versioned view-schema migration swaps by renaming: migrate_offline gives the table taking
--    the name the grants of the table it renames away (the application reads through them).
CREATE ROLE guard_app;
GRANT SELECT ON view_schema."post titles" TO guard_app;
GRANT UPDATE (published) ON view_schema."post titles" TO guard_app;
SELECT viewmig.current_view_schema_version();
SELECT viewmig.define_view_schema_version(3, ARRAY['shop_posts']);
SET client_min_messages = warning;
SELECT viewmig.migrate_online() >= 0 AS replayed;
SELECT viewmig.migrate_offline() >= 0 AS migrated;
RESET client_min_messages;
SELECT viewmig.current_view_schema_version();
SELECT table_name, grantee, privilege_type FROM information_schema.role_table_grants
WHERE table_schema = 'view_schema' AND table_name LIKE 'post titles%' AND grantee = 'guard_app' ORDER BY 1, 2, 3;
SELECT table_name, column_name, privilege_type FROM information_schema.column_privileges
WHERE table_schema = 'view_schema' AND table_name LIKE 'post titles%' AND grantee = 'guard_app'
  AND privilege_type = 'UPDATE' ORDER BY 1, 2, 3;

-- 6. A replay prepared by viewmig 1.0 (before ALTER EXTENSION viewmig UPDATE) has no record of
--    what was copied: complete() says it could not check, and completes.
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['guard'], replay_schema => 'guard_replay', archive_schema => 'guard_archive') > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.prepare_completion();
RESET client_min_messages;
DELETE FROM viewmig.replay_copied_tables WHERE replay_id = (SELECT max(id) FROM viewmig.replays);
\set VERBOSITY terse
SELECT viewmig.complete() >= 0 AS completed;
\set VERBOSITY default
SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1;
