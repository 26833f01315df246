-- Shape "single": one event per aggregate (1 M aggregates with one event each at 1 M events): AuthorCreated only.
-- The replay's cost is all per-aggregate overhead: every group holds ~batch_size aggregates of one
-- event, and only the authors table gets rows (posts, post_tags and author_stats stay empty until
-- bench/run.sh appends its increment events, new posts of these authors).
-- psql variable :events is the wanted event count (BENCH_EVENTS) = the number of authors.
SELECT public.bench_generate_single(:events) AS events_inserted;
