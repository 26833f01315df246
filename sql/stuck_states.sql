-- Stuck states (issue 14, class 11): nothing viewmig leaves behind may block every later replay.
--  1. enqueue() checks argument VALUES with the steps' own checks, so a replay job can not fail
--     hours later after having prepared a replay (workers => -3 used to do just that);
--  2. abort() can end a replay whose view tables were dropped: the role that prepared it (or who
--     has the owner's rights on every table still there) may; a stranger never may.
SET viewmig.progress_interval = 0;

-- 1. Values, not only types. Nothing is queued.
SELECT count(*) AS jobs_before FROM viewmig.jobs \gset
SELECT viewmig.enqueue('replay', '{"workers": -3}');
SELECT viewmig.enqueue('replay', '{"workers": 0}');
\set VERBOSITY terse
SELECT viewmig.enqueue('replay', '{"workers": 100000}');
\set VERBOSITY default
SELECT viewmig.enqueue('replay', '{"batch_size": 0}');
SELECT viewmig.enqueue('replay', '{"lag_threshold": -1}');
SELECT viewmig.enqueue('replay', '{"max_increments": 0}');
SELECT viewmig.enqueue('replay', '{"projectors": ["no_such_projector"]}');
SELECT viewmig.enqueue('replay', '{"projectors": []}');
SELECT viewmig.enqueue('replay', '{"replay_schema": "view_schema"}');
SELECT viewmig.enqueue('replay', '{"replay_schema": "public"}');
SELECT viewmig.enqueue('replay', '{"replay_schema": null}');
SELECT viewmig.enqueue('replay', '{"replay_schema": "same", "archive_schema": "same"}');
SELECT viewmig.enqueue('prepare_initial', '{"archive_schema": "replay_schema"}');
SELECT viewmig.enqueue('replay_initial', '{"workers": -3}');
SELECT viewmig.enqueue('replay_increment', '{"batch_size": -1}');
SELECT viewmig.enqueue('migrate_online', '{"batch_size": 0}');
SELECT count(*) - :jobs_before AS jobs_added FROM viewmig.jobs;
-- The same values are fine as NULLs (the step's default) and at their limits.
SET client_min_messages = error;  -- no launcher serves this database: a WARNING says so
SELECT viewmig.enqueue('replay', '{"workers": null, "batch_size": null, "lag_threshold": 0, "max_increments": 1, "projectors": null}') AS job \gset
RESET client_min_messages;
SELECT kind, arguments, status FROM viewmig.jobs WHERE id = :job;
SELECT viewmig.cancel_job(:job);

-- 2. A replay whose view tables were dropped. try_abort() shows abort()'s outcome with the
--    replay's id left out (ids depend on the tests before this one).
CREATE FUNCTION pg_temp.try_abort() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    detail text;
    hint text;
BEGIN
    RETURN 'aborted: ' || viewmig.abort();
EXCEPTION WHEN insufficient_privilege THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN concat_ws(E'\n', regexp_replace(SQLERRM, 'replay \d+', 'replay N'), nullif(detail, ''), nullif(hint, ''));
END $$;
CREATE ROLE viewmig_stuck_owner;
CREATE ROLE viewmig_stuck_stranger;
GRANT CREATE ON DATABASE contrib_regression TO viewmig_stuck_owner;
GRANT SELECT ON event_records TO viewmig_stuck_owner;
GRANT USAGE, CREATE ON SCHEMA view_schema TO viewmig_stuck_owner;
CREATE SCHEMA stuck_views AUTHORIZATION viewmig_stuck_owner;
SET ROLE viewmig_stuck_owner;
CREATE TABLE view_schema.stuck_a (event_type text PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE view_schema.stuck_b (event_type text PRIMARY KEY, n bigint NOT NULL);
CREATE FUNCTION stuck_views.count_events(e event_records) RETURNS void LANGUAGE sql AS $$
    INSERT INTO view_schema.stuck_a AS c VALUES (e.event_type, 1) ON CONFLICT (event_type) DO UPDATE SET n = c.n + 1;
$$;
SELECT viewmig.register_projector('stuck', 'stuck_views.count_events(event_records)',
                                  ARRAY['view_schema.stuck_a', 'view_schema.stuck_b']::regclass[]);
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['stuck'], replay_schema => 'stuck_replay', archive_schema => 'stuck_archive') AS replay \gset
RESET client_min_messages;
RESET ROLE;
SELECT prepared_by FROM viewmig.replays WHERE id = :replay;

-- 2a. One table dropped: the steps still refuse (the table is missing), but abort() works for
--     the role that prepared it. A stranger may not abort it.
SET ROLE viewmig_stuck_owner;
DROP TABLE view_schema.stuck_b;
SELECT viewmig.replay_initial();
RESET ROLE;
SET ROLE viewmig_stuck_stranger;
SELECT pg_temp.try_abort();
RESET ROLE;
SELECT state FROM viewmig.replays WHERE id = :replay;
SET ROLE viewmig_stuck_owner;
SELECT pg_temp.try_abort();
RESET ROLE;
SELECT state, to_regnamespace('stuck_replay') IS NULL AS replay_schema_dropped FROM viewmig.replays WHERE id = :replay;

-- 2b. Every table dropped, and the row recorded no preparing role (a replay prepared by
--     viewmig 1.0): only the view schema's owner (here the superuser who created it) may end it.
SET ROLE viewmig_stuck_owner;
CREATE TABLE view_schema.stuck_b (event_type text PRIMARY KEY, n bigint NOT NULL);
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['stuck'], replay_schema => 'stuck_replay', archive_schema => 'stuck_archive') AS replay \gset
RESET client_min_messages;
DROP TABLE view_schema.stuck_a, view_schema.stuck_b;
RESET ROLE;
UPDATE viewmig.replays SET prepared_by = NULL WHERE id = :replay;
SET ROLE viewmig_stuck_stranger;
SELECT pg_temp.try_abort();
RESET ROLE;
SET ROLE viewmig_stuck_owner;
SELECT pg_temp.try_abort();
RESET ROLE;
SELECT state FROM viewmig.replays WHERE id = :replay;
SELECT pg_temp.try_abort();
SELECT state FROM viewmig.replays WHERE id = :replay;

-- 2c. Every table dropped, prepared by a role: a role with that role's privileges (here a member
--     of it) ends it; a stranger may not, and the error names who may.
CREATE ROLE viewmig_stuck_member IN ROLE viewmig_stuck_owner;
SET ROLE viewmig_stuck_owner;
CREATE TABLE view_schema.stuck_a (event_type text PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE view_schema.stuck_b (event_type text PRIMARY KEY, n bigint NOT NULL);
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['stuck'], replay_schema => 'stuck_replay', archive_schema => 'stuck_archive') AS replay \gset
RESET client_min_messages;
DROP TABLE view_schema.stuck_a, view_schema.stuck_b;
RESET ROLE;
SET ROLE viewmig_stuck_stranger;
SELECT pg_temp.try_abort();
RESET ROLE;
SET ROLE viewmig_stuck_member;
SELECT pg_temp.try_abort();
RESET ROLE;
SELECT state, prepared_by FROM viewmig.replays WHERE id = :replay;

-- 2d. Tables of the same names, created after the replay's were dropped, give their owner no
--     right to end it: the replay's tables are known by OID.
SET ROLE viewmig_stuck_owner;
CREATE TABLE view_schema.stuck_a (event_type text PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE view_schema.stuck_b (event_type text PRIMARY KEY, n bigint NOT NULL);
SET client_min_messages = warning;
SELECT viewmig.prepare_initial(ARRAY['stuck'], replay_schema => 'stuck_replay', archive_schema => 'stuck_archive') AS replay \gset
RESET client_min_messages;
DROP TABLE view_schema.stuck_a, view_schema.stuck_b;
RESET ROLE;
CREATE TABLE view_schema.stuck_a (event_type text PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE view_schema.stuck_b (event_type text PRIMARY KEY, n bigint NOT NULL);
ALTER TABLE view_schema.stuck_a OWNER TO viewmig_stuck_stranger;
ALTER TABLE view_schema.stuck_b OWNER TO viewmig_stuck_stranger;
SET ROLE viewmig_stuck_stranger;
SELECT pg_temp.try_abort();
RESET ROLE;
SET ROLE viewmig_stuck_owner;
SELECT pg_temp.try_abort();
RESET ROLE;
SELECT state FROM viewmig.replays WHERE id = :replay;
DROP TABLE view_schema.stuck_a, view_schema.stuck_b;

DELETE FROM viewmig.projector_versions WHERE projector = 'stuck';
DROP SCHEMA stuck_views CASCADE;
REVOKE ALL ON SCHEMA view_schema FROM viewmig_stuck_owner;
REVOKE ALL ON event_records FROM viewmig_stuck_owner;
REVOKE CREATE ON DATABASE contrib_regression FROM viewmig_stuck_owner;
DROP ROLE viewmig_stuck_member, viewmig_stuck_owner, viewmig_stuck_stranger;
