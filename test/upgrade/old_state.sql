-- Live state made by the PREVIOUS release's code (test/upgrade/run.sh runs this on a cluster with
-- that release installed, :fixtures = that release's test/fixtures): an event store, projectors
-- of several kinds (plain and live, declarative and live), a pending version with its replay in
-- progress (prepared, initial replay done, more events since), a queued job (the replay's next
-- increment; no launcher runs here, so it stays queued), a delayed background schema migration,
-- view-schema DDL and versions. Uses only the release's documented SQL API.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION viewmig;
\i :fixtures/blog.sql
\i :fixtures/declarative.sql
\i :fixtures/compare.sql

SELECT viewmig.set_event_store('event_records');
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[], live => true);
SELECT viewmig.register_declarative_projector('decl3', public.decl3_rules(),
    ARRAY['view_schema.d_seen', 'view_schema.d_log']::regclass[], live => true);
SELECT blog_events(1, 40, 3);   -- projected live

-- View-schema DDL, a version definition and the version create_view_tables records.
SELECT viewmig.define_table_sql('d_seen', 'CREATE TABLE d_seen%SUFFIX% (aggregate_id uuid CONSTRAINT d_seen_pk%SUFFIX% PRIMARY KEY, events int NOT NULL, last_type text)');
SELECT viewmig.define_table_sql('d_log', 'CREATE TABLE d_log%SUFFIX% (line bigserial CONSTRAINT d_log_pk%SUFFIX% PRIMARY KEY, aggregate_id uuid NOT NULL, event_type text NOT NULL)');
SELECT viewmig.define_view_schema_version(1, ARRAY['decl3']);
SELECT viewmig.create_view_tables();

-- A pending version of blog, and its replay in progress.
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[], live => true,
    event_types => ARRAY['AuthorCreated', 'AuthorRenamed', 'PostDrafted', 'PostTagged', 'PostPublished']);
SELECT viewmig.prepare_initial(ARRAY['blog']);
SELECT viewmig.replay_initial();
SELECT blog_events(41, 10, 3);  -- live by version 1; the replay has not seen them yet

-- Queued work: the replay's next increment (a job), an index build delayed by an hour.
SELECT viewmig.enqueue('replay_increment');
SELECT viewmig.add_index_in_background('view_schema.d_seen', ARRAY['last_type'], name => 'd_seen_type_idx',
                                       run_after => now() + interval '1 hour');

-- test/upgrade/state.sql's helper, made before the update so it sees the old catalog's columns.
\i :here/state.sql
