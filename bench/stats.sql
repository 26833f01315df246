-- Facts about the generated history for the results table, printed as one line
-- "events|aggregates|authors|posts|author_stats max updates|authors max updates":
-- the most updates one row gets = the busiest author's events touching the row, less the insert
-- (0 when there are no post events, as in the "single" shape).
WITH per_author AS (
    SELECT (event_json->>'author_id')::uuid AS author,
           count(*) AS post_events,
           count(*) FILTER (WHERE event_type = 'PostDrafted') AS drafts
    FROM event_records WHERE event_type IN ('PostDrafted', 'PostTagged', 'PostPublished')
    GROUP BY 1),
own AS (
    SELECT aggregate_id AS author, count(*) AS author_events
    FROM event_records WHERE event_type IN ('AuthorCreated', 'AuthorRenamed') GROUP BY 1)
SELECT (SELECT count(*) FROM event_records),
       (SELECT count(DISTINCT aggregate_id) FROM event_records),
       (SELECT count(*) FROM own),
       (SELECT count(*) FROM event_records WHERE event_type = 'PostDrafted'),
       coalesce((SELECT max(post_events) - 1 FROM per_author), 0),
       (SELECT max(coalesce(p.drafts, 0) + coalesce(o.author_events, 0)) - 1
        FROM per_author p FULL JOIN own o USING (author));
