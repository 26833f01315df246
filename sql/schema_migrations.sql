-- Background schema migrations, run by hand with viewmig.run_background_schema_migrations()
-- (which runs the next one in a background worker and waits: CREATE INDEX CONCURRENTLY can not
-- run inside the caller's transaction). The launcher runs them the same way by itself (TAP).
SET viewmig.retry_delay = 0;   -- retry at once, so this test needs no waiting
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id int PRIMARY KEY, customer text NOT NULL, total numeric NOT NULL, state text NOT NULL);
INSERT INTO shop.orders SELECT g, 'c' || (g % 50), g % 97, CASE WHEN g % 3 = 0 THEN 'open' ELSE 'done' END
FROM generate_series(1, 2000) g;

-- 1. An index built concurrently; the result is confirmed from the catalog.
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['customer'], "where" => $$state = 'open'$$) AS m1 \gset
SELECT id, kind, migration_name, table_name, status, definition FROM viewmig.background_schema_migrations;
SELECT viewmig.run_background_schema_migrations() = :m1 AS ran;
SELECT indexrelid::regclass, indisvalid FROM pg_index WHERE indrelid = 'shop.orders'::regclass ORDER BY 1;
SELECT viewmig.run_background_schema_migrations() IS NULL AS nothing_left;

-- 2. The same definition again: the existing migration. The same name, another definition: ERROR.
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['customer'], "where" => $$state = 'open'$$) = :m1 AS same;
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total'], name => 'orders_customer_idx');

-- 3. Bad input is refused before anything is queued: unknown columns, methods, tables; names
--    and WHERE clauses that try to smuggle in another statement.
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['nope']);
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total'], method => 'hashish');
SELECT viewmig.add_index_in_background('shop.nope', ARRAY['total']);
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total'], "where" => 'true); DROP TABLE shop.orders; SELECT (1');
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total'], "where" => 'no_such_column > 1');
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total'], name => 'x; DROP TABLE shop.orders');
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total'], max_attempts => 0);
SELECT viewmig.enqueue_schema_migration('nothing', 'shop.orders', '');
SELECT viewmig.remove_index_in_background('shop.orders', 'no_such_index');
SELECT viewmig.remove_index_in_background('shop.orders', 'orders_pkey');
SELECT viewmig.validate_constraint_in_background('shop.orders', 'no_such_constraint');
SELECT count(*) AS queued FROM viewmig.background_schema_migrations;
-- The odd name was quoted, not executed: it is queued under that exact name.
SELECT definition FROM viewmig.background_schema_migrations WHERE migration_name LIKE 'x;%';
SELECT viewmig.cancel_schema_migration(id) FROM viewmig.background_schema_migrations WHERE migration_name LIKE 'x;%';
-- A cancelled migration is queued anew by the same call (a failed one would be retried instead).
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total'], name => 'x; DROP TABLE shop.orders') AS again \gset
SELECT id = :again AS new_row, status FROM viewmig.background_schema_migrations WHERE migration_name LIKE 'x;%' ORDER BY id;
SELECT viewmig.cancel_schema_migration(:again);

-- 4. An INVALID index left by a failed build is dropped and built again; a valid index with
--    the same definition counts as done without work.
CREATE TABLE shop.codes (code text);
INSERT INTO shop.codes VALUES ('a'), ('a'), ('b');
CREATE UNIQUE INDEX CONCURRENTLY codes_code_key ON shop.codes (code);
SELECT indisvalid FROM pg_index WHERE indexrelid = 'shop.codes_code_key'::regclass;
DELETE FROM shop.codes WHERE ctid = (SELECT max(ctid) FROM shop.codes WHERE code = 'a');
SELECT viewmig.add_index_in_background('shop.codes', ARRAY['code'], name => 'codes_code_key', "unique" => true) AS m4 \gset
SELECT viewmig.run_background_schema_migrations() = :m4 AS ran;
SELECT indisvalid, indisunique FROM pg_index WHERE indexrelid = 'shop.codes_code_key'::regclass;
CREATE INDEX orders_total_idx ON shop.orders (total);
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['total']) AS m5 \gset
SELECT viewmig.run_background_schema_migrations() = :m5 AS ran;
SELECT migration_id, event, details - 'duration_s' AS details FROM viewmig.schema_migration_events
WHERE migration_id IN (:m4, :m5) AND event IN ('completed', 'run') ORDER BY id;
-- An index of that name with another definition is an error, saved on the row.
CREATE INDEX orders_state_idx ON shop.orders (customer);
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['state'], max_attempts => 1) AS m6 \gset
SELECT viewmig.run_background_schema_migrations() = :m6 AS ran;
SELECT status, attempts, error_class, error_message FROM viewmig.background_schema_migrations WHERE id = :m6;

-- 5. statement_timeout: errored, retried, failed after max_attempts, with the error saved; the
--    error handler sees each failure; retry_schema_migration starts over.
CREATE TABLE shop.failures (migration bigint, status text, error text);
CREATE FUNCTION shop.on_failure(m viewmig.background_schema_migrations) RETURNS void LANGUAGE sql
AS $$ INSERT INTO shop.failures VALUES (m.id, m.status, m.error_message) $$;
SET viewmig.error_handler = 'shop.on_failure';
SELECT viewmig.enqueue_schema_migration('slow', 'shop.orders', 'SELECT pg_sleep(5)',
                                        max_attempts => 2, statement_timeout => '50ms') AS m7 \gset
SELECT viewmig.run_background_schema_migrations() = :m7 AS ran;
SELECT status, attempts, error_class, error_message, backtrace IS NOT NULL AS has_backtrace
FROM viewmig.background_schema_migrations WHERE id = :m7;
SELECT viewmig.run_background_schema_migrations() = :m7 AS ran_again;
SELECT status, attempts FROM viewmig.background_schema_migrations WHERE id = :m7;
SELECT * FROM shop.failures ORDER BY 1, 2;
SELECT event FROM viewmig.schema_migration_events WHERE migration_id = :m7 ORDER BY id;
-- max_attempts and statement_timeout may change while it waits; the next attempt uses them.
SELECT viewmig.configure_schema_migration(:m7, max_attempts => 3, statement_timeout => '10s');
SELECT viewmig.retry_schema_migration(:m7);
SELECT status, attempts, max_attempts, statement_timeout FROM viewmig.background_schema_migrations WHERE id = :m7;
SELECT viewmig.cancel_schema_migration(:m7);
RESET viewmig.error_handler;
-- Legal transitions only: a cancelled migration can not be set running again.
UPDATE viewmig.background_schema_migrations SET status = 'running' WHERE id = :m7;

-- 6. Throttling: while the throttle function returns true, nothing starts (and the migration
--    stays enqueued); it is announced once.
CREATE TABLE shop.busy (busy boolean);
INSERT INTO shop.busy VALUES (true);
CREATE FUNCTION shop.is_busy() RETURNS boolean LANGUAGE sql AS 'SELECT busy FROM shop.busy';
SET viewmig.throttle_function = 'shop.is_busy';
SELECT viewmig.validate_constraint_in_background('shop.orders', 'orders_positive') AS m8 \gset
ALTER TABLE shop.orders ADD CONSTRAINT orders_positive CHECK (total >= 0) NOT VALID;
SELECT viewmig.validate_constraint_in_background('shop.orders', 'orders_positive') AS m8 \gset
SELECT viewmig.run_background_schema_migrations() IS NULL AS throttled;
SELECT viewmig.run_background_schema_migrations() IS NULL AS still_throttled;
SELECT status FROM viewmig.background_schema_migrations WHERE id = :m8;
UPDATE shop.busy SET busy = false;
SELECT viewmig.run_background_schema_migrations() = :m8 AS ran;
SELECT convalidated FROM pg_constraint WHERE conname = 'orders_positive';
SELECT event FROM viewmig.schema_migration_events WHERE migration_id = :m8 ORDER BY id;
RESET viewmig.throttle_function;

-- 7. A partitioned table: a composite migration; the parent index ON ONLY the parent, then
--    each partition's index built concurrently and attached, in that order.
CREATE TABLE shop.events (at date NOT NULL, kind text) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2025 PARTITION OF shop.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO shop.events SELECT date '2025-06-01' + g % 400, 'k' || g % 5 FROM generate_series(1, 1000) g;
SELECT viewmig.add_index_in_background('shop.events', ARRAY['kind']) AS m9 \gset
SELECT id - :m9 AS child, table_name, composite, status, definition FROM viewmig.background_schema_migrations
WHERE id = :m9 OR parent_id = :m9 ORDER BY id;
SELECT viewmig.run_background_schema_migrations() IS NOT NULL AS ran FROM generate_series(1, 3);
SELECT id - :m9 AS child, status, attempts FROM viewmig.background_schema_migrations WHERE id = :m9 OR parent_id = :m9 ORDER BY id;
SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('shop.events'::regclass, 'shop.events_2025'::regclass, 'shop.events_2026'::regclass) ORDER BY 1;

-- 8. Removing an index; a delayed migration waits for its time.
SELECT viewmig.remove_index_in_background('shop.orders', 'orders_total_idx') AS m10 \gset
SELECT viewmig.run_background_schema_migrations() = :m10 AS ran;
SELECT count(*) AS orders_total_idx FROM pg_class WHERE relname = 'orders_total_idx';
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['state'], name => 'orders_state_later',
                                       run_after => now() + interval '1 hour') AS m11 \gset
SELECT status FROM viewmig.background_schema_migrations WHERE id = :m11;
SELECT viewmig.run_background_schema_migrations() IS NULL AS not_yet;

-- 9. Rights: a role that does not own the table can not queue its index; nobody else may cancel.
CREATE ROLE viewmig_migrator;
GRANT USAGE ON SCHEMA shop TO viewmig_migrator;
SET ROLE viewmig_migrator;
SELECT viewmig.add_index_in_background('shop.orders', ARRAY['state']);
SELECT viewmig.cancel_schema_migration(:m11);
UPDATE viewmig.background_schema_migrations SET status = 'cancelled';
RESET ROLE;
SELECT viewmig.cancel_schema_migration(:m11);
SELECT viewmig.cancel_schema_migration(:m11);

SELECT id, migration_name, status FROM viewmig.background_schema_migrations_status ORDER BY id;
DROP OWNED BY viewmig_migrator;
DROP ROLE viewmig_migrator;
