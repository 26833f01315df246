-- viewmig 1.0: catalog tables, the status view and the SQL API.
-- The catalog tables are written only by viewmig's functions (which switch to the extension
-- owner for that); everyone may read them.

\echo Use "CREATE EXTENSION viewmig" to load this file. \quit

-- Where the events are, and which columns play which role (one event store per database).
CREATE TABLE viewmig.event_store (
    singleton               boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    events                  regclass NOT NULL,
    aggregate_id_column     name NOT NULL,
    sequence_number_column  name NOT NULL,
    event_type_column       name NOT NULL,
    xact_id_column          name NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Every registered version of every projector. At most one active and one pending version each.
CREATE TABLE viewmig.projector_versions (
    projector                 text NOT NULL,
    version                   int NOT NULL,
    handler                   regprocedure NOT NULL,
    view_schema               name NOT NULL,
    managed_tables            name[] NOT NULL,
    additional_replay_indexes text[] NOT NULL DEFAULT '{}',
    event_types               text[],
    live                      boolean NOT NULL DEFAULT false,
    status                    text NOT NULL CHECK (status IN ('active', 'pending', 'retired')),
    registered_at             timestamptz NOT NULL DEFAULT now(),
    activated_at              timestamptz,
    PRIMARY KEY (projector, version)
);
CREATE UNIQUE INDEX projector_versions_one_active ON viewmig.projector_versions (projector) WHERE status = 'active';
CREATE UNIQUE INDEX projector_versions_one_pending ON viewmig.projector_versions (projector) WHERE status = 'pending';

-- Schemas viewmig created (by OID, so a schema dropped and re-created by someone else is not ours).
CREATE TABLE viewmig.owned_schemas (
    schema_oid   oid PRIMARY KEY,
    schema_name  name NOT NULL,
    purpose      text NOT NULL CHECK (purpose IN ('replay', 'archive')),
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per replay; at most one is active (not completed or aborted), enforced by an index.
CREATE TABLE viewmig.replays (
    id                bigserial PRIMARY KEY,
    state             text NOT NULL CHECK (state IN ('prepared', 'replaying_initial', 'replayed',
                                                     'completion_prepared', 'completed', 'aborted')),
    projectors        text[] NOT NULL,
    versions          int[] NOT NULL,
    view_schema       name NOT NULL,
    replay_schema     name NOT NULL,
    archive_schema    name NOT NULL,
    managed_tables    name[] NOT NULL,
    batch_size        int,
    initial_bound     bigint,   -- events with xact_id below this were replayed by replay_initial
    replayed_bound    bigint,   -- events with xact_id below this are in the replay tables
    events_total      bigint,   -- estimate, from the group plan
    events_done       bigint NOT NULL DEFAULT 0,  -- by increments; the groups count their own
    increments        int NOT NULL DEFAULT 0,
    started_at        timestamptz NOT NULL DEFAULT now(),
    initial_started_at timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    last_error        text
);
CREATE UNIQUE INDEX replays_one_active ON viewmig.replays ((true))
    WHERE state NOT IN ('completed', 'aborted');

-- The initial replay's groups: aggregate_id ranges [lower_bound, upper_bound), NULL = open end.
-- A group is claimed by one worker at a time; its work commits in batches, each moving
-- resume_after (the last aggregate fully replayed) on, so a resumed group continues from there.
CREATE TABLE viewmig.replay_groups (
    replay_id        bigint NOT NULL REFERENCES viewmig.replays ON DELETE CASCADE,
    group_no         int NOT NULL,
    lower_bound      text,
    upper_bound      text,
    events_estimate  bigint NOT NULL,
    done             boolean NOT NULL DEFAULT false,
    resume_after     text,
    events_done      bigint NOT NULL DEFAULT 0,
    worker_pid       int,          -- the worker that committed the group's last batch
    finished_at      timestamptz,
    PRIMARY KEY (replay_id, group_no)
);

-- DDL kept from the view tables for prepare_completion: indexes that are no constraint, and
-- foreign keys that only check (NO ACTION / RESTRICT). Replaying aggregate by aggregate may
-- replay a child before its parent, so those keys are added once all events are in, as
-- DEFERRABLE INITIALLY DEFERRED (checked when each increment commits); complete() restores
-- their original deferrability ('restore_deferrability' rows).
CREATE TABLE viewmig.replay_deferred_ddl (
    replay_id    bigint NOT NULL REFERENCES viewmig.replays ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('index', 'foreign_key', 'restore_deferrability')),
    table_name   name NOT NULL,
    object_name  name NOT NULL,
    definition   text NOT NULL,  -- names the table unqualified; runs with search_path = replay schema, view schema
    done         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (replay_id, kind, table_name, object_name)
);


-- The job queue: steps (and whole replays) run by background workers. A job runs as the role
-- that enqueued it. Jobs of one lane run one at a time, in id order; the indexes below make the
-- database enforce it (one running job per lane, one queued or running replay pipeline).
CREATE TABLE viewmig.jobs (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('prepare_initial', 'replay_initial', 'replay_increment',
                                               'prepare_completion', 'complete', 'abort', 'replay')),
    lane          text NOT NULL,
    arguments     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(arguments) = 'object'),
    status        text NOT NULL DEFAULT 'enqueued'
                  CHECK (status IN ('enqueued', 'running', 'succeeded', 'failed', 'cancelled')),
    run_as        regrole NOT NULL,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    run_after     timestamptz NOT NULL DEFAULT now(),   -- retries wait until then
    started_at    timestamptz,
    finished_at   timestamptz,
    attempts      int NOT NULL DEFAULT 0,
    max_attempts  int NOT NULL CHECK (max_attempts >= 1),
    last_error    text,
    worker_pid    int,
    replay_id     bigint,                               -- the replay the job worked on
    progress      jsonb NOT NULL DEFAULT '{}',
    result        jsonb
);
CREATE UNIQUE INDEX jobs_one_running_per_lane ON viewmig.jobs (lane) WHERE status = 'running';
CREATE UNIQUE INDEX jobs_one_replay_pipeline ON viewmig.jobs ((true))
    WHERE kind = 'replay' AND status IN ('enqueued', 'running');
CREATE INDEX jobs_queue ON viewmig.jobs (lane, id) WHERE status = 'enqueued';

-- Every state change of every job; each row is also sent as NOTIFY viewmig, '<json>'.
CREATE TABLE viewmig.job_events (
    id       bigserial PRIMARY KEY,
    job_id   bigint NOT NULL REFERENCES viewmig.jobs ON DELETE CASCADE,
    event    text NOT NULL CHECK (event IN ('enqueued', 'started', 'progress', 'retried', 'succeeded',
                                            'failed', 'cancelled')),
    at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    details  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX job_events_job ON viewmig.job_events (job_id, id);

GRANT USAGE ON SCHEMA viewmig TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA viewmig TO PUBLIC;

CREATE FUNCTION viewmig.set_event_store(
    events regclass,
    aggregate_id_column name DEFAULT 'aggregate_id',
    sequence_number_column name DEFAULT 'sequence_number',
    event_type_column name DEFAULT 'event_type',
    xact_id_column name DEFAULT 'xact_id')
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_set_event_store';
COMMENT ON FUNCTION viewmig.set_event_store IS 'Names the event table and the columns viewmig reads';

CREATE FUNCTION viewmig.register_projector(
    name text,
    handler regprocedure,
    managed_tables regclass[],
    additional_replay_indexes text[] DEFAULT '{}',
    event_types text[] DEFAULT NULL,
    live boolean DEFAULT false)
RETURNS int LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_register_projector';
COMMENT ON FUNCTION viewmig.register_projector IS 'Registers a projector (or a new pending version of it); returns the version';

CREATE FUNCTION viewmig.prepare_initial(
    projectors text[] DEFAULT NULL,
    replay_schema name DEFAULT 'replay_schema',
    archive_schema name DEFAULT 'archive_schema')
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_prepare_initial';
COMMENT ON FUNCTION viewmig.prepare_initial IS 'Creates the replay schema with copies of the managed tables; returns the replay id';

CREATE FUNCTION viewmig.replay_initial(batch_size int DEFAULT NULL, workers int DEFAULT NULL)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_replay_initial';
COMMENT ON FUNCTION viewmig.replay_initial IS 'Replays all events committed before it started, committing per group in a background worker; resumable';

CREATE FUNCTION viewmig.replay_increment(batch_size int DEFAULT NULL, workers int DEFAULT NULL)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_replay_increment';
COMMENT ON FUNCTION viewmig.replay_increment IS 'Replays the events committed since the previous bound, in the calling transaction';

CREATE FUNCTION viewmig.prepare_completion()
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_prepare_completion';
COMMENT ON FUNCTION viewmig.prepare_completion IS 'Builds the kept indexes, CLUSTERs, VACUUM ANALYZEs the replay tables (in a background worker)';

CREATE FUNCTION viewmig.complete()
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_complete';
COMMENT ON FUNCTION viewmig.complete IS 'Swaps replay tables into the view schema under a brief lock; returns the events of the last increment';

CREATE FUNCTION viewmig.abort()
RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_abort';
COMMENT ON FUNCTION viewmig.abort IS 'Drops the replay schema and ends the active replay; the view schema is untouched';


-- ---- the job queue ---------------------------------------------------------------------------

CREATE FUNCTION viewmig.enqueue(kind text, arguments jsonb DEFAULT '{}', max_attempts int DEFAULT 5)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_enqueue';
COMMENT ON FUNCTION viewmig.enqueue IS 'Queues a job (a replay step, or the whole replay) for the launcher; returns the job id';

CREATE FUNCTION viewmig.cancel_job(job_id bigint)
RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_cancel_job';
COMMENT ON FUNCTION viewmig.cancel_job IS 'Cancels a queued job, or stops a running one (its backend and workers are terminated)';

CREATE FUNCTION viewmig.retry_job(job_id bigint)
RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_retry_job';
COMMENT ON FUNCTION viewmig.retry_job IS 'Queues a failed or cancelled job again, with a fresh count of attempts';

-- Internal: appends a job event and sends it as NOTIFY viewmig (at commit). Called by viewmig's
-- C++ code as the extension owner; not for PUBLIC.
CREATE FUNCTION viewmig.record_job_event(job bigint, event text, details jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    j viewmig.jobs;
    event_id bigint;
BEGIN
    SELECT * INTO j FROM viewmig.jobs WHERE id = job;
    INSERT INTO viewmig.job_events (job_id, event, details) VALUES (job, event, details) RETURNING id INTO event_id;
    PERFORM pg_notify('viewmig', jsonb_build_object(
        'event_id', event_id, 'job', job, 'event', event, 'kind', j.kind, 'status', j.status,
        'attempts', j.attempts, 'details', details)::text);
END;
$$;

-- Internal (launcher): jobs left 'running' by a worker that is gone (a crash, a server restart)
-- are queued again, or fail once they have used all their attempts. `tracked` are the jobs whose
-- workers the launcher started and still sees, so a worker that has not yet recorded its pid is
-- not taken for gone.
CREATE FUNCTION viewmig.launcher_requeue_orphans(tracked bigint[])
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    j viewmig.jobs;
    n int := 0;
BEGIN
    FOR j IN SELECT * FROM viewmig.jobs
             WHERE status = 'running' AND id <> ALL (tracked)
               AND (worker_pid IS NULL OR worker_pid NOT IN (SELECT pid FROM pg_stat_activity))
             ORDER BY id FOR UPDATE SKIP LOCKED
    LOOP
        n := n + 1;
        IF j.attempts >= j.max_attempts THEN
            UPDATE viewmig.jobs SET status = 'failed', finished_at = now(), worker_pid = NULL,
                   last_error = 'the job''s worker exited unexpectedly (a crash or a server restart) and all '
                                || max_attempts || ' attempts are used'
            WHERE id = j.id;
            PERFORM viewmig.record_job_event(j.id, 'failed', jsonb_build_object('reason', 'worker exited', 'pid', j.worker_pid));
        ELSE
            UPDATE viewmig.jobs SET status = 'enqueued', run_after = now(), worker_pid = NULL,
                   last_error = 'the job''s worker exited unexpectedly (a crash or a server restart); resuming'
            WHERE id = j.id;
            PERFORM viewmig.record_job_event(j.id, 'retried', jsonb_build_object('reason', 'worker exited', 'pid', j.worker_pid));
        END IF;
    END LOOP;
    RETURN n;
END;
$$;

-- Internal (launcher): takes up to `how_many` due jobs, the oldest of each idle lane, and marks
-- them running (one more attempt). The unique index on running lanes makes a race impossible.
CREATE FUNCTION viewmig.launcher_claim_jobs(how_many int)
RETURNS TABLE (job_id bigint, run_as oid) LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH due AS (
        SELECT DISTINCT ON (j.lane) j.id
        FROM viewmig.jobs j
        WHERE j.status = 'enqueued'
          AND NOT EXISTS (SELECT 1 FROM viewmig.jobs r WHERE r.lane = j.lane AND r.status = 'running')
        ORDER BY j.lane, j.id
    ), picked AS (
        SELECT j.id FROM viewmig.jobs j JOIN due USING (id)
        WHERE j.run_after <= now()
        ORDER BY j.id LIMIT how_many
        FOR UPDATE OF j SKIP LOCKED
    )
    UPDATE viewmig.jobs j SET status = 'running', attempts = j.attempts + 1, started_at = now(),
           finished_at = NULL, worker_pid = NULL
    FROM picked WHERE j.id = picked.id
    RETURNING j.id, j.run_as::oid;
END;
$$;

-- Internal (launcher): a claimed job whose worker could not be started goes back to the queue.
CREATE FUNCTION viewmig.launcher_unclaim_job(job bigint, reason text)
RETURNS void LANGUAGE sql AS $$
    UPDATE viewmig.jobs SET status = 'enqueued', attempts = attempts - 1, started_at = NULL,
           run_after = now() + interval '1 second', last_error = reason
    WHERE id = job AND status = 'running';
$$;

-- Internal (launcher): when the next queued job becomes due (NULL: none queued).
CREATE FUNCTION viewmig.launcher_next_due()
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT min(run_after) FROM viewmig.jobs WHERE status = 'enqueued';
$$;

REVOKE EXECUTE ON FUNCTION viewmig.record_job_event(bigint, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_requeue_orphans(bigint[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_claim_jobs(int) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_unclaim_job(bigint, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_next_due() FROM PUBLIC;

-- viewmig's processes in this database: the launcher, job workers and replay workers, with what
-- each is doing; for replay workers also the groups whose last batch they committed.
CREATE VIEW viewmig.workers AS
SELECT a.pid,
       a.backend_type,
       j.id AS job_id,
       coalesce(j.replay_id, g.replay_id) AS replay_id,
       a.state,
       a.wait_event_type,
       a.wait_event,
       a.query AS activity,
       a.backend_start,
       g.groups_done,
       g.events_done
FROM pg_stat_activity a
LEFT JOIN viewmig.jobs j ON j.worker_pid = a.pid AND j.status = 'running'
LEFT JOIN LATERAL (
    SELECT rg.replay_id, count(*) FILTER (WHERE rg.done)::int AS groups_done, sum(rg.events_done)::bigint AS events_done
    FROM viewmig.replay_groups rg
    WHERE rg.worker_pid = a.pid
      AND rg.replay_id IN (SELECT id FROM viewmig.replays WHERE state NOT IN ('completed', 'aborted'))
    GROUP BY rg.replay_id) g ON true
WHERE a.backend_type IN ('viewmig launcher', 'viewmig job', 'viewmig worker')
  AND a.datname = current_database();
GRANT SELECT ON viewmig.workers TO PUBLIC;

-- One row per replay, newest first.
CREATE VIEW viewmig.status AS
SELECT r.id,
       r.state,
       r.projectors,
       r.versions,
       r.view_schema,
       r.replay_schema,
       r.archive_schema,
       r.events_total,
       r.events_done + g.group_events AS events_done,
       g.groups_total,
       g.groups_done,
       r.increments,
       r.started_at,
       r.updated_at,
       rate.events_per_s,
       CASE WHEN r.state = 'replaying_initial' AND rate.events_per_s > 0
            THEN make_interval(secs => greatest(r.events_total - g.group_events, 0) / rate.events_per_s)
       END AS eta,
       r.last_error,
       job.id AS job_id,
       job.status AS job_status,
       (SELECT count(*)::int FROM viewmig.workers w WHERE w.replay_id = r.id AND w.backend_type = 'viewmig worker') AS workers
FROM viewmig.replays r
LEFT JOIN LATERAL (
    SELECT j.id, j.status FROM viewmig.jobs j WHERE j.replay_id = r.id ORDER BY j.id DESC LIMIT 1) job ON true
LEFT JOIN LATERAL (
    SELECT count(*)::int AS groups_total, count(*) FILTER (WHERE done)::int AS groups_done,
           coalesce(sum(events_done), 0)::bigint AS group_events,
           max(finished_at) AS last_group_at
    FROM viewmig.replay_groups WHERE replay_id = r.id) g ON true
LEFT JOIN LATERAL (
    SELECT round(g.group_events / nullif(extract(epoch FROM coalesce(g.last_group_at, r.updated_at)
                                                  - r.initial_started_at), 0))::bigint AS events_per_s) rate ON true
ORDER BY r.id DESC;
GRANT SELECT ON viewmig.status TO PUBLIC;

-- Live projection: created on the event table by register_projector(..., live => true).
CREATE FUNCTION viewmig.live_projection()
RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_live_projection';
