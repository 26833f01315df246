-- The practical ceiling (timed by bench/run.sh): the read model rebuilt by hand-written set-based
-- SQL over all events at once, in one transaction, into the empty copies in schema :target — the
-- statements of bench_batch (bench/batch_projector.sql) over the whole event table instead of
-- one batch. Like the baselines it maintains every index while it loads.
SET search_path = :"target", public;
BEGIN;
INSERT INTO authors AS a (id, name, post_count)
SELECT (e.event_json->>'author_id')::uuid, '?', count(*) FROM event_records e
WHERE e.event_type = 'PostDrafted' GROUP BY 1
ON CONFLICT (id) DO UPDATE SET post_count = a.post_count + EXCLUDED.post_count;

INSERT INTO authors (id, name, created_at)
SELECT e.aggregate_id, e.event_json->>'name', e.created_at FROM event_records e WHERE e.event_type = 'AuthorCreated'
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, created_at = EXCLUDED.created_at;

UPDATE authors a SET name = r.name
FROM (SELECT DISTINCT ON (e.aggregate_id) e.aggregate_id, e.event_json->>'name' AS name
      FROM event_records e WHERE e.event_type = 'AuthorRenamed' ORDER BY e.aggregate_id, e.sequence_number DESC) r
WHERE a.id = r.aggregate_id;

INSERT INTO posts (id, author_id, title, body, drafted_at)
SELECT e.aggregate_id, (e.event_json->>'author_id')::uuid, e.event_json->>'title', e.event_json->>'body', e.created_at
FROM event_records e WHERE e.event_type = 'PostDrafted';

INSERT INTO post_tags (post_id, tag)
SELECT e.aggregate_id, e.event_json->>'tag' FROM event_records e WHERE e.event_type = 'PostTagged' ORDER BY e.aggregate_id, e.sequence_number;

UPDATE posts p SET tag_count = p.tag_count + t.n
FROM (SELECT e.aggregate_id, count(*) AS n FROM event_records e WHERE e.event_type = 'PostTagged' GROUP BY 1) t
WHERE p.id = t.aggregate_id;

UPDATE posts p SET published = true, published_at = l.created_at
FROM (SELECT DISTINCT ON (e.aggregate_id) e.aggregate_id, e.created_at
      FROM event_records e WHERE e.event_type = 'PostPublished' ORDER BY e.aggregate_id, e.sequence_number DESC) l
WHERE p.id = l.aggregate_id;

INSERT INTO author_stats AS s (author_id, events, drafted, tagged, published, last_event_at)
SELECT (e.event_json->>'author_id')::uuid, count(*), count(*) FILTER (WHERE e.event_type = 'PostDrafted'),
       count(*) FILTER (WHERE e.event_type = 'PostTagged'), count(*) FILTER (WHERE e.event_type = 'PostPublished'),
       max(e.created_at)
FROM event_records e WHERE e.event_type IN ('PostDrafted', 'PostTagged', 'PostPublished') GROUP BY 1
ON CONFLICT (author_id) DO UPDATE SET
    events = s.events + EXCLUDED.events,
    drafted = s.drafted + EXCLUDED.drafted,
    tagged = s.tagged + EXCLUDED.tagged,
    published = s.published + EXCLUDED.published,
    last_event_at = greatest(s.last_event_at, EXCLUDED.last_event_at);
COMMIT;
