-- Baseline A (timed by bench/run.sh): a plain PL/pgSQL loop calling the projector for every event,
-- all in ONE transaction, into the empty copies in schema :target (see bench/baselines.sql).
SET search_path = :"target", public;
DO $$
DECLARE
    e event_records;
BEGIN
    FOR e IN SELECT * FROM event_records ORDER BY aggregate_id, sequence_number LOOP
        PERFORM bench_projector(e);
    END LOOP;
END $$;
