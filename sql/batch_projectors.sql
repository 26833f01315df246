-- Batch projectors (mode => 'batch'): the handler receives the events of whole aggregates as one
-- array of the event row type, in (aggregate_id, sequence_number) order, so it can write
-- set-based SQL. Same lifecycle, checkpoints and increments; live projection hands over each new
-- event as a one-element array.
SET viewmig.progress_interval = 0;
SELECT viewmig.set_event_store('event_records');
CREATE TABLE view_schema.event_counts (aggregate_id uuid PRIMARY KEY, n int NOT NULL, last_seq int NOT NULL);
CREATE TABLE view_schema.type_counts (event_type text PRIMARY KEY, n int NOT NULL);  -- not keyed by aggregate
CREATE SEQUENCE batch_no;
CREATE TABLE batch_log (batch bigint, aggregate_id uuid, events int, in_order boolean);

CREATE FUNCTION count_batch(events event_records[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_counts AS c (aggregate_id, n, last_seq)
    SELECT e.aggregate_id, count(*), max(e.sequence_number) FROM unnest(events) e GROUP BY 1
    ON CONFLICT (aggregate_id) DO UPDATE SET n = c.n + EXCLUDED.n, last_seq = greatest(c.last_seq, EXCLUDED.last_seq);
    INSERT INTO type_counts AS t (event_type, n)
    SELECT e.event_type, count(*) FROM unnest(events) e GROUP BY 1
    ON CONFLICT (event_type) DO UPDATE SET n = t.n + EXCLUDED.n;
    -- What each call saw: which aggregates, how many events, and whether they came in order.
    WITH b AS (SELECT nextval('public.batch_no') AS no),
         e AS (SELECT x.*, ord, lag(x.aggregate_id::text || lpad(x.sequence_number::text, 10, '0')) OVER (ORDER BY ord) AS prev
               FROM unnest(events) WITH ORDINALITY x(id, aggregate_id, sequence_number, event_type, event_json, created_at, xact_id, ord))
    INSERT INTO public.batch_log
    SELECT b.no, e.aggregate_id, count(*), bool_and(e.prev IS NULL OR e.prev < e.aggregate_id::text || lpad(e.sequence_number::text, 10, '0'))
    FROM e, b GROUP BY b.no, e.aggregate_id;
END $$;

-- 1. The handler must take an array of events; the mode must be known.
SELECT viewmig.register_projector('counts', 'blog_projector(event_records)',
    ARRAY['view_schema.event_counts', 'view_schema.type_counts']::regclass[], mode => 'batch');
SELECT viewmig.register_projector('counts', 'count_batch(event_records[])',
    ARRAY['view_schema.event_counts', 'view_schema.type_counts']::regclass[], mode => 'bulk');
SELECT viewmig.register_projector('counts', 'count_batch(event_records[])',
    ARRAY['view_schema.event_counts', 'view_schema.type_counts']::regclass[]);
SELECT viewmig.register_projector('counts', 'count_batch(event_records[])',
    ARRAY['view_schema.event_counts', 'view_schema.type_counts']::regclass[], mode => 'batch', live => true);
SELECT projector, version, mode, live FROM viewmig.projector_versions WHERE projector = 'counts';

-- 2. A replay in batches of about 50 events: whole aggregates per call, in order.
SET viewmig.handler_batch_size = 50;
SELECT viewmig.prepare_initial(ARRAY['counts']) > 0 AS prepared;
SELECT viewmig.replay_initial(batch_size => 200) = (SELECT count(*) FROM event_records) AS replayed_all;
SELECT count(DISTINCT batch) > 1 AS several_batches,
       max(events_per_batch) < 50 + 10 AS batches_near_50,
       bool_and(in_order) AS in_order
FROM (SELECT batch, sum(events) OVER (PARTITION BY batch) AS events_per_batch, in_order FROM batch_log) b;
SELECT count(*) AS aggregates_split_over_batches
FROM (SELECT aggregate_id FROM batch_log GROUP BY 1 HAVING count(*) > 1) s;

-- 3. Increments and completion; then live projection (one-element arrays).
SELECT blog_events(700, 3, 2);
SELECT viewmig.replay_increment() > 0 AS incremented;
SELECT viewmig.prepare_completion();
SET client_min_messages = warning;  -- complete()'s NOTICE reports lock timings
SELECT viewmig.complete() >= 0 AS completed;
RESET client_min_messages;
SELECT blog_events(800, 2, 1);
-- The tables equal a count over all events, by aggregate and by type.
SELECT count(*) AS aggregates, count(*) FILTER (WHERE c.n IS DISTINCT FROM e.n OR c.last_seq IS DISTINCT FROM e.last_seq) AS wrong
FROM (SELECT aggregate_id, count(*)::int AS n, max(sequence_number) AS last_seq FROM event_records GROUP BY 1) e
FULL JOIN view_schema.event_counts c USING (aggregate_id);
SELECT count(*) AS types, count(*) FILTER (WHERE t.n IS DISTINCT FROM e.n) AS wrong
FROM (SELECT event_type, count(*)::int AS n FROM event_records GROUP BY 1) e
FULL JOIN view_schema.type_counts t USING (event_type);

-- 4. A failing batch names the batch and the projector.
CREATE FUNCTION failing_batch(events event_records[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF cardinality(events) > 0 THEN RAISE EXCEPTION 'no thanks'; END IF;
END $$;
SELECT viewmig.register_projector('counts', 'failing_batch(event_records[])',
    ARRAY['view_schema.event_counts', 'view_schema.type_counts']::regclass[], mode => 'batch');
SELECT viewmig.prepare_initial(ARRAY['counts']) > 0 AS prepared;
\set VERBOSITY default
SELECT viewmig.replay_initial();
\set VERBOSITY terse
SELECT viewmig.abort();
-- Back to the working version (the pending failing one is withdrawn).
SELECT viewmig.register_projector('counts', 'count_batch(event_records[])',
    ARRAY['view_schema.event_counts', 'view_schema.type_counts']::regclass[], mode => 'batch', live => true);
RESET viewmig.handler_batch_size;
