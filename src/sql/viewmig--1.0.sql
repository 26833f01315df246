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
       r.last_error
FROM viewmig.replays r
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
