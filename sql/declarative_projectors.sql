-- Declarative projectors: rules per event type instead of a handler. The initial replay runs them
-- in the compiled engine (rows in memory, written by COPY, keys added after the load); increments
-- and live projection run the PL/pgSQL handler generated from the same rules. Contract: the
-- engine, the generated handler and an equivalent hand-written PL/pgSQL handler build identical
-- tables.
SET viewmig.progress_interval = 0;
\set VERBOSITY default
SELECT viewmig.set_event_store('event_records');
-- The tables, the rules (decl_rules()) and the same projector by hand (decl_reference), shared
-- with the TAP tests.
\set ECHO none
\i test/fixtures/declarative.sql
\set ECHO all
SELECT public.decl_rules() AS rules \gset
\set tables 'ARRAY[''view_schema.d_authors'', ''view_schema.d_posts'', ''view_schema.d_post_tags'', ''view_schema.d_tag_counts'']::regclass[]'

-- 1. Rules are checked against the tables when registered; each error names the rule.
SELECT viewmig.register_declarative_projector('decl', '{"PostDrafted": [{"insert": "nope", "values": {"id": "aggregate_id"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostDrafted": [{"insert": "d_authors", "values": {"id": "aggregate_id", "nam": "$.name"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostDrafted": [{"update": "d_posts", "key": {"id": "aggregate_id"}, "set": {"published": "sequence_number"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostDrafted": [{"insert": "d_authors", "values": {"id": "$.author_id", "name": "$.name"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostDrafted": [{"insert": "d_authors", "values": {"id": "aggregate_id"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": [{"update": "d_authors", "key": {"name": "$.name"}, "set": {"post_count": 1}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": [{"update": "d_posts", "key": {"id": "aggregate_id"}, "set": {"title": {"add": 1}}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": [{"update": "d_posts", "key": {"id": "aggregate_id"}, "set": {"id": "aggregate_id"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": [{"upsert": "d_posts", "key": {"id": "aggregate_id"}, "values": {"title": "$.title"}, "where": 1}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": [{"delete": "d_posts", "key": {"id": "aggregate_id::int"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": [{"delete": "d_posts", "key": {"id": "$.id::nosuchtype"}}]}', :tables);
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": {"delete": "d_posts"}}', :tables);
SELECT viewmig.register_declarative_projector('decl', '[]', :tables);
SELECT viewmig.register_declarative_projector('decl', :'rules', :tables, json_column => 'payload');

-- 2. A valid projector: its generated handler is the row path; its event types are the rules' keys.
SELECT viewmig.register_declarative_projector('decl', :'rules', :tables) AS version;
SELECT viewmig.register_declarative_projector('decl', :'rules', :tables) AS same_version;
SELECT mode, event_types, handler::text LIKE 'viewmig.declarative_%' AS generated_handler, rules = :'rules'::jsonb AS rules_kept
FROM viewmig.projector_versions WHERE projector = 'decl';

-- More history: retracted posts, removed tags, a note with characters COPY must escape.
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
SELECT md5('post' || a || '/' || p)::uuid, 4, 'PostRetracted', jsonb_build_object('author_id', md5('author' || a)::uuid)
FROM generate_series(1, 3) a, generate_series(1, 2) p;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
SELECT md5('post' || a || '/' || p)::uuid, 5, 'TagRemoved', jsonb_build_object('tag', 'tag' || (p % 3))
FROM generate_series(4, 5) a, generate_series(1, 2) p;
UPDATE event_records SET event_json = event_json || jsonb_build_object('note', E'tab\there, line\nbreak, back\\slash, \\N')
WHERE event_type = 'PostPublished' AND sequence_number = 3 AND aggregate_id = md5('post4/2')::uuid;

-- 3. The engine's initial replay: the primary keys of the tables it loads in bulk come after the load.
SELECT viewmig.prepare_initial(ARRAY['decl']) > 0 AS prepared;
SELECT table_name, object_name FROM viewmig.replay_deferred_ddl
WHERE kind = 'bulk_constraint' AND replay_id = (SELECT max(id) FROM viewmig.replays) ORDER BY 1;
SELECT viewmig.replay_initial(batch_size => 100) = (SELECT count(*) FROM event_records
    WHERE event_type IN ('AuthorCreated', 'PostDrafted', 'PostTagged', 'PostPublished', 'TagRemoved', 'PostRetracted')) AS replayed_all;
SELECT table_name, object_name, done FROM viewmig.replay_deferred_ddl
WHERE kind = 'bulk_constraint' AND replay_id = (SELECT max(id) FROM viewmig.replays) ORDER BY 1;
SELECT conrelid::regclass AS replay_table, conname FROM pg_constraint
WHERE connamespace = 'replay_schema'::regnamespace AND contype = 'p' ORDER BY 1;

-- Engine = generated handler = hand-written handler, table by table.
SELECT rebuild_from_scratch('view_schema', 'by_handler', '{d_authors,d_posts,d_post_tags,d_tag_counts}',
                            (SELECT handler::regproc FROM viewmig.projector_versions WHERE projector = 'decl' AND status = 'active')) > 0 AS rebuilt;
SELECT rebuild_from_scratch('view_schema', 'by_hand', '{d_authors,d_posts,d_post_tags,d_tag_counts}', 'decl_reference') > 0 AS rebuilt;
SELECT * FROM compare_schemas('replay_schema', 'by_handler', '{d_authors,d_posts,d_post_tags,d_tag_counts}');
SELECT * FROM compare_schemas('by_handler', 'by_hand', '{d_authors,d_posts,d_post_tags,d_tag_counts}');
SELECT note FROM replay_schema.d_posts WHERE id = md5('post4/2')::uuid;

-- 4. With little memory the engine writes early (many times per batch) and drops its cached
--    shared rows, reading them again when needed: the same tables.
SELECT viewmig.abort();
SET viewmig.replay_memory = '64kB';
SELECT viewmig.prepare_initial(ARRAY['decl']) > 0 AS prepared;
SELECT viewmig.replay_initial() > 0 AS replayed;
RESET viewmig.replay_memory;
SELECT * FROM compare_schemas('replay_schema', 'by_hand', '{d_authors,d_posts,d_post_tags,d_tag_counts}');

-- 5. Two workers asked: a projector with shared tables runs in the first worker only (a LOG line
--    says so), with the same tables; see 9. for one that runs in both.
SELECT viewmig.abort();
SELECT viewmig.prepare_initial(ARRAY['decl']) > 0 AS prepared;
SET client_min_messages = warning;  -- how many batches conflicted varies
SELECT viewmig.replay_initial(batch_size => 50, workers => 2) > 0 AS replayed;
RESET client_min_messages;
SELECT * FROM compare_schemas('replay_schema', 'by_hand', '{d_authors,d_posts,d_post_tags,d_tag_counts}');

-- 6. Increments run the generated handler (row operations); completion swaps the tables in.
SELECT blog_events(900, 2, 3);
SELECT viewmig.replay_increment() > 0 AS incremented;
SELECT viewmig.prepare_completion();
SET client_min_messages = warning;
SELECT viewmig.complete() >= 0 AS completed;
RESET client_min_messages;
SELECT rebuild_from_scratch('view_schema', 'by_hand', '{d_authors,d_posts,d_post_tags,d_tag_counts}', 'decl_reference') > 0 AS rebuilt;
SELECT * FROM compare_schemas('view_schema', 'by_hand', '{d_authors,d_posts,d_post_tags,d_tag_counts}');

-- 7. Data errors fail like the row path would, naming the event: an insert of an existing key...
SELECT viewmig.register_declarative_projector('decl', '{"PostTagged": [{"insert": "d_tag_counts", "values": {"tag": "$.tag", "n": 1}}]}', :tables) AS version;
SELECT viewmig.prepare_initial(ARRAY['decl']) > 0 AS prepared;
SELECT viewmig.replay_initial();
SELECT viewmig.abort();
-- ... and a counter beyond its column type (d_posts.tags is a smallint).
SELECT viewmig.register_declarative_projector('decl', '{"PostDrafted": [{"insert": "d_posts", "values": {"id": "aggregate_id", "author_id": "$.author_id::uuid", "title": "$.title", "tags": 32767}}], "PostTagged": [{"increment": "d_posts", "key": {"id": "aggregate_id"}, "column": "tags"}]}', :tables) AS version;
SELECT viewmig.prepare_initial(ARRAY['decl']) > 0 AS prepared;
SELECT viewmig.replay_initial();
SELECT viewmig.abort();
-- ... and a value too long for varchar(20), rejected by COPY like by INSERT.
SELECT viewmig.register_declarative_projector('decl', '{"PostDrafted": [{"insert": "d_posts", "values": {"id": "aggregate_id", "author_id": "$.author_id::uuid", "title": {"value": "a title longer than twenty characters"}}}]}', :tables) AS version;
SELECT viewmig.prepare_initial(ARRAY['decl']) > 0 AS prepared;
SELECT viewmig.replay_initial();
SELECT viewmig.abort();
-- Back to the working rules (the pending version is withdrawn).
SELECT viewmig.register_declarative_projector('decl', :'rules', :tables) AS version;

-- 8. A second rule set: a composite key of a cast event column and a JSON field (shared), timestamp
--    without time zone with greatest/least, bigint counters, an integer greatest, upsert without set.
CREATE TABLE view_schema.d_daily (day date, author uuid, events bigint NOT NULL, first_at timestamp, last_at timestamp,
                                  PRIMARY KEY (day, author));
CREATE TABLE view_schema.d_progress (aggregate_id uuid PRIMARY KEY, max_seq int, kind text NOT NULL);
SELECT viewmig.register_declarative_projector('decl2', $r${
  "PostTagged": [
    {"upsert": "d_daily", "key": {"day": "created_at::date", "author": "$.author_id::uuid"},
     "values": {"events": 1, "first_at": "created_at::timestamp", "last_at": "created_at::timestamp"},
     "set": {"events": {"add": 1}, "first_at": {"least": "created_at::timestamp"}, "last_at": {"greatest": "created_at::timestamp"}}},
    {"upsert": "d_progress", "key": {"aggregate_id": "aggregate_id"}, "values": {"max_seq": "sequence_number", "kind": "event_type"},
     "set": {"max_seq": {"greatest": "sequence_number"}}}],
  "PostPublished": [
    {"upsert": "d_progress", "key": {"aggregate_id": "aggregate_id"}, "values": {"max_seq": "sequence_number", "kind": "event_type"}}]
}$r$, ARRAY['view_schema.d_daily', 'view_schema.d_progress']::regclass[]) AS version;
CREATE FUNCTION decl2_reference(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type = 'PostTagged' THEN
        INSERT INTO d_daily AS d (day, author, events, first_at, last_at)
        VALUES (e.created_at::date, (e.event_json->>'author_id')::uuid, 1, e.created_at::timestamp, e.created_at::timestamp)
        ON CONFLICT (day, author) DO UPDATE SET events = d.events + 1, first_at = least(d.first_at, e.created_at::timestamp),
                                                last_at = greatest(d.last_at, e.created_at::timestamp);
        INSERT INTO d_progress AS p (aggregate_id, max_seq, kind) VALUES (e.aggregate_id, e.sequence_number, e.event_type)
        ON CONFLICT (aggregate_id) DO UPDATE SET max_seq = greatest(p.max_seq, e.sequence_number);
    ELSIF e.event_type = 'PostPublished' THEN
        INSERT INTO d_progress AS p (aggregate_id, max_seq, kind) VALUES (e.aggregate_id, e.sequence_number, e.event_type)
        ON CONFLICT (aggregate_id) DO UPDATE SET max_seq = e.sequence_number, kind = e.event_type;
    END IF;
END $$;
SELECT viewmig.prepare_initial(ARRAY['decl2']) > 0 AS prepared;
SELECT table_name FROM viewmig.replay_deferred_ddl
WHERE kind = 'bulk_constraint' AND replay_id = (SELECT max(id) FROM viewmig.replays) ORDER BY 1;
SELECT viewmig.replay_initial(batch_size => 30) > 0 AS replayed;
SELECT rebuild_from_scratch('view_schema', 'by_hand2', '{d_daily,d_progress}', 'decl2_reference') > 0 AS rebuilt;
SELECT * FROM compare_schemas('replay_schema', 'by_hand2', '{d_daily,d_progress}');
SELECT viewmig.abort();

-- 9. A projector without shared tables (partitioned and append-only): two workers each load
--    their own groups' rows.
SELECT viewmig.register_declarative_projector('decl3', public.decl3_rules(),
    ARRAY['view_schema.d_seen', 'view_schema.d_log']::regclass[]) AS version;
SELECT viewmig.prepare_initial(ARRAY['decl3']) > 0 AS prepared;
SELECT viewmig.replay_initial(batch_size => 40, workers => 2) > 0 AS replayed;
SELECT rebuild_from_scratch('view_schema', 'by_hand3', '{d_seen,d_log}', 'decl3_reference') > 0 AS rebuilt;
SELECT * FROM compare_schemas('replay_schema', 'by_hand3', '{d_seen,d_log}');
SELECT viewmig.abort();
\set VERBOSITY terse
