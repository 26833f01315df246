-- Rights: a role that owns the view tables (and may create schemas) runs the whole lifecycle
-- without superuser; a role without rights on the view tables can not register, replay or swap
-- them; nobody but viewmig's functions can write viewmig's catalog.
SET viewmig.progress_interval = 0;
CREATE ROLE viewmig_app LOGIN;
CREATE ROLE viewmig_stranger LOGIN;
GRANT CREATE ON DATABASE contrib_regression TO viewmig_app;
GRANT SELECT, INSERT ON event_records TO viewmig_app, viewmig_stranger;
GRANT USAGE ON SEQUENCE event_records_id_seq TO viewmig_app, viewmig_stranger;
CREATE SCHEMA app_views AUTHORIZATION viewmig_app;
CREATE SCHEMA stranger_zone AUTHORIZATION viewmig_stranger;
GRANT USAGE, CREATE ON SCHEMA view_schema TO viewmig_app;
GRANT USAGE ON SCHEMA view_schema TO viewmig_stranger;

SET ROLE viewmig_app;
CREATE TABLE view_schema.counters (event_type text PRIMARY KEY, n bigint NOT NULL);
CREATE FUNCTION app_views.count_events(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counters AS c VALUES (e.event_type, 1) ON CONFLICT (event_type) DO UPDATE SET n = c.n + 1;
END $$;
SELECT viewmig.register_projector('counter', 'app_views.count_events(event_records)', ARRAY['view_schema.counters']::regclass[]);
RESET ROLE;

-- The blog projector's tables belong to another owner: the app role can replay only its own.
SET ROLE viewmig_app;
SELECT viewmig.prepare_initial(ARRAY['blog']);
SELECT viewmig.prepare_initial(ARRAY['counter'], replay_schema => 'app_replay', archive_schema => 'app_archive');
SELECT viewmig.replay_initial();
SELECT viewmig.replay_increment();
SELECT viewmig.prepare_completion();
SET client_min_messages = warning;
SELECT viewmig.complete();
RESET client_min_messages;
SELECT sum(n) = (SELECT count(*) FROM event_records) AS counted_every_event FROM view_schema.counters;
SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname LIKE 'app_%' ORDER BY 1;
SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'view_schema.counters'::regclass;
GRANT SELECT ON view_schema.counters TO viewmig_stranger;
-- viewmig's catalog is read-only to users: only viewmig's functions change it.
UPDATE viewmig.replays SET state = 'aborted';
DELETE FROM viewmig.owned_schemas;
RESET ROLE;

-- A stranger can neither register nor replay the app's tables.
SET ROLE viewmig_stranger;
CREATE FUNCTION stranger_zone.handler(e event_records) RETURNS void LANGUAGE sql AS '';
SELECT viewmig.register_projector('stolen', 'stranger_zone.handler(event_records)', ARRAY['view_schema.counters']::regclass[]);
SELECT viewmig.prepare_initial(ARRAY['counter'], replay_schema => 'app_replay', archive_schema => 'app_archive');
RESET ROLE;
SET ROLE viewmig_app;
SELECT viewmig.prepare_initial(ARRAY['counter'], replay_schema => 'app_replay', archive_schema => 'app_archive');
RESET ROLE;
SET ROLE viewmig_stranger;
SELECT viewmig.replay_initial();
SELECT viewmig.abort();
RESET ROLE;
SELECT state FROM viewmig.status LIMIT 1;
SET ROLE viewmig_app;
SELECT viewmig.abort();
RESET ROLE;

DROP TABLE view_schema.counters;
DROP SCHEMA app_views, app_archive, stranger_zone CASCADE;
REVOKE ALL ON SCHEMA view_schema FROM viewmig_app, viewmig_stranger;
REVOKE ALL ON event_records FROM viewmig_app, viewmig_stranger;
REVOKE ALL ON SEQUENCE event_records_id_seq FROM viewmig_app, viewmig_stranger;
REVOKE CREATE ON DATABASE contrib_regression FROM viewmig_app;
DELETE FROM viewmig.projector_versions WHERE projector = 'counter';
DROP ROLE viewmig_app, viewmig_stranger;
