\set ON_ERROR_STOP on
\pset footer off
SELECT id, kind, status, attempts, result FROM viewmig.jobs ORDER BY id;
SELECT event, details FROM viewmig.job_events ORDER BY id;
\echo
\echo '== 8. A background index build: CREATE INDEX CONCURRENTLY run by the launcher, confirmed from the catalog'
SELECT viewmig.add_index_in_background('view_schema.posts', ARRAY['title'], name => 'posts_published_title_idx',
                                       "where" => 'published');
