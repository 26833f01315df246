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

-- The "single" shape (bench/shapes/single.sql): n_events authors with one AuthorCreated event
-- each and nothing else - as many aggregates as events. The same ids, names and clock as
-- bench_generate's authors; inserted in time order.
CREATE FUNCTION public.bench_generate_single(n_events bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    inserted bigint;
BEGIN
    INSERT INTO public.event_records (aggregate_id, sequence_number, event_type, event_json, created_at)
    SELECT md5('author' || a)::uuid, 1, 'AuthorCreated', jsonb_build_object('name', 'author ' || a),
           timestamptz '2020-01-01 00:00:00+00' + a * interval '10 seconds'
    FROM generate_series(1, n_events) a
    ORDER BY a;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END $$;

-- New events appended to any shape's history, for the increment measurements of bench/run.sh:
-- exactly n_events events of new posts by existing authors - PostDrafted, then PostTagged 1 to 3
-- times, then for every other post PostPublished - so that an increment inserts, updates and
-- upserts like the history does. Post p of batch b is aggregate md5('increment b post p'), an id
-- no other event uses (bench_generate's are md5('post' || n) and md5('author' || n)); its author
-- is picked by a hash of (b, p) among the AuthorCreated aggregates in id order. Created after the
-- last event so far, inserted in time order. Deterministic for the same history and batch.
CREATE FUNCTION public.bench_generate_increment(batch int, n_events int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n_authors bigint;
    after timestamptz;
    inserted bigint;
BEGIN
    SELECT count(*) FILTER (WHERE event_type = 'AuthorCreated'), max(created_at) INTO n_authors, after
    FROM public.event_records;
    IF n_authors = 0 THEN
        RAISE EXCEPTION 'bench_generate_increment: the history has no AuthorCreated events';
    END IF;
    INSERT INTO public.event_records (aggregate_id, sequence_number, event_type, event_json, created_at)
    SELECT ev.aggregate_id, ev.seq, ev.type, ev.payload, after + ev.tick * interval '1 second'
    FROM (
        SELECT md5('increment ' || batch || ' post ' || p.no)::uuid AS aggregate_id, s.seq, s.type,
               jsonb_build_object('author_id', a.aggregate_id) || s.payload AS payload, s.tick
        FROM generate_series(1, (n_events + 1) / 2) p(no)   -- at least 2 events a post: enough
        JOIN (SELECT aggregate_id, row_number() OVER (ORDER BY aggregate_id) AS n
              FROM public.event_records WHERE event_type = 'AuthorCreated') a
          ON a.n = 1 + (hashint8(p.no * 1000 + batch) & 2147483647) % n_authors
        CROSS JOIN LATERAL (
            SELECT 1 AS seq, 'PostDrafted' AS type,
                   jsonb_build_object('title', 'new post ' || batch || '/' || p.no, 'body', repeat(md5(p.no::text), 3)) AS payload,
                   p.no * 10 AS tick
            UNION ALL
            SELECT 1 + t, 'PostTagged', jsonb_build_object('tag', 'tag' || ((p.no * 7 + t) % 50)), p.no * 10 + t
            FROM generate_series(1, 1 + p.no % 3) t
            UNION ALL
            SELECT 3 + p.no % 3, 'PostPublished', '{}'::jsonb, p.no * 10 + 9
            WHERE p.no % 2 = 0
        ) s
        ORDER BY s.tick
        LIMIT n_events   -- whole posts and the first events of the last one
    ) ev
    ORDER BY ev.tick;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    RETURN inserted;
END $$;
