-- Shape "uniform": many authors with 3 posts each, every row updated only a few times.
-- An author_stats row is updated about 10 times; the replay's cost follows the number of events.
-- psql variable :events is the wanted event count (BENCH_EVENTS). 11.75 events per author:
-- 1.25 author events + 3 posts of 3.5 events.
SELECT public.bench_generate(:events, greatest(round(:events / 11.75), 1)::int, 0, 0) AS events_inserted;
