-- Bad input and steps called out of order: each is a clear ERROR (with a HINT where the DBA can
-- act), and nothing is changed or dropped.
SET viewmig.progress_interval = 0;

-- set_event_store: missing or mistyped columns, not a table.
CREATE TABLE events_without_xact (aggregate_id uuid, sequence_number int, event_type text);
SELECT viewmig.set_event_store('events_without_xact');
CREATE TABLE events_int_ids (aggregate_id int, sequence_number int, event_type text, xact_id bigint);
SELECT viewmig.set_event_store('events_int_ids');
SELECT viewmig.set_event_store('events_int_ids', aggregate_id_column => 'no_such_column');
CREATE VIEW events_view AS SELECT * FROM event_records;
SELECT viewmig.set_event_store('events_view');
SELECT viewmig.set_event_store(NULL);
-- a table whose rows the registered handlers can not take
CREATE TABLE other_events (aggregate_id uuid, sequence_number int, event_type text, xact_id bigint);
CREATE INDEX ON other_events (xact_id);
CREATE UNIQUE INDEX ON other_events (aggregate_id, sequence_number);
SELECT viewmig.set_event_store('other_events');
SELECT events FROM viewmig.event_store;

-- register_projector: handler signature, managed tables, patterns, NULLs.
CREATE FUNCTION text_handler(e text) RETURNS void LANGUAGE sql AS '';
SELECT viewmig.register_projector('p', 'text_handler(text)', ARRAY['view_schema.authors']::regclass[]);
CREATE TABLE public.elsewhere (id int);
CREATE FUNCTION noop_handler(e event_records) RETURNS void LANGUAGE sql AS '';
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['public.elsewhere']::regclass[]);
CREATE TABLE view_schema.extra (id int);
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['view_schema.extra', 'public.elsewhere']::regclass[]);
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['view_schema.authors']::regclass[]);
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['event_records']::regclass[]);
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['view_schema.extra', 'view_schema.extra']::regclass[]);
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', '{}');
CREATE VIEW view_schema.extra_view AS SELECT * FROM view_schema.extra;
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['view_schema.extra_view']::regclass[]);
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['view_schema.extra']::regclass[],
                                  additional_replay_indexes => ARRAY['(unclosed']);
SELECT viewmig.register_projector('p', 'noop_handler(event_records)', ARRAY['view_schema.extra']::regclass[],
                                  event_types => ARRAY['A', NULL]);
SELECT viewmig.register_projector('', 'noop_handler(event_records)', ARRAY['view_schema.extra']::regclass[]);
SELECT viewmig.register_projector('p', NULL, ARRAY['view_schema.extra']::regclass[]);
SELECT count(*) AS projector_versions FROM viewmig.projector_versions;

-- Steps out of order, with no replay: each HINT names the step to call.
SELECT viewmig.replay_initial();
SELECT viewmig.replay_increment();
SELECT viewmig.prepare_completion();
SELECT viewmig.complete();

-- prepare_initial: schemas viewmig must never fill or drop.
SELECT viewmig.prepare_initial(replay_schema => 'view_schema');
SELECT viewmig.prepare_initial(replay_schema => 'public');
SELECT viewmig.prepare_initial(replay_schema => 'viewmig');
SELECT viewmig.prepare_initial(replay_schema => 'pg_catalog');
SELECT viewmig.prepare_initial(replay_schema => 'information_schema');
SELECT viewmig.prepare_initial(archive_schema => 'view_schema');
SELECT viewmig.prepare_initial(replay_schema => 'same', archive_schema => 'same');
CREATE SCHEMA precious;
CREATE TABLE precious.data AS SELECT 42 AS answer;
SELECT viewmig.prepare_initial(replay_schema => 'precious');
SELECT viewmig.prepare_initial(archive_schema => 'precious');
SELECT * FROM precious.data;
SELECT viewmig.prepare_initial(ARRAY['no_such_projector']);
SELECT viewmig.prepare_initial(replay_schema => NULL);
SELECT count(*) AS replays_before FROM viewmig.replays;

-- With a prepared replay: the other steps in the wrong order.
SELECT viewmig.prepare_initial();
SELECT viewmig.prepare_initial();
SELECT viewmig.replay_increment();
SELECT viewmig.prepare_completion();
SELECT viewmig.complete();
SELECT viewmig.set_event_store('event_records');
SELECT viewmig.replay_initial(batch_size => 0);
SELECT viewmig.replay_initial(workers => 0);
\set VERBOSITY terse
SELECT viewmig.replay_initial(workers => 100000);
\set VERBOSITY default
SELECT viewmig.replay_initial() > 0 AS replayed;
SELECT viewmig.replay_initial();
-- Parallel increments commit as they go: not inside a transaction block.
BEGIN;
SELECT viewmig.replay_increment(workers => 2);
ROLLBACK;
SELECT viewmig.complete();
SELECT viewmig.prepare_completion();

-- complete refuses while other objects depend on the view tables; nothing changes.
CREATE VIEW public.author_names AS SELECT name FROM view_schema.authors;
SELECT viewmig.complete();
SELECT state FROM viewmig.status LIMIT 1;
SELECT to_regclass('view_schema.authors') IS NOT NULL AS view_table_still_there;
DROP VIEW public.author_names;

SELECT viewmig.abort();
SELECT nspname FROM pg_namespace WHERE nspname IN ('replay_schema', 'precious') ORDER BY 1;
DROP SCHEMA precious CASCADE;
DROP VIEW view_schema.extra_view;
DROP TABLE view_schema.extra, public.elsewhere, events_without_xact, events_int_ids, other_events;
DROP VIEW events_view;
