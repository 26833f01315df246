-- Versioned view-schema migrations (Sequent 7's ViewSchema model) on the replay engine: table DDL
-- with %SUFFIX%, versions naming the projectors to rebuild, migrate_online building
-- <table>_<version> while the application runs, migrate_offline swapping by renaming.
SET viewmig.progress_interval = 0;
SELECT viewmig.set_event_store('event_records');

-- 1. DDL is checked when stored: %SUFFIX% on every unique name, only the named table, and it
--    must run. PostgreSQL's parser splits it, so semicolons in dollar quotes and comments are safe.
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE "Author Names" (id uuid PRIMARY KEY)');
SELECT viewmig.define_table_sql('Author Names',
    'CREATE TABLE "Author Names%SUFFIX%" (id uuid CONSTRAINT author_pk PRIMARY KEY)');
SELECT viewmig.define_table_sql('Author Names',
    'CREATE TABLE "Author Names%SUFFIX%" (id uuid PRIMARY KEY); CREATE INDEX names_idx ON "Author Names%SUFFIX%" (id)');
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE "Other%SUFFIX%" (id uuid PRIMARY KEY)');
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE public."Author Names%SUFFIX%" (id uuid)');
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE "Author Names%SUFFIX%" (id uuid); DROP TABLE event_records');
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE "Author Names%SUFFIX%" (id no_such_type)');
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE "Author Names%SUFFIX%" (id uuid)', view_schema => 'No Such Schema');
SELECT viewmig.define_table_sql('Author Names', $ddl$
    CREATE TABLE "Author Names%SUFFIX%" (
        id   uuid CONSTRAINT "Author Names_pk%SUFFIX%" PRIMARY KEY,
        name text NOT NULL  -- the author's current name; a ; in a comment is harmless
    );
    COMMENT ON TABLE "Author Names%SUFFIX%" IS $$one row per author; renamed authors keep their id$$;
$ddl$);
SELECT table_name, view_schema FROM viewmig.table_definitions;
-- The DDL runs later with the migrating role's rights: only the table's owner may store it (or,
-- for a new table, a role with CREATE on the view schema), never over another role's definition.
CREATE ROLE viewmig_ddl_stranger;
SET ROLE viewmig_ddl_stranger;
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE "Author Names%SUFFIX%" (id uuid)');
RESET ROLE;
GRANT CREATE ON SCHEMA view_schema TO viewmig_ddl_stranger;
SET ROLE viewmig_ddl_stranger;
SELECT viewmig.define_table_sql('Author Names', 'CREATE TABLE "Author Names%SUFFIX%" (id uuid)');
RESET ROLE;
REVOKE CREATE ON SCHEMA view_schema FROM viewmig_ddl_stranger;
DROP ROLE viewmig_ddl_stranger;

-- 2. Version 1: one projector. create_view_tables() creates the missing tables (no version is
--    defined yet, so none is recorded); the projector is registered on them.
CREATE FUNCTION shop_authors_v1(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type IN ('AuthorCreated', 'AuthorRenamed') THEN
        INSERT INTO "Author Names" (id, name) VALUES (e.aggregate_id, e.event_json->>'name')
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
    END IF;
END $$;
SELECT viewmig.create_view_tables();
SELECT viewmig.register_projector('shop_authors', 'shop_authors_v1(event_records)',
                                  ARRAY['view_schema."Author Names"']::regclass[]);
SELECT viewmig.current_view_schema_version();
SELECT viewmig.migrate_online();
SELECT viewmig.define_view_schema_version(1, ARRAY['no_such_projector']);
SELECT viewmig.define_view_schema_version(1, ARRAY['shop_authors']);
SELECT viewmig.migrate_online() > 0 AS replayed;
SELECT relname FROM pg_class WHERE relnamespace = 'view_schema'::regnamespace AND relkind = 'r'
  AND (relname LIKE 'Author Names%' OR relname LIKE 'post titles%') ORDER BY 1;
-- Other lifecycle steps refuse a view-schema migration.
SELECT viewmig.prepare_completion();
SELECT viewmig.migrate_offline() >= 0 AS migrated;
SELECT viewmig.current_view_schema_version();
SELECT relname FROM pg_class WHERE relnamespace = 'view_schema'::regnamespace AND relkind = 'r'
  AND (relname LIKE 'Author Names%' OR relname LIKE 'post titles%') ORDER BY 1;
SELECT rebuild_from_scratch('view_schema', 'expected_authors', ARRAY['Author Names'], 'shop_authors_v1') > 0 AS rebuilt;
SELECT * FROM compare_schemas('view_schema', 'expected_authors', ARRAY['Author Names']);
SELECT viewmig.migrate_online();

-- 3. Version 2 changes the authors table (a new column, a new handler version) and adds a
--    projector with a table of its own; events keep arriving between online and offline.
SELECT viewmig.define_table_sql('Author Names', $ddl$
    CREATE TABLE "Author Names%SUFFIX%" (
        id          uuid CONSTRAINT "Author Names_pk%SUFFIX%" PRIMARY KEY,
        name        text NOT NULL,
        name_length int NOT NULL
    );
    CREATE INDEX "Author Names_length%SUFFIX%" ON "Author Names%SUFFIX%" (name_length);
$ddl$);
SELECT viewmig.define_table_sql('post titles',
    'CREATE TABLE "post titles%SUFFIX%" (id uuid PRIMARY KEY, title text NOT NULL, published boolean NOT NULL DEFAULT false)');
CREATE FUNCTION shop_authors_v2(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type IN ('AuthorCreated', 'AuthorRenamed') THEN
        INSERT INTO "Author Names" (id, name, name_length) VALUES (e.aggregate_id, e.event_json->>'name', length(e.event_json->>'name'))
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, name_length = EXCLUDED.name_length;
    END IF;
END $$;
CREATE FUNCTION shop_posts(e event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    CASE e.event_type
    WHEN 'PostDrafted' THEN INSERT INTO "post titles" (id, title) VALUES (e.aggregate_id, e.event_json->>'title');
    WHEN 'PostPublished' THEN UPDATE "post titles" SET published = true WHERE id = e.aggregate_id;
    ELSE NULL;
    END CASE;
END $$;
SELECT viewmig.create_view_tables();
SELECT viewmig.register_projector('shop_authors', 'shop_authors_v2(event_records)',
                                  ARRAY['view_schema."Author Names"']::regclass[]);
SELECT viewmig.register_projector('shop_posts', 'shop_posts(event_records)', ARRAY['view_schema."post titles"']::regclass[]);
SELECT viewmig.define_view_schema_version(2, ARRAY['shop_authors', 'shop_posts']);
SELECT viewmig.migrate_online() > 0 AS replayed;
SELECT blog_events(500, 5, 2);
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES (md5('author500')::uuid, 2, 'AuthorRenamed', '{"name": "a much longer name"}');
SELECT viewmig.migrate_offline() > 0 AS migrated;
SELECT viewmig.current_view_schema_version();
SELECT relname FROM pg_class WHERE relnamespace = 'view_schema'::regnamespace AND relkind = 'r'
  AND (relname LIKE 'Author Names%' OR relname LIKE 'post titles%') ORDER BY 1;
SELECT rebuild_from_scratch('view_schema', 'expected_authors', ARRAY['Author Names'], 'shop_authors_v2') > 0 AS rebuilt;
SELECT * FROM compare_schemas('view_schema', 'expected_authors', ARRAY['Author Names']);
SELECT rebuild_from_scratch('view_schema', 'expected_posts', ARRAY['post titles'], 'shop_posts') > 0 AS rebuilt;
SELECT * FROM compare_schemas('view_schema', 'expected_posts', ARRAY['post titles']);
SELECT name, name_length FROM view_schema."Author Names" WHERE id = md5('author500')::uuid;
SELECT projector, version, status FROM viewmig.projector_versions WHERE projector LIKE 'shop%' ORDER BY 1, 2;

-- 4. Versions must not skip or go backwards.
SELECT viewmig.define_view_schema_version(4, ARRAY['shop_posts']);
SELECT viewmig.migrate_online();
DELETE FROM viewmig.view_schema_version_definitions WHERE version = 4;
BEGIN;
DELETE FROM viewmig.view_schema_version_definitions WHERE version = 2;
SELECT viewmig.migrate_online();
ROLLBACK;
SELECT viewmig.define_view_schema_version(2, ARRAY['shop_posts']);

-- 5. A failing migrate_offline changes nothing: here the name the current table would be kept
--    under is taken. rollback_migration() then drops the half-built tables.
SELECT viewmig.define_view_schema_version(3, ARRAY['shop_posts']);
SELECT viewmig.migrate_online() > 0 AS replayed;
CREATE TABLE view_schema."post titles_2" (blocker int);
SELECT viewmig.migrate_offline();
SELECT viewmig.current_view_schema_version();
SELECT relname FROM pg_class WHERE relnamespace = 'view_schema'::regnamespace AND relkind = 'r'
  AND (relname LIKE 'Author Names%' OR relname LIKE 'post titles%') ORDER BY 1;
-- Running migrate_online again starts over: it drops the leftovers of the unfinished attempt.
SELECT viewmig.migrate_online() > 0 AS replayed_again;
SELECT count(*) AS replays_of_version_3, count(*) FILTER (WHERE state = 'aborted') AS aborted
FROM viewmig.replays WHERE target_version = 3;
SELECT viewmig.rollback_migration();
SELECT viewmig.rollback_migration();
SELECT relname FROM pg_class WHERE relnamespace = 'view_schema'::regnamespace AND relkind = 'r'
  AND (relname LIKE 'Author Names%' OR relname LIKE 'post titles%') ORDER BY 1;
DROP TABLE view_schema."post titles_2";
DELETE FROM viewmig.view_schema_version_definitions WHERE version = 3;

-- 6. As jobs: the launcher can run both steps.
SELECT viewmig.enqueue('migrate_online', '{"batch_size": 100}') > 0 AS queued;
SELECT viewmig.cancel_job(max(id)) FROM viewmig.jobs;
DROP SCHEMA expected_authors, expected_posts CASCADE;
