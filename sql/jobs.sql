-- The job queue's SQL surface. This cluster runs no launcher for this database, so jobs stay
-- queued (enqueue says so); the launcher itself is tested by the TAP suite (test/tap/).
SET viewmig.progress_interval = 0;

-- 1. enqueue() checks the kind and every argument before anything is queued.
SELECT viewmig.enqueue('vacuum');
SELECT viewmig.enqueue('replay_initial', '{"workerz": 2}');
SELECT viewmig.enqueue('replay_initial', '{"workers": "two"}');
SELECT viewmig.enqueue('replay', '{"projectors": "blog"}');
SELECT viewmig.enqueue('replay', '[1, 2]');
SELECT viewmig.enqueue('complete', '{}', max_attempts => 0);
SELECT viewmig.enqueue(NULL);
SELECT count(*) AS jobs FROM viewmig.jobs;

-- 2. A valid job is queued as the current role, with a WARNING that no launcher will run it.
SELECT viewmig.enqueue('replay', '{"projectors": ["blog"], "workers": 2, "auto_complete": true}') AS job \gset
SELECT id, kind, lane, arguments, status, run_as, attempts, max_attempts, replay_id FROM viewmig.jobs;
-- Only one replay pipeline may be queued or running (a unique index says so).
SELECT viewmig.enqueue('replay');

-- 3. Cancel and retry. Cancelling an ended job changes nothing.
SELECT viewmig.cancel_job(:job);
SELECT viewmig.cancel_job(:job);
SELECT status, finished_at IS NOT NULL AS finished FROM viewmig.jobs WHERE id = :job;
SELECT viewmig.retry_job(:job);
SELECT status, attempts, finished_at IS NULL AS reopened FROM viewmig.jobs WHERE id = :job;
SELECT viewmig.retry_job(:job);
SELECT viewmig.cancel_job(12345);

-- 4. Jobs belong to the role that enqueued them: others may neither cancel nor retry them,
--    and nobody but viewmig itself may call the launcher's functions.
CREATE ROLE viewmig_job_user;
SET ROLE viewmig_job_user;
SELECT viewmig.cancel_job(:job);
SELECT viewmig.enqueue('replay_increment', '{"batch_size": 500}') AS own_job \gset
SELECT kind, run_as, status FROM viewmig.jobs WHERE id = :own_job;
SELECT viewmig.cancel_job(:own_job);
SELECT * FROM viewmig.launcher_claim_jobs(10);
SELECT viewmig.record_job_event(:job, 'succeeded');
UPDATE viewmig.jobs SET status = 'succeeded';
RESET ROLE;

-- 5. Every state change is an event (also sent as NOTIFY viewmig).
SELECT job_id, event, details FROM viewmig.job_events ORDER BY id;

-- 6. A job enqueued inside a transaction that rolls back was never queued.
BEGIN;
SELECT viewmig.enqueue('abort') AS rolled_back \gset
ROLLBACK;
SELECT count(*) FROM viewmig.jobs WHERE id = :rolled_back;

SELECT viewmig.cancel_job(:job);
DROP ROLE viewmig_job_user;
