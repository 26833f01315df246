-- The whole replay lifecycle on the blog domain: live projection keeps the view tables current,
-- a new projector version is replayed into a fresh schema (surviving a handler failure by
-- resuming), caught up with increments, completed with a swap, and checked against a rebuild
-- from scratch.
SET viewmig.progress_interval = 0;

-- 1. Point viewmig at the events and register the projector; live => true keeps the view
--    tables current as events arrive.
SELECT viewmig.set_event_store('event_records');
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[], live => true);
SELECT projector, version, status FROM viewmig.projector_versions ORDER BY 1, 2;
-- Registering the same definition again changes nothing.
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[], live => true);

CREATE ROLE viewmig_reader;
GRANT SELECT ON view_schema.authors TO viewmig_reader;
GRANT SELECT (id, title) ON view_schema.posts TO viewmig_reader;
SELECT blog_events(1, 40, 3);
SELECT (SELECT count(*) FROM event_records) AS events, (SELECT count(*) FROM view_schema.authors) AS authors,
       (SELECT count(*) FROM view_schema.posts) AS posts, (SELECT count(*) FROM view_schema.post_tags) AS tags;

-- 2. A new version of the projector: another handler. It stays pending until complete().
CREATE TABLE fail_on (aggregate_id uuid);
CREATE TABLE sleep_on (aggregate_id uuid);
CREATE FUNCTION blog_projector_v2(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.fail_on f WHERE f.aggregate_id = e.aggregate_id) THEN
        RAISE EXCEPTION 'simulated failure on %', e.aggregate_id;
    END IF;
    IF EXISTS (SELECT 1 FROM public.sleep_on s WHERE s.aggregate_id = e.aggregate_id) THEN
        PERFORM pg_sleep(30);
    END IF;
    PERFORM blog_projector(e);
END $$;
-- The handler looks posts up by author: that index (a regular expression matching its name)
-- must exist during the replay; the other indexes can wait for prepare_completion.
SELECT viewmig.register_projector('blog', 'blog_projector_v2(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[],
    additional_replay_indexes => ARRAY['posts_author_.*'], live => true);
SELECT projector, version, handler, additional_replay_indexes, status FROM viewmig.projector_versions ORDER BY 1, 2;

-- 3. prepare_initial: replay_schema gets the tables with their constraints; other indexes wait.
SELECT viewmig.prepare_initial();
SELECT tablename FROM pg_tables WHERE schemaname = 'replay_schema' ORDER BY 1;
SELECT indexname FROM pg_indexes WHERE schemaname = 'replay_schema' ORDER BY 1;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
WHERE connamespace = 'replay_schema'::regnamespace ORDER BY 1;
SELECT kind, table_name, object_name, definition FROM viewmig.replay_deferred_ddl ORDER BY 1, 2, 3;
-- serial columns get a sequence of their own in the replay schema
SELECT pg_get_serial_sequence('replay_schema.post_tags', 'line');
SELECT obj_description('replay_schema.authors'::regclass, 'pg_class');
SELECT grantee, privilege_type FROM information_schema.role_table_grants
WHERE table_schema = 'replay_schema' AND grantee = 'viewmig_reader';
SELECT column_name, privilege_type FROM information_schema.column_privileges
WHERE table_schema = 'replay_schema' AND table_name = 'posts' AND grantee = 'viewmig_reader' ORDER BY 1;
SELECT id, state, projectors, versions, replay_schema FROM viewmig.status;

-- 4. replay_initial fails in a handler: the error names the event; groups done so far are kept.
INSERT INTO fail_on SELECT md5('post20/2')::uuid;
SELECT viewmig.replay_initial(batch_size => 40);
SELECT state, groups_total, groups_done > 0 AND groups_done < groups_total AS partly_done,
       last_error FROM viewmig.status;

-- 5. A cancelled call (here: statement_timeout) stops its worker; nothing is left running.
DELETE FROM fail_on;
INSERT INTO sleep_on SELECT md5('post30/1')::uuid;
SET statement_timeout = '1s';
SELECT viewmig.replay_initial();
RESET statement_timeout;
DO $$ BEGIN  -- the worker gets SIGTERM; give it up to 10 s to go
    FOR i IN 1..100 LOOP
        EXIT WHEN NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE backend_type = 'viewmig worker');
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT count(*) AS viewmig_workers_left FROM pg_stat_activity WHERE backend_type = 'viewmig worker';
DELETE FROM sleep_on;

-- 6. Calling it again resumes with the groups not yet done.
SELECT viewmig.replay_initial() < (SELECT count(*) FROM event_records) AS resumed_not_restarted;
SELECT state, groups_total = groups_done AS all_groups_done, events_done = (SELECT count(*) FROM event_records) AS all_events,
       last_error FROM viewmig.status;

-- 7. Events keep arriving; increments catch up on exactly those.
-- The first in two workers (committing as they go, groups of about 5 events), leaving no window
-- or groups behind; the second, in this transaction, finds nothing new.
SELECT blog_events(41, 5, 2);
SET client_min_messages = warning;  -- how many batches committed early varies
SELECT viewmig.replay_increment(batch_size => 5, workers => 2);
RESET client_min_messages;
SELECT increment_lower, increment_upper FROM viewmig.replays WHERE state = 'replayed';
SELECT count(*) AS groups_left FROM viewmig.increment_groups;
SELECT viewmig.replay_increment();

-- 8. prepare_completion builds the kept indexes, clusters, vacuums and analyzes.
SELECT viewmig.prepare_completion();
SELECT indexname FROM pg_indexes WHERE schemaname = 'replay_schema' ORDER BY 1;
SELECT relname, last_vacuum IS NOT NULL AS vacuumed, last_analyze IS NOT NULL AS analyzed
FROM pg_stat_user_tables WHERE schemaname = 'replay_schema' ORDER BY 1;
SELECT i.indexrelid::regclass FROM pg_index i WHERE i.indisclustered
AND i.indrelid = 'replay_schema.posts'::regclass;
SELECT state FROM viewmig.status;

-- 9. complete: a few more events first; the last increment runs under the lock.
SELECT blog_events(46, 1, 1);
SET client_min_messages = warning;  -- the NOTICE reports lock timings
SELECT viewmig.complete();
RESET client_min_messages;
SELECT state, increments, events_done = (SELECT count(*) FROM event_records) AS all_events FROM viewmig.status;
SELECT projector, version, status FROM viewmig.projector_versions ORDER BY 1, 2;
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('view_schema', 'archive_schema', 'replay_schema') AND c.relkind IN ('r', 'S') ORDER BY 1, 2;
-- foreign keys are checked again, as on the view table
SELECT conname, condeferrable, convalidated FROM pg_constraint
WHERE conrelid = 'view_schema.posts'::regclass AND contype = 'f';
-- each table keeps its own sequence
SELECT pg_get_serial_sequence('view_schema.post_tags', 'line'), pg_get_serial_sequence('archive_schema.post_tags', 'line');
SELECT grantee, privilege_type FROM information_schema.role_table_grants
WHERE table_schema = 'view_schema' AND grantee = 'viewmig_reader';
SELECT obj_description('view_schema.authors'::regclass, 'pg_class');

-- 10. The new view tables equal a rebuild from scratch; so do the archived, live-projected ones.
SELECT rebuild_from_scratch('view_schema', 'expected', ARRAY['authors', 'posts', 'post_tags'], 'blog_projector');
SELECT * FROM compare_schemas('view_schema', 'expected', ARRAY['authors', 'posts', 'post_tags']);
SELECT * FROM compare_schemas('archive_schema', 'expected', ARRAY['authors', 'posts', 'post_tags']);

-- 11. Live projection now writes into the new tables.
SELECT blog_events(47, 1, 1);
SELECT count(*) AS authors FROM view_schema.authors;

-- 12. A replay can be abandoned: abort drops the replay schema, the view schema is untouched.
SELECT viewmig.prepare_initial();
SELECT viewmig.abort();
SELECT nspname FROM pg_namespace WHERE nspname = 'replay_schema';
SELECT count(*) AS authors FROM view_schema.authors;
SELECT id, state FROM viewmig.status;
SELECT viewmig.abort();
DROP SCHEMA expected CASCADE;
