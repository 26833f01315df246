-- The event generator the shapes (bench/shapes/*.sql) call: one set-based INSERT ... SELECT over
-- generate_series, deterministic, so every run of a shape replays the same history.
--
-- History: n_authors authors (AuthorCreated; every 4th later AuthorRenamed) and as many posts as
-- fit in n_events (3.5 events a post on average): PostDrafted, then PostTagged 1 to 3 times, then,
-- for every other post, PostPublished some time later. Every post event names its author, whose
-- author_stats row the projector upserts. hot_percent % of the posts (chosen by a hash of the post
-- number) belong to the first hot_authors authors (which one, by another hash: not by the post
-- number's parity, which decides publishing), the others are spread evenly over the rest.
-- Events are inserted in time order (created_at), as an application would append them, so the
-- (aggregate_id, sequence_number) order of a replay jumps around the heap.
CREATE FUNCTION public.bench_generate(n_events bigint, n_authors int, hot_authors int, hot_percent int)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n_posts bigint := greatest(round((n_events - n_authors - n_authors / 4) / 3.5), 1);
    inserted bigint;
BEGIN
    IF hot_authors >= n_authors THEN
        RAISE EXCEPTION 'hot_authors (%) must be fewer than n_authors (%)', hot_authors, n_authors;
    END IF;
    INSERT INTO public.event_records (aggregate_id, sequence_number, event_type, event_json, created_at)
    SELECT ev.aggregate_id, ev.seq, ev.type, ev.payload, timestamptz '2020-01-01 00:00:00+00' + ev.tick * interval '1 second'
    FROM (
        SELECT md5('author' || a)::uuid AS aggregate_id, 1 AS seq, 'AuthorCreated' AS type,
               jsonb_build_object('name', 'author ' || a) AS payload, (a - 1) * n_posts / n_authors * 10 AS tick
        FROM generate_series(1, n_authors) a
        UNION ALL
        SELECT md5('author' || a)::uuid, 2, 'AuthorRenamed', jsonb_build_object('name', 'writer ' || a),
               ((a - 1) * n_posts / n_authors + n_posts / 2) * 10 + 5
        FROM generate_series(4, n_authors, 4) a
        UNION ALL
        SELECT md5('post' || p.no)::uuid, s.seq, s.type,
               jsonb_build_object('author_id', md5('author' || p.author)::uuid) || s.payload, s.tick
        FROM (SELECT no, CASE WHEN hot_authors > 0 AND (hashint8(no) & 2147483647) % 100 < hot_percent
                              THEN 1 + (hashint8(-no) & 2147483647) % hot_authors
                              ELSE hot_authors + 1 + no % (n_authors - hot_authors) END AS author
              FROM generate_series(1, n_posts) no) p
        CROSS JOIN LATERAL (
            SELECT 1 AS seq, 'PostDrafted' AS type,
                   jsonb_build_object('title', 'post ' || p.no, 'body', repeat(md5(p.no::text), 3)) AS payload,
                   p.no * 10 AS tick
            UNION ALL
            SELECT 1 + t, 'PostTagged', jsonb_build_object('tag', 'tag' || ((p.no * 7 + t) % 50)), p.no * 10 + t
            FROM generate_series(1, 1 + p.no % 3) t
            UNION ALL
            SELECT 3 + p.no % 3, 'PostPublished', '{}'::jsonb, (p.no + 500) * 10 + 9
            WHERE p.no % 2 = 0
        ) s
    ) ev
    ORDER BY ev.tick, ev.aggregate_id, ev.seq;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END $$;
