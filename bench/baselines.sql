-- What one would write without viewmig, to compare it with on the same data: rebuild the read
-- model by calling the projector for every event in (aggregate_id, sequence_number) order.
--   bench_copy_tables(target): a schema of fresh, empty copies of the view tables, with the same
--     columns, defaults, constraints and indexes (LIKE ... INCLUDING ALL), for a baseline to fill.
--   bench_loop_commit_every(n): baseline B, the loop as a procedure that COMMITs every n events.
--     (Baseline A, the loop in one transaction, is the DO block in bench/baseline_a.sql.)
--   bench_catch_up(target, after_id): the events appended after the baselines ran, through the
--     projector into <target>'s tables, so that the baselines keep matching the whole history.
-- Both baselines call the handler with search_path = <target>, public, as viewmig does with its
-- replay schema.

CREATE FUNCTION public.bench_copy_tables(target name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t name;
    c record;
BEGIN
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', target);
    EXECUTE format('CREATE SCHEMA %I', target);
    FOREACH t IN ARRAY ARRAY['authors', 'posts', 'post_tags', 'author_stats']::name[] LOOP
        EXECUTE format('CREATE TABLE %I.%I (LIKE view_schema.%I INCLUDING ALL)', target, t, t);
        -- A serial column gets a sequence of its own: LIKE copies a default that calls the view
        -- table's sequence, which complete() moves to the archive schema (and would then refuse
        -- to drop with the archive, as another table's default depends on it).
        FOR c IN SELECT a.attname FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attrelid = format('%I.%I', target, t)::regclass AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'
        LOOP
            EXECUTE format('CREATE SEQUENCE %I.%I OWNED BY %I.%I.%I', target, t || '_' || c.attname || '_seq',
                           target, t, c.attname);
            EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I SET DEFAULT nextval(%L)', target, t, c.attname,
                           format('%I.%I', target, t || '_' || c.attname || '_seq'));
        END LOOP;
    END LOOP;
END $$;

-- No SET clause (it would forbid COMMIT): the caller sets search_path for the session. At the
-- first COMMIT PL/pgSQL turns the FOR loop's cursor into a holdable one, which materializes the
-- rest of the query result; that cost is part of this approach and is measured with it.
CREATE PROCEDURE public.bench_loop_commit_every(every int)
LANGUAGE plpgsql AS $$
DECLARE
    e event_records;
    n bigint := 0;
BEGIN
    FOR e IN SELECT * FROM event_records ORDER BY aggregate_id, sequence_number LOOP
        PERFORM bench_projector(e);
        n := n + 1;
        IF n % every = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
END $$;

-- bench/run.sh appends events after the baselines ran (bench_generate_increment: new posts of
-- existing authors, before each timed replay_increment); this brings a baseline's tables up to
-- date with them: every event with id > after_id through bench_projector, in (aggregate_id,
-- sequence_number) order, into schema target. The result is what a loop over the whole history
-- would build: the new events are whole new aggregates, and what they change in other aggregates'
-- rows (authors.post_count, author_stats) are counts and a maximum, the same in any order.
-- Returns the number of events applied.
CREATE FUNCTION public.bench_catch_up(target name, after_id bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    e event_records;
    n bigint := 0;
    old_path text := current_setting('search_path');
BEGIN
    PERFORM set_config('search_path', format('%I, public', target), true);
    FOR e IN SELECT * FROM event_records WHERE id > after_id ORDER BY aggregate_id, sequence_number LOOP
        PERFORM bench_projector(e);
        n := n + 1;
    END LOOP;
    PERFORM set_config('search_path', old_path, true);
    RETURN n;
END $$;
