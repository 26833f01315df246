-- The bench projector (bench/schema.sql, bench_projector) as declarative rules: the same tables
-- from the same events. bench/run.sh registers them as a new version of projector "bench", over
-- the same four view tables (register_declarative_projector, in the psql call that runs this
-- file: it sets psql variable :rules to the JSON, and \gset variables live in one session).
SELECT $rules${
  "AuthorCreated": [
    {"upsert": "authors", "key": {"id": "aggregate_id"}, "values": {"name": "$.name", "created_at": "created_at"}}],
  "AuthorRenamed": [
    {"update": "authors", "key": {"id": "aggregate_id"}, "set": {"name": "$.name"}}],
  "PostDrafted": [
    {"insert": "posts", "values": {"id": "aggregate_id", "author_id": "$.author_id::uuid", "title": "$.title",
                                   "body": "$.body", "drafted_at": "created_at"}},
    {"upsert": "authors", "key": {"id": "$.author_id::uuid"}, "values": {"name": {"value": "?"}, "post_count": 1},
     "set": {"post_count": {"add": 1}}},
    {"upsert": "author_stats", "key": {"author_id": "$.author_id::uuid"},
     "values": {"events": 1, "drafted": 1, "tagged": 0, "published": 0, "last_event_at": "created_at"},
     "set": {"events": {"add": 1}, "drafted": {"add": 1}, "last_event_at": {"greatest": "created_at"}}}],
  "PostTagged": [
    {"insert": "post_tags", "values": {"post_id": "aggregate_id", "tag": "$.tag"}},
    {"increment": "posts", "key": {"id": "aggregate_id"}, "column": "tag_count"},
    {"upsert": "author_stats", "key": {"author_id": "$.author_id::uuid"},
     "values": {"events": 1, "drafted": 0, "tagged": 1, "published": 0, "last_event_at": "created_at"},
     "set": {"events": {"add": 1}, "tagged": {"add": 1}, "last_event_at": {"greatest": "created_at"}}}],
  "PostPublished": [
    {"update": "posts", "key": {"id": "aggregate_id"}, "set": {"published": true, "published_at": "created_at"}},
    {"upsert": "author_stats", "key": {"author_id": "$.author_id::uuid"},
     "values": {"events": 1, "drafted": 0, "tagged": 0, "published": 1, "last_event_at": "created_at"},
     "set": {"events": {"add": 1}, "published": {"add": 1}, "last_event_at": {"greatest": "created_at"}}}]
}$rules$::jsonb AS rules \gset
