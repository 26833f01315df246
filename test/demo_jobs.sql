-- The second half of `make demo`: the same work as background jobs, run by the launcher (the
-- cluster preloads viewmig). test/demo.sh polls the job between the two halves of this file.
\set ON_ERROR_STOP on
\pset footer off
\echo
\echo '== 7. A whole replay as one background job: the launcher runs it (2 workers), nobody waits'
SELECT viewmig.enqueue('replay', '{"workers": 2, "auto_complete": true}') AS job;
