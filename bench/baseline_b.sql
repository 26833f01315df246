-- Baseline B (timed by bench/run.sh): the same loop as a procedure that COMMITs every :every
-- events, into the empty copies in schema :target (see bench/baselines.sql).
SET search_path = :"target", public;
CALL bench_loop_commit_every(:every);
