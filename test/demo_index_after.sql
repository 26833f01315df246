\set ON_ERROR_STOP on
\pset footer off
SELECT id, migration_name, status, attempts, definition FROM viewmig.background_schema_migrations_status;
SELECT migration_id, event, details FROM viewmig.schema_migration_events ORDER BY id;
