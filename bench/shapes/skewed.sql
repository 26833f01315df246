-- Shape "skewed": 30% of the posts by 50 hot authors, whose rows are updated thousands of times.
-- There are events/100 authors in all, so at 1 000 000 events each hot author's author_stats row
-- is updated about 6 000 times (the results table shows the busiest one's exact count). This is
-- where long transactions hurt: the old versions of a row stay until its transaction ends, and
-- every update of the row looks through them.
-- psql variable :events is the wanted event count (BENCH_EVENTS).
SELECT public.bench_generate(:events, greatest(:events / 100, 100)::int, 50, 30) AS events_inserted;
