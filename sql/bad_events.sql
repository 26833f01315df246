-- Crash freedom on bad event rows (issue 14, class 6) and restored event stores (class 13). An
-- event table whose key columns may be NULL, filled with NULLs and odd values in every column
-- viewmig reads: every step replays what it can read and refuses what it can not with an ERROR
-- naming the row; rows whose xact_id this cluster has not assigned are refused, never skipped.
-- The server never restarts. Runs in a database of its own (its own event table).
SELECT pg_postmaster_start_time() AS started_at \gset
SELECT current_database() AS home_db \gset
CREATE DATABASE viewmig_bad_events;
\c viewmig_bad_events
SET viewmig.progress_interval = 0;
CREATE EXTENSION viewmig;
CREATE SCHEMA odd_view;
CREATE TABLE public.odd_events (
    aggregate_id    text,
    sequence_number int,
    event_type      text,
    event_json      jsonb,
    xact_id         bigint DEFAULT pg_current_xact_id()::text::bigint
);
-- No unique index: duplicate (aggregate_id, sequence_number) pairs are possible.
CREATE INDEX ON odd_events (aggregate_id, sequence_number);
CREATE INDEX ON odd_events (xact_id);
CREATE TABLE odd_view.tally (aggregate_id text PRIMARY KEY, events int NOT NULL, max_seq int, last_type text);
CREATE TABLE odd_view.batch_tally (aggregate_id text PRIMARY KEY, events int NOT NULL);
CREATE TABLE odd_view.d_count (id text PRIMARY KEY, n int NOT NULL, amount int);
CREATE TABLE odd_view.live_log (aggregate_id text, sequence_number int, event_type text);
CREATE FUNCTION public.live_log(e odd_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO live_log VALUES (e.aggregate_id, e.sequence_number, e.event_type);
END $$;
CREATE FUNCTION public.tally(e odd_events) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tally AS t VALUES (e.aggregate_id, 1, e.sequence_number, e.event_type)
    ON CONFLICT (aggregate_id) DO UPDATE SET events = t.events + 1, max_seq = greatest(t.max_seq, EXCLUDED.max_seq),
                                             last_type = EXCLUDED.last_type;
END $$;
CREATE FUNCTION public.batch_tally(es odd_events[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO batch_tally AS t SELECT aggregate_id, count(*) FROM unnest(es) GROUP BY 1
    ON CONFLICT (aggregate_id) DO UPDATE SET events = t.events + EXCLUDED.events;
END $$;

-- 1. set_event_store warns about every key column that may be NULL.
SELECT viewmig.set_event_store('odd_events');
SELECT viewmig.register_projector('tally', 'tally(odd_events)', ARRAY['odd_view.tally']::regclass[]);
SELECT viewmig.register_projector('live_log', 'live_log(odd_events)', ARRAY['odd_view.live_log']::regclass[], live => true);
SELECT viewmig.register_projector('batch_tally', 'batch_tally(odd_events[])', ARRAY['odd_view.batch_tally']::regclass[],
                                  mode => 'batch');
SELECT viewmig.register_declarative_projector('counted', '{"Tick": [{"upsert": "d_count", "key": {"id": "aggregate_id"},
    "values": {"n": 1, "amount": "$.amount::int"}, "set": {"n": {"add": 1}, "amount": "$.amount::int"}}]}',
    ARRAY['odd_view.d_count']::regclass[]);

-- 2. Odd values that can be replayed: empty, blank, long and non-ASCII aggregate ids, sequence
--    numbers at the ends of int, duplicates, unknown event types, event_json NULL or not an
--    object, transaction ids 0 and negative (older than any bound).
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json)
SELECT 'agg-' || lpad(a::text, 3, '0'), s, 'Tick', jsonb_build_object('amount', a * 10 + s)
FROM generate_series(1, 60) a, generate_series(1, 3) s;
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json) VALUES
    ('', 1, 'Tick', '{"amount": 1}'), ('   ', 1, 'Tick', '{"amount": 2}'), (repeat('x', 2000), 1, 'Tick', '{}'),
    ('ünïcødé ✓', 1, 'Tick', '{"amount": 3}'),
    ('ends', -2147483648, 'Tick', '{"amount": 4}'), ('ends', 0, 'Tick', '{"amount": 5}'),
    ('ends', 2147483647, 'Tick', '{"amount": 6}'), ('ends', -7, 'Unknown Type', '{"amount": 7}'),
    ('dup', 1, 'Tick', '{"amount": 8}'), ('dup', 1, 'Tick', '{"amount": 8}'),
    ('json', 1, 'Tick', NULL), ('json', 2, 'Tick', '[1, 2]'), ('json', 3, 'Tick', '"text"'), ('json', 4, 'Tick', '42'),
    ('json', 5, 'Tick', '{"amount": null}'), ('json', 6, 'Tick', 'null'), ('json', 7, '', '{}');
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json, xact_id) VALUES
    ('old', 1, 'Tick', '{"amount": 9}', 0), ('old', 2, 'Tick', '{"amount": 10}', -5);
-- The live projector sees every new event, NULLs too (no crash; its handler decides).
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json) VALUES
    ('live', 1, NULL, NULL), (NULL, NULL, 'Tick', '{}');
SELECT * FROM odd_view.live_log WHERE aggregate_id = 'live' OR aggregate_id IS NULL ORDER BY 1, 2;
DELETE FROM odd_events WHERE aggregate_id = 'live' OR aggregate_id IS NULL;

-- 3. Rows no step can read: a NULL in any key column. Each step names the first such row.
\set VERBOSITY terse
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json, xact_id) VALUES
    ('null xact', 1, 'Tick', '{}', NULL);
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json) VALUES
    (NULL, 1, 'Tick', '{}'), ('null seq', NULL, 'Tick', '{}'), ('null type', 1, NULL, '{}');
SELECT viewmig.prepare_initial() > 0 AS prepared;
SELECT viewmig.replay_initial(batch_size => 50);
-- The HINT's UPDATE gives them a transaction id of this cluster; run as given it works.
\set VERBOSITY default
CREATE FUNCTION public.hint_of(step text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE h text;
BEGIN
    EXECUTE 'SELECT ' || step;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS h = PG_EXCEPTION_HINT;
    RETURN h;
END $$;
SELECT hint_of('viewmig.replay_initial(batch_size => 50)');
DO $$ BEGIN EXECUTE substring(hint_of('viewmig.replay_initial(batch_size => 50)') FROM 'UPDATE [^;]*;'); END $$;
SELECT count(*) AS null_xact_ids FROM odd_events WHERE xact_id IS NULL;
\set VERBOSITY terse
SELECT viewmig.replay_initial(batch_size => 50, workers => 2);
DELETE FROM odd_events WHERE aggregate_id IS NULL;
SELECT viewmig.replay_initial(batch_size => 50, workers => 2);
UPDATE odd_events SET sequence_number = 1 WHERE aggregate_id = 'null seq';
SELECT viewmig.replay_initial(batch_size => 50);
UPDATE odd_events SET event_type = 'Tick' WHERE aggregate_id = 'null type';
-- 4. A JSON member of the wrong type for a declarative rule: a clear ERROR.
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json) VALUES ('wrong', 1, 'Tick', '{"amount": "abc"}');
SELECT viewmig.replay_initial(batch_size => 50, workers => 2);
UPDATE odd_events SET event_json = '{"amount": 99999999999}' WHERE aggregate_id = 'wrong';
SELECT viewmig.replay_initial(batch_size => 50, workers => 2);
DELETE FROM odd_events WHERE aggregate_id = 'wrong';
-- Now everything replays, with two workers.
SELECT viewmig.replay_initial(batch_size => 50, workers => 2) > 0 AS replayed;
SELECT count(*) AS aggregates, sum(events) AS events, min(max_seq), max(max_seq) FROM replay_schema.tally;
SELECT sum(events) AS batch_events FROM replay_schema.batch_tally;
SELECT id = '' AS empty_id, n, amount FROM replay_schema.d_count WHERE id IN ('', 'dup', 'json', 'ends', 'old') ORDER BY id;

-- 5. Increments (one backend and workers => 2) and complete() refuse the same rows.
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json) VALUES (NULL, 9, 'Tick', '{}');
SELECT viewmig.replay_increment();
SELECT viewmig.replay_increment(workers => 2);
SELECT viewmig.prepare_completion();
SELECT viewmig.complete();
UPDATE odd_events SET aggregate_id = 'late' WHERE aggregate_id IS NULL;
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json) VALUES ('late', NULL, 'Tick', '{}');
SELECT viewmig.replay_increment(workers => 2);
DELETE FROM odd_events WHERE aggregate_id = 'late' AND sequence_number IS NULL;

-- 6. Rows from another cluster (class 13): a transaction id above this cluster's counter is
--    refused by every step, with the number of rows and the highest value; the HINT's UPDATE
--    makes the next step replay them.
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json, xact_id) VALUES
    ('restored', 1, 'Tick', '{"amount": 1}', 900000000000), ('restored', 2, 'Tick', '{"amount": 2}', 900000000005);
SELECT viewmig.replay_increment();
SELECT viewmig.replay_increment(workers => 2);
SELECT viewmig.complete();
\set VERBOSITY default
SELECT hint_of('viewmig.replay_increment()');
DO $$ BEGIN EXECUTE substring(hint_of('viewmig.replay_increment()') FROM 'UPDATE [^;]*;'); END $$;
\set VERBOSITY terse
SELECT viewmig.replay_increment(workers => 2) AS replayed;
SELECT viewmig.complete() AS replayed_by_complete;
SELECT aggregate_id, events, max_seq FROM odd_view.tally WHERE aggregate_id IN ('restored', 'late', 'null xact') ORDER BY 1;
SELECT n, amount FROM odd_view.d_count WHERE id = 'restored';

-- 7. replay_initial refuses restored rows too, and so does migrate_online (a view-schema
--    migration replays through the same steps).
INSERT INTO odd_events (aggregate_id, sequence_number, event_type, event_json, xact_id) VALUES
    ('restored again', 1, 'Tick', '{}', 900000000009);
\set VERBOSITY terse
SELECT viewmig.prepare_initial(ARRAY['tally']) > 0 AS prepared;
SELECT viewmig.replay_initial();
SELECT viewmig.abort();
SELECT viewmig.define_table_sql('tally', 'CREATE TABLE tally%SUFFIX% (aggregate_id text PRIMARY KEY, events int NOT NULL, max_seq int, last_type text)',
                                view_schema => 'odd_view');
SELECT viewmig.define_view_schema_version(1, ARRAY['tally']);
SELECT viewmig.migrate_online();
SELECT viewmig.abort();

-- 8. The server never restarted.
\c :home_db
DROP DATABASE viewmig_bad_events WITH (FORCE);
SELECT pg_postmaster_start_time() = :'started_at' AS server_never_restarted;
