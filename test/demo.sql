-- viewmig demo: rebuild a blog's read model from its events, online.
\set ON_ERROR_STOP on
\pset footer off
SET client_min_messages = notice;
CREATE EXTENSION viewmig;
\set QUIET on
\i test/fixtures/blog.sql
\set QUIET off

\echo
\echo '== The event store: a history of ~400 000 events (Sequent layout)'
SELECT blog_events(1, 50000, 3);
SELECT event_type, count(*) FROM event_records GROUP BY 1 ORDER BY 2 DESC;

\echo '== The view tables BEFORE: the read model was never built (a new projector)'
SELECT (SELECT count(*) FROM view_schema.authors) AS authors, (SELECT count(*) FROM view_schema.posts) AS posts,
       (SELECT count(*) FROM view_schema.post_tags) AS post_tags;

\echo '== 1. Register the event store and the projector'
SELECT viewmig.set_event_store('event_records');
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[]);

\echo '== 2. prepare_initial: a replay schema with copies of the tables'
SELECT viewmig.prepare_initial();

\echo '== 3. replay_initial: every event, group by group, in a background worker (progress every second)'
SET viewmig.progress_interval = '1s';
SET viewmig.batch_size = 20000;
\timing on
SELECT viewmig.replay_initial();
\timing off
SELECT state, events_done, groups_done, groups_total, events_per_s FROM viewmig.status;

\echo '== 4. Meanwhile the application wrote more events; replay_increment catches up'
SELECT blog_events(50001, 100, 2);
SELECT viewmig.replay_increment();

\echo '== 5. prepare_completion: indexes, CLUSTER, VACUUM ANALYZE'
\timing on
SELECT viewmig.prepare_completion();

\echo '== 6. complete: brief lock, last increment, swap'
SELECT blog_events(50101, 1, 1);
SELECT viewmig.complete();
\timing off

\echo '== The view tables AFTER'
SELECT (SELECT count(*) FROM view_schema.authors) AS authors, (SELECT count(*) FROM view_schema.posts) AS posts,
       (SELECT count(*) FROM view_schema.post_tags) AS post_tags;
SELECT name, post_count FROM view_schema.authors ORDER BY post_count DESC, name LIMIT 3;
\echo '== The old tables are kept in archive_schema; the replay is recorded in viewmig.status'
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('view_schema', 'archive_schema') AND c.relkind = 'r' ORDER BY 1, 2;
SELECT id, state, projectors, versions, events_done, increments FROM viewmig.status;
