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
    mode                      text NOT NULL DEFAULT 'event' CHECK (mode IN ('event', 'batch', 'declarative')),
    -- mode 'declarative': the rules, and the event table's JSON column their "$." paths read;
    -- `handler` is then the PL/pgSQL function generated from the rules (the row path).
    rules                     jsonb CHECK ((rules IS NOT NULL) = (mode = 'declarative')),
    json_column               name,
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
    last_error        text,
    kind              text NOT NULL DEFAULT 'replay' CHECK (kind IN ('replay', 'view_schema')),
    target_version    int,      -- view_schema: the version migrate_online builds
    -- Declarative projectors whose engine writes its shared rows with every batch (several workers,
    -- or a resumed replay); the others keep them in memory until replay_initial ends.
    eager_projectors  text[] NOT NULL DEFAULT '{}',
    -- An unfinished replay_increment(workers => N): the events with increment_lower <= xact_id <
    -- increment_upper, in viewmig.increment_groups; replayed_bound moves to increment_upper when
    -- every group is done.
    increment_lower   bigint,
    increment_upper   bigint
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

-- A parallel increment's groups: the same as replay_groups, over the events of the replay's
-- increment window (increment_lower, increment_upper) instead of all events below initial_bound.
CREATE TABLE viewmig.increment_groups (LIKE viewmig.replay_groups INCLUDING ALL,
    FOREIGN KEY (replay_id) REFERENCES viewmig.replays ON DELETE CASCADE);

-- DDL kept from the view tables for prepare_completion: indexes that are no constraint, and
-- foreign keys that only check (NO ACTION / RESTRICT). Replaying aggregate by aggregate may
-- replay a child before its parent, so those keys are added once all events are in, as
-- DEFERRABLE INITIALLY DEFERRED (checked when each increment commits); complete() restores
-- their original deferrability ('restore_deferrability' rows).
CREATE TABLE viewmig.replay_deferred_ddl (
    replay_id    bigint NOT NULL REFERENCES viewmig.replays ON DELETE CASCADE,
    -- bulk_constraint: a primary key or unique constraint of a table the declarative engine
    -- bulk-loads, added when replay_initial ends (before any increment).
    kind         text NOT NULL CHECK (kind IN ('index', 'foreign_key', 'restore_deferrability', 'bulk_constraint')),
    table_name   name NOT NULL,
    object_name  name NOT NULL,
    definition   text NOT NULL,  -- names the table unqualified; runs with search_path = replay schema, view schema
    done         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (replay_id, kind, table_name, object_name)
);


-- Versioned view-schema migrations (Sequent 7's ViewSchema model): table DDL with %SUFFIX%
-- placeholders, versions naming the projectors to rebuild, and the versions migrated so far.
CREATE TABLE viewmig.view_schema_versions (
    version      int PRIMARY KEY CHECK (version > 0),
    migrated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE viewmig.table_definitions (
    table_name   name PRIMARY KEY,
    view_schema  name NOT NULL,
    ddl          text NOT NULL,   -- every name that must be unique carries %SUFFIX%
    defined_by   regrole NOT NULL,
    defined_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE viewmig.view_schema_version_definitions (
    version      int PRIMARY KEY CHECK (version > 0),
    projectors   text[] NOT NULL CHECK (cardinality(projectors) > 0),
    defined_at   timestamptz NOT NULL DEFAULT now()
);
-- The <table>_<version> tables migrate_online created (so only those are ever dropped again).
CREATE TABLE viewmig.view_schema_migration_tables (
    version      int NOT NULL,
    view_schema  name NOT NULL,
    table_name   name NOT NULL,   -- the managed table, e.g. accounts
    new_table    name NOT NULL,   -- what migrate_online built, e.g. accounts_2
    table_oid    oid NOT NULL,
    PRIMARY KEY (version, table_name)
);

-- The job queue: steps (and whole replays) run by background workers. A job runs as the role
-- that enqueued it. Jobs of one lane run one at a time, in id order; the indexes below make the
-- database enforce it (one running job per lane, one queued or running replay pipeline).
CREATE TABLE viewmig.jobs (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('prepare_initial', 'replay_initial', 'replay_increment',
                                               'prepare_completion', 'complete', 'abort', 'replay',
                                               'migrate_online', 'migrate_offline')),
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


-- Background schema migrations: statements that must run outside a transaction block (CREATE
-- INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, VALIDATE CONSTRAINT, ...), run one at a time per
-- table by the launcher or viewmig.run_background_schema_migrations(), retried with back-off.
-- A composite row (partitioned table) is not run itself: its status follows its children, which
-- run in id order.
CREATE TABLE viewmig.background_schema_migrations (
    id                 bigserial PRIMARY KEY,
    parent_id          bigint REFERENCES viewmig.background_schema_migrations ON DELETE CASCADE,
    kind               text NOT NULL CHECK (kind IN ('add_index', 'remove_index', 'validate_constraint', 'custom')),
    migration_name     text NOT NULL,   -- the index or constraint name, or the caller's name
    table_name         regclass NOT NULL,
    definition         text NOT NULL,   -- one or more statements, each run as a top-level command
    composite          boolean NOT NULL DEFAULT false,
    status             text NOT NULL DEFAULT 'enqueued'
                       CHECK (status IN ('enqueued', 'running', 'errored', 'failed', 'succeeded', 'cancelled', 'delayed')),
    statement_timeout  interval NOT NULL DEFAULT '1 hour',
    max_attempts       int NOT NULL DEFAULT 5 CHECK (max_attempts >= 1),
    attempts           int NOT NULL DEFAULT 0,
    run_after          timestamptz NOT NULL DEFAULT now(),  -- delayed and errored rows wait until then
    started_at         timestamptz,
    finished_at        timestamptz,
    error_class        text,            -- SQLSTATE of the last error
    error_message      text,
    backtrace          text[],          -- the error's context lines
    worker_pid         int,
    run_as             regrole NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- Never two migrations running on one table, whoever schedules them.
CREATE UNIQUE INDEX background_schema_migrations_one_per_table ON viewmig.background_schema_migrations (table_name)
    WHERE status = 'running' AND NOT composite;
-- One live migration per table, name and kind (a cancelled one may be queued anew).
CREATE UNIQUE INDEX background_schema_migrations_name ON viewmig.background_schema_migrations (table_name, migration_name, kind)
    WHERE parent_id IS NULL AND status <> 'cancelled';

-- Only these status changes are legal (as in online_migrations), checked by a trigger.
CREATE FUNCTION viewmig.check_schema_migration_transition() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (OLD.status, NEW.status) IN (
            ('enqueued', 'running'), ('enqueued', 'cancelled'),
            ('running', 'succeeded'), ('running', 'errored'), ('running', 'failed'), ('running', 'cancelled'),
            ('errored', 'running'), ('errored', 'failed'), ('errored', 'cancelled'),
            ('failed', 'enqueued'), ('failed', 'running'), ('failed', 'cancelled'),
            ('delayed', 'enqueued'), ('delayed', 'cancelled'))
       -- a composite row follows its children (until it is cancelled)
       AND NOT (OLD.composite AND OLD.status <> 'cancelled') THEN
        RAISE EXCEPTION 'cannot transition background schema migration % from status % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;
CREATE TRIGGER check_transition BEFORE UPDATE ON viewmig.background_schema_migrations
    FOR EACH ROW EXECUTE FUNCTION viewmig.check_schema_migration_transition();

-- Instrumentation: started, run, completed, retried, throttled (as online_migrations), plus
-- errored, failed, cancelled; each also sent as NOTIFY viewmig_schema_migrations, '<json>'.
CREATE TABLE viewmig.schema_migration_events (
    id            bigserial PRIMARY KEY,
    migration_id  bigint NOT NULL REFERENCES viewmig.background_schema_migrations ON DELETE CASCADE,
    event         text NOT NULL CHECK (event IN ('enqueued', 'started', 'run', 'completed', 'retried', 'throttled',
                                                 'errored', 'failed', 'cancelled')),
    at            timestamptz NOT NULL DEFAULT clock_timestamp(),
    details       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX schema_migration_events_migration ON viewmig.schema_migration_events (migration_id, id);

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
    live boolean DEFAULT false,
    mode text DEFAULT 'event')
RETURNS int LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_register_projector';
COMMENT ON FUNCTION viewmig.register_projector IS 'Registers a projector (or a new pending version of it); returns the version';

CREATE FUNCTION viewmig.register_declarative_projector(
    name text,
    rules jsonb,
    managed_tables regclass[],
    additional_replay_indexes text[] DEFAULT '{}',
    live boolean DEFAULT false,
    json_column name DEFAULT 'event_json')
RETURNS int LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_register_declarative_projector';
COMMENT ON FUNCTION viewmig.register_declarative_projector IS 'Registers a projector given as rules per event type: replayed by a compiled engine with bulk loads, its increments and live projection by a generated PL/pgSQL handler';

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



-- ---- versioned view-schema migrations -------------------------------------------------------

CREATE FUNCTION viewmig.current_view_schema_version()
RETURNS int LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT coalesce(max(version), 0) FROM viewmig.view_schema_versions $$;
COMMENT ON FUNCTION viewmig.current_view_schema_version IS 'The view-schema version migrated last (0: none)';

CREATE FUNCTION viewmig.define_table_sql(table_name name, ddl text, view_schema name DEFAULT 'view_schema')
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_define_table_sql';
COMMENT ON FUNCTION viewmig.define_table_sql IS 'Stores (and checks) the DDL of a managed table, with %SUFFIX% on every unique name';

CREATE FUNCTION viewmig.define_view_schema_version(version int, projectors text[])
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_define_view_schema_version';
COMMENT ON FUNCTION viewmig.define_view_schema_version IS 'Names the projectors a view-schema version rebuilds';

CREATE FUNCTION viewmig.create_view_tables()
RETURNS int LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_create_view_tables';
COMMENT ON FUNCTION viewmig.create_view_tables IS 'Creates the defined tables that do not exist yet (%SUFFIX% removed) and records the newest version for a fresh setup; returns the tables created';

CREATE FUNCTION viewmig.migrate_online(batch_size int DEFAULT NULL)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_migrate_online';
COMMENT ON FUNCTION viewmig.migrate_online IS 'Builds <table>_<new version> tables and replays the changed projectors into them, while the application runs';

CREATE FUNCTION viewmig.migrate_offline()
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_migrate_offline';
COMMENT ON FUNCTION viewmig.migrate_offline IS 'Replays what is left and swaps the tables by renaming, in one transaction; records the new version';

CREATE FUNCTION viewmig.rollback_migration()
RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_rollback_migration';
COMMENT ON FUNCTION viewmig.rollback_migration IS 'Drops the tables of an unfinished view-schema migration; the live tables stay as they are';

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
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
RETURNS int LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    j viewmig.jobs;
    n int := 0;
BEGIN
    -- A job worker holds the session advisory lock (30318, job id) while it lives: unlike pids,
    -- neither reused nor cached per transaction.
    FOR j IN SELECT * FROM viewmig.jobs
             WHERE status = 'running' AND id <> ALL (tracked)
               AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 30318
                               AND l.objid = viewmig.jobs.id::int4::oid AND l.objsubid = 2 AND l.granted
                               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
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
RETURNS TABLE (job_id bigint, attempt int) LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
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
    RETURNING j.id, j.attempts;
END;
$$;

-- Internal (launcher): a claimed job whose worker could not be started goes back to the queue.
CREATE FUNCTION viewmig.launcher_unclaim_job(job bigint, reason text)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
    UPDATE viewmig.jobs SET status = 'enqueued', attempts = attempts - 1, started_at = NULL,
           run_after = now() + interval '1 second', last_error = reason
    WHERE id = job AND status = 'running';
$$;

-- Internal (launcher): when the next job waiting for its retry time becomes due (NULL: none);
-- jobs due already but waiting for their lane start when the lane's job ends (its exit wakes us).
CREATE FUNCTION viewmig.launcher_next_due()
RETURNS timestamptz LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT min(run_after) FROM viewmig.jobs WHERE status = 'enqueued' AND run_after > now();
$$;

REVOKE EXECUTE ON FUNCTION viewmig.record_job_event(bigint, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_requeue_orphans(bigint[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_claim_jobs(int) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_unclaim_job(bigint, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.launcher_next_due() FROM PUBLIC;

-- viewmig's processes in this database: the launcher, job workers and replay workers, with what
-- each is doing; for replay workers also the groups (initial or increment) whose last batch they
-- committed.
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
    FROM (SELECT replay_id, done, events_done, worker_pid FROM viewmig.replay_groups
          UNION ALL
          SELECT replay_id, done, events_done, worker_pid FROM viewmig.increment_groups) rg
    WHERE rg.worker_pid = a.pid
      AND rg.replay_id IN (SELECT id FROM viewmig.replays WHERE state NOT IN ('completed', 'aborted'))
    GROUP BY rg.replay_id) g ON true
WHERE a.backend_type IN ('viewmig launcher', 'viewmig job', 'viewmig worker')
  AND a.datname = current_database();
GRANT SELECT ON viewmig.workers TO PUBLIC;


-- ---- background schema migrations ------------------------------------------------------------

CREATE FUNCTION viewmig.add_index_in_background(
    table_name regclass,
    columns text[],
    name name DEFAULT NULL,
    "unique" boolean DEFAULT false,
    method text DEFAULT 'btree',
    "where" text DEFAULT NULL,
    include text[] DEFAULT NULL,
    max_attempts int DEFAULT 5,
    statement_timeout interval DEFAULT '1 hour',
    run_after timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_add_index_in_background';
COMMENT ON FUNCTION viewmig.add_index_in_background IS 'Queues CREATE INDEX CONCURRENTLY (per partition for a partitioned table); returns the migration id';

CREATE FUNCTION viewmig.remove_index_in_background(
    table_name regclass,
    name name,
    max_attempts int DEFAULT 5,
    statement_timeout interval DEFAULT '1 hour',
    run_after timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_remove_index_in_background';
COMMENT ON FUNCTION viewmig.remove_index_in_background IS 'Queues DROP INDEX CONCURRENTLY; returns the migration id';

CREATE FUNCTION viewmig.validate_constraint_in_background(
    table_name regclass,
    constraint_name name,
    max_attempts int DEFAULT 5,
    statement_timeout interval DEFAULT '1 hour',
    run_after timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_validate_constraint_in_background';
COMMENT ON FUNCTION viewmig.validate_constraint_in_background IS 'Queues ALTER TABLE ... VALIDATE CONSTRAINT for a NOT VALID check or foreign key; returns the migration id';

CREATE FUNCTION viewmig.enqueue_schema_migration(
    name text,
    table_name regclass,
    definition text,
    max_attempts int DEFAULT 5,
    statement_timeout interval DEFAULT '1 hour',
    run_after timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_enqueue_schema_migration';
COMMENT ON FUNCTION viewmig.enqueue_schema_migration IS 'Queues any statements that must run outside a transaction block; returns the migration id';

CREATE FUNCTION viewmig.run_background_schema_migrations()
RETURNS bigint LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_run_background_schema_migrations';
COMMENT ON FUNCTION viewmig.run_background_schema_migrations IS 'Runs the next runnable schema migration in a background worker and waits; returns its id (NULL: none ran)';

CREATE FUNCTION viewmig.cancel_schema_migration(id bigint)
RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_cancel_schema_migration';
COMMENT ON FUNCTION viewmig.cancel_schema_migration IS 'Cancels a schema migration; a running one is stopped and its INVALID index dropped';

CREATE FUNCTION viewmig.retry_schema_migration(id bigint)
RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_retry_schema_migration';
COMMENT ON FUNCTION viewmig.retry_schema_migration IS 'Queues a failed schema migration again with a fresh count of attempts';

CREATE FUNCTION viewmig.configure_schema_migration(id bigint, max_attempts int DEFAULT NULL,
                                                   statement_timeout interval DEFAULT NULL)
RETURNS boolean LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_configure_schema_migration';
COMMENT ON FUNCTION viewmig.configure_schema_migration IS 'Changes max_attempts / statement_timeout; the next attempt uses them';

-- Internal: appends a schema migration event and sends NOTIFY viewmig_schema_migrations.
CREATE FUNCTION viewmig.record_schema_migration_event(migration bigint, event text, details jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m viewmig.background_schema_migrations;
    event_id bigint;
BEGIN
    SELECT * INTO m FROM viewmig.background_schema_migrations WHERE id = migration;
    INSERT INTO viewmig.schema_migration_events (migration_id, event, details) VALUES (migration, event, details)
    RETURNING id INTO event_id;
    PERFORM pg_notify('viewmig_schema_migrations', jsonb_build_object(
        'event_id', event_id, 'migration', migration, 'event', event, 'name', m.migration_name,
        'table', m.table_name::text, 'status', m.status, 'attempts', m.attempts, 'details', details)::text);
END;
$$;

-- Internal: a composite row's status from its children's.
CREATE FUNCTION viewmig.refresh_composite_schema_migration(parent bigint)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    next_status text;
BEGIN
    SELECT CASE WHEN bool_and(status = 'succeeded') THEN 'succeeded'
                WHEN bool_or(status = 'failed') THEN 'failed'
                WHEN bool_or(status = 'cancelled') THEN 'cancelled'
                WHEN bool_or(status = 'running') THEN 'running'
                WHEN bool_or(status = 'errored') THEN 'errored'
                ELSE 'enqueued' END
    INTO next_status
    FROM viewmig.background_schema_migrations WHERE parent_id = parent;
    UPDATE viewmig.background_schema_migrations p
    SET status = next_status,
        attempts = (SELECT coalesce(sum(attempts), 0) FROM viewmig.background_schema_migrations WHERE parent_id = parent),
        started_at = coalesce(p.started_at, CASE WHEN next_status <> 'enqueued' THEN now() END),
        finished_at = CASE WHEN next_status IN ('succeeded', 'failed', 'cancelled') THEN now() END
    WHERE p.id = parent AND p.status IS DISTINCT FROM next_status AND p.status <> 'cancelled';
END;
$$;

-- Internal (schedulers): delayed rows whose time has come are queued; running rows whose worker
-- is gone (a crash, a restart) count as an errored attempt.
CREATE FUNCTION viewmig.schema_migrations_housekeeping()
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    m viewmig.background_schema_migrations;
BEGIN
    UPDATE viewmig.background_schema_migrations SET status = 'enqueued'
    WHERE status = 'delayed' AND run_after <= now();
    -- A migration's worker holds the session advisory lock (30319, migration id) while it lives.
    FOR m IN SELECT * FROM viewmig.background_schema_migrations
             WHERE status = 'running' AND NOT composite
               AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.classid = 30319
                               AND l.objid = viewmig.background_schema_migrations.id::int4::oid AND l.objsubid = 2
                               AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
             FOR UPDATE SKIP LOCKED
    LOOP
        UPDATE viewmig.background_schema_migrations
        SET status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'errored' END,
            finished_at = now(), worker_pid = NULL, error_class = 'XX000',
            error_message = 'the migration''s worker exited unexpectedly (a crash or a server restart)'
        WHERE id = m.id;
        PERFORM viewmig.record_schema_migration_event(m.id, CASE WHEN m.attempts >= m.max_attempts THEN 'failed' ELSE 'errored' END,
                                                      jsonb_build_object('reason', 'worker exited', 'pid', m.worker_pid));
        IF m.parent_id IS NOT NULL THEN
            PERFORM viewmig.refresh_composite_schema_migration(m.parent_id);
        END IF;
    END LOOP;
END;
$$;

-- Internal (schedulers): the next migration that may run now — oldest first, none on a table
-- that has one running, children of a composite in id order — or NULL.
CREATE FUNCTION viewmig.next_runnable_schema_migration()
RETURNS bigint LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT m.id FROM viewmig.background_schema_migrations m
    WHERE NOT m.composite
      AND m.status IN ('enqueued', 'errored') AND m.run_after <= now()
      AND NOT EXISTS (SELECT 1 FROM viewmig.background_schema_migrations r
                      WHERE r.status = 'running' AND NOT r.composite AND r.table_name = m.table_name)
      AND (m.parent_id IS NULL OR NOT EXISTS (
               SELECT 1 FROM viewmig.background_schema_migrations s
               WHERE s.parent_id = m.parent_id AND s.id < m.id AND s.status <> 'succeeded'))
      AND (m.parent_id IS NULL OR (SELECT p.status FROM viewmig.background_schema_migrations p WHERE p.id = m.parent_id) <> 'cancelled')
    ORDER BY m.id
    LIMIT 1;
$$;

-- Internal (schedulers): true while viewmig.throttle_function (passed in, schema-qualified) says
-- so; the migration that would run next is then announced 'throttled', once while it waits.
CREATE FUNCTION viewmig.schema_migrations_throttled(throttle_function text)
RETURNS boolean LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    busy boolean;
    waiting bigint;
BEGIN
    IF coalesce(throttle_function, '') = '' THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT %s()', throttle_function::regproc) INTO busy;
    IF NOT coalesce(busy, false) THEN
        RETURN false;
    END IF;
    waiting := viewmig.next_runnable_schema_migration();
    IF waiting IS NOT NULL AND (SELECT e.event FROM viewmig.schema_migration_events e WHERE e.migration_id = waiting
                                ORDER BY e.id DESC LIMIT 1) IS DISTINCT FROM 'throttled' THEN
        PERFORM viewmig.record_schema_migration_event(waiting, 'throttled',
                                                      jsonb_build_object('function', throttle_function));
    END IF;
    RETURN true;
END;
$$;

REVOKE EXECUTE ON FUNCTION viewmig.record_schema_migration_event(bigint, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.schema_migrations_throttled(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.refresh_composite_schema_migration(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.schema_migrations_housekeeping() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION viewmig.next_runnable_schema_migration() FROM PUBLIC;

-- Schema migrations with the progress of running index builds (pg_stat_progress_create_index).
CREATE VIEW viewmig.background_schema_migrations_status AS
SELECT m.id,
       m.parent_id,
       m.kind,
       m.migration_name,
       m.table_name,
       m.status,
       m.attempts,
       m.max_attempts,
       m.started_at,
       m.finished_at,
       m.error_message,
       p.phase,
       p.blocks_done,
       p.blocks_total,
       p.tuples_done,
       p.tuples_total,
       CASE WHEN p.blocks_total > 0 THEN round(100.0 * p.blocks_done / p.blocks_total, 1)
            WHEN p.tuples_total > 0 THEN round(100.0 * p.tuples_done / p.tuples_total, 1) END AS percent,
       m.definition
FROM viewmig.background_schema_migrations m
LEFT JOIN pg_stat_progress_create_index p ON p.pid = m.worker_pid AND m.status = 'running'
ORDER BY m.id;
GRANT SELECT ON viewmig.background_schema_migrations_status TO PUBLIC;

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
       r.events_done + g.group_events + ig.group_events AS events_done,
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
       (SELECT count(*)::int FROM viewmig.workers w WHERE w.replay_id = r.id AND w.backend_type = 'viewmig worker') AS workers,
       r.increment_upper IS NOT NULL AS increment_unfinished
FROM viewmig.replays r
LEFT JOIN LATERAL (
    SELECT j.id, j.status FROM viewmig.jobs j WHERE j.replay_id = r.id ORDER BY j.id DESC LIMIT 1) job ON true
LEFT JOIN LATERAL (
    SELECT count(*)::int AS groups_total, count(*) FILTER (WHERE done)::int AS groups_done,
           coalesce(sum(events_done), 0)::bigint AS group_events,
           max(finished_at) AS last_group_at
    FROM viewmig.replay_groups WHERE replay_id = r.id) g ON true
LEFT JOIN LATERAL (
    SELECT coalesce(sum(events_done), 0)::bigint AS group_events
    FROM viewmig.increment_groups WHERE replay_id = r.id) ig ON true
LEFT JOIN LATERAL (
    SELECT round(g.group_events / nullif(extract(epoch FROM coalesce(g.last_group_at, r.updated_at)
                                                  - r.initial_started_at), 0))::bigint AS events_per_s) rate ON true
ORDER BY r.id DESC;
GRANT SELECT ON viewmig.status TO PUBLIC;

-- Live projection: created on the event table by register_projector(..., live => true).
CREATE FUNCTION viewmig.live_projection()
RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'viewmig_live_projection';
