-- bench_projector written set-based, as a batch projector (register_projector(..., mode =>
-- 'batch')): one call per ~viewmig.handler_batch_size events of whole aggregates, in order. It
-- builds the same tables as bench_projector does event by event (bench/run.sh checks that).
-- Order matters only where the per-event handler lets it: a post's author row may come before
-- or after the author's own events (counts first, then names, gives the same row either way),
-- and the last rename or publication of an aggregate wins (taken by position in the array).
-- The batch's events with their position (an inlined set-returning SQL function).
CREATE FUNCTION public.bench_batch_rows(events public.event_records[])
RETURNS TABLE (aggregate_id uuid, event_type text, event_json jsonb, created_at timestamptz, ord bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT e.aggregate_id, e.event_type, e.event_json, e.created_at, e.ord
    FROM unnest(events) WITH ORDINALITY AS e(id, aggregate_id, sequence_number, event_type, event_json, created_at, xact_id, ord)
$$;

CREATE FUNCTION public.bench_batch(events public.event_records[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN

    INSERT INTO authors AS a (id, name, post_count)
    SELECT (e.event_json->>'author_id')::uuid, '?', count(*) FROM public.bench_batch_rows(events) e
    WHERE e.event_type = 'PostDrafted' GROUP BY 1
    ON CONFLICT (id) DO UPDATE SET post_count = a.post_count + EXCLUDED.post_count;

    INSERT INTO authors (id, name, created_at)
    SELECT e.aggregate_id, e.event_json->>'name', e.created_at FROM public.bench_batch_rows(events) e WHERE e.event_type = 'AuthorCreated'
    ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, created_at = EXCLUDED.created_at;

    UPDATE authors a SET name = r.name
    FROM (SELECT DISTINCT ON (e.aggregate_id) e.aggregate_id, e.event_json->>'name' AS name
          FROM public.bench_batch_rows(events) e WHERE e.event_type = 'AuthorRenamed' ORDER BY e.aggregate_id, e.ord DESC) r
    WHERE a.id = r.aggregate_id;

    INSERT INTO posts (id, author_id, title, body, drafted_at)
    SELECT e.aggregate_id, (e.event_json->>'author_id')::uuid, e.event_json->>'title', e.event_json->>'body', e.created_at
    FROM public.bench_batch_rows(events) e WHERE e.event_type = 'PostDrafted';

    INSERT INTO post_tags (post_id, tag)
    SELECT e.aggregate_id, e.event_json->>'tag' FROM public.bench_batch_rows(events) e WHERE e.event_type = 'PostTagged' ORDER BY e.ord;

    UPDATE posts p SET tag_count = p.tag_count + t.n
    FROM (SELECT e.aggregate_id, count(*) AS n FROM public.bench_batch_rows(events) e WHERE e.event_type = 'PostTagged' GROUP BY 1) t
    WHERE p.id = t.aggregate_id;

    UPDATE posts p SET published = true, published_at = l.created_at
    FROM (SELECT DISTINCT ON (e.aggregate_id) e.aggregate_id, e.created_at
          FROM public.bench_batch_rows(events) e WHERE e.event_type = 'PostPublished' ORDER BY e.aggregate_id, e.ord DESC) l
    WHERE p.id = l.aggregate_id;

    INSERT INTO author_stats AS s (author_id, events, drafted, tagged, published, last_event_at)
    SELECT (e.event_json->>'author_id')::uuid, count(*), count(*) FILTER (WHERE e.event_type = 'PostDrafted'),
           count(*) FILTER (WHERE e.event_type = 'PostTagged'), count(*) FILTER (WHERE e.event_type = 'PostPublished'),
           max(e.created_at)
    FROM public.bench_batch_rows(events) e WHERE e.event_type IN ('PostDrafted', 'PostTagged', 'PostPublished') GROUP BY 1
    ON CONFLICT (author_id) DO UPDATE SET
        events = s.events + EXCLUDED.events,
        drafted = s.drafted + EXCLUDED.drafted,
        tagged = s.tagged + EXCLUDED.tagged,
        published = s.published + EXCLUDED.published,
        last_event_at = greatest(s.last_event_at, EXCLUDED.last_event_at);
END $$;
