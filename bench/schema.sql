-- The benchmark domain: a blog event store in Sequent's layout and a projector with four
-- managed tables. It extends test/fixtures/blog.sql with what makes replays expensive in real
-- read models: secondary indexes on every table, and author_stats, a per-author counter row
-- upserted by every post event (a hot row when an author writes many posts).
-- No foreign keys: the baselines copy the tables with LIKE ... INCLUDING ALL, which copies none,
-- and both sides must maintain the same constraints and indexes.

-- The event table comes from test/fixtures/event_records.sql (bench/run.sh loads it first).

CREATE SCHEMA view_schema;

CREATE TABLE view_schema.authors (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    post_count integer NOT NULL DEFAULT 0,
    created_at timestamptz
);
CREATE INDEX authors_name_idx ON view_schema.authors (lower(name));

CREATE TABLE view_schema.posts (
    id           uuid PRIMARY KEY,
    author_id    uuid NOT NULL,
    title        text NOT NULL,
    body         text NOT NULL,
    tag_count    integer NOT NULL DEFAULT 0,
    published    boolean NOT NULL DEFAULT false,
    drafted_at   timestamptz NOT NULL,
    published_at timestamptz
);
CREATE INDEX posts_author_idx ON view_schema.posts (author_id);
CREATE INDEX posts_published_idx ON view_schema.posts (published_at) WHERE published;

CREATE TABLE view_schema.post_tags (
    line    serial PRIMARY KEY,
    post_id uuid NOT NULL,
    tag     text NOT NULL
);
CREATE INDEX post_tags_post_idx ON view_schema.post_tags (post_id);
CREATE INDEX post_tags_tag_idx ON view_schema.post_tags (tag);

-- One row per author, upserted by every PostDrafted, PostTagged and PostPublished event.
CREATE TABLE view_schema.author_stats (
    author_id     uuid PRIMARY KEY,
    events        integer NOT NULL,
    drafted       integer NOT NULL,
    tagged        integer NOT NULL,
    published     integer NOT NULL,
    last_event_at timestamptz NOT NULL
);

-- The projector: one event in, writes by unqualified table names (the caller sets search_path).
CREATE FUNCTION public.bench_projector(e public.event_records) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CASE e.event_type
    WHEN 'AuthorCreated' THEN
        INSERT INTO authors (id, name, created_at) VALUES (e.aggregate_id, e.event_json->>'name', e.created_at)
            ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, created_at = EXCLUDED.created_at;
    WHEN 'AuthorRenamed' THEN
        UPDATE authors SET name = e.event_json->>'name' WHERE id = e.aggregate_id;
    WHEN 'PostDrafted' THEN
        INSERT INTO posts (id, author_id, title, body, drafted_at)
            VALUES (e.aggregate_id, (e.event_json->>'author_id')::uuid, e.event_json->>'title',
                    e.event_json->>'body', e.created_at);
        INSERT INTO authors AS a (id, name, post_count) VALUES ((e.event_json->>'author_id')::uuid, '?', 1)
            ON CONFLICT (id) DO UPDATE SET post_count = a.post_count + 1;
    WHEN 'PostTagged' THEN
        INSERT INTO post_tags (post_id, tag) VALUES (e.aggregate_id, e.event_json->>'tag');
        UPDATE posts SET tag_count = tag_count + 1 WHERE id = e.aggregate_id;
    WHEN 'PostPublished' THEN
        UPDATE posts SET published = true, published_at = e.created_at WHERE id = e.aggregate_id;
    ELSE
        NULL;
    END CASE;
    IF e.event_type IN ('PostDrafted', 'PostTagged', 'PostPublished') THEN
        INSERT INTO author_stats AS s (author_id, events, drafted, tagged, published, last_event_at)
            VALUES ((e.event_json->>'author_id')::uuid, 1, (e.event_type = 'PostDrafted')::int,
                    (e.event_type = 'PostTagged')::int, (e.event_type = 'PostPublished')::int, e.created_at)
            ON CONFLICT (author_id) DO UPDATE SET
                events = s.events + 1,
                drafted = s.drafted + EXCLUDED.drafted,
                tagged = s.tagged + EXCLUDED.tagged,
                published = s.published + EXCLUDED.published,
                last_event_at = greatest(s.last_event_at, EXCLUDED.last_event_at);
    END IF;
END $$;
