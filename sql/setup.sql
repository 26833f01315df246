-- Installs viewmig and the blog test domain used by the following test files.
CREATE EXTENSION viewmig;
\set ECHO none
\set QUIET on
\i test/fixtures/blog.sql
\i test/fixtures/compare.sql
\set QUIET off
\set ECHO all
SELECT extname, extversion FROM pg_extension WHERE extname = 'viewmig';
-- The API: every function lives in schema viewmig.
SELECT p.oid::regprocedure AS function
FROM pg_proc p WHERE p.pronamespace = 'viewmig'::regnamespace ORDER BY p.proname;
