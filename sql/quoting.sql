-- Another event store layout, with names that need quoting everywhere: a partitioned event
-- table in schema "Event Store" with its own column names, text aggregate ids, bigint sequence
-- numbers, an xid8 transaction column and extra columns; a view schema "View Schema"; replay and
-- archive schemas whose names contain quotes and spaces. The full lifecycle must work.
CREATE DATABASE viewmig_quoting;
\c viewmig_quoting
CREATE EXTENSION viewmig;
\set ECHO none
\set QUIET on
\i test/fixtures/compare.sql
\set QUIET off
\set ECHO all
SET viewmig.progress_interval = 0;

CREATE SCHEMA "Event Store";
CREATE TABLE "Event Store"."My Events" (
    "Stream Id"  text NOT NULL,
    extra_1      int DEFAULT 7,
    "Seq No"     bigint NOT NULL,
    "Kind"       varchar(50) NOT NULL,
    "Payload"    jsonb NOT NULL,
    "Tx"         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY ("Stream Id", "Seq No")
) PARTITION BY HASH ("Stream Id");
CREATE TABLE "Event Store"."My Events p0" PARTITION OF "Event Store"."My Events" FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE "Event Store"."My Events p1" PARTITION OF "Event Store"."My Events" FOR VALUES WITH (MODULUS 2, REMAINDER 1);

CREATE SCHEMA "View Schema";
CREATE TABLE "View Schema"."Account Balances" (
    "Account" text PRIMARY KEY,
    "Balance" numeric NOT NULL DEFAULT 0,
    "Moves"   int NOT NULL DEFAULT 0
);
CREATE TABLE "View Schema"."Ledger; Lines" (
    "Line"    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    "Account" text NOT NULL REFERENCES "View Schema"."Account Balances" ("Account"),
    "Amount"  numeric NOT NULL
);
CREATE INDEX "Ledger ""Account"" idx" ON "View Schema"."Ledger; Lines" ("Account");

CREATE FUNCTION "Event Store"."Ledger Projector"(e "Event Store"."My Events") RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF e."Kind" = 'Opened' THEN
        INSERT INTO "Account Balances" ("Account") VALUES (e."Stream Id");
    ELSIF e."Kind" = 'Moved' THEN
        INSERT INTO "Ledger; Lines" ("Account", "Amount") VALUES (e."Stream Id", (e."Payload"->>'amount')::numeric);
        UPDATE "Account Balances" SET "Balance" = "Balance" + (e."Payload"->>'amount')::numeric, "Moves" = "Moves" + 1
        WHERE "Account" = e."Stream Id";
    END IF;
END $$;

-- No index leads with the transaction column yet: a WARNING says what to create.
SELECT viewmig.set_event_store('"Event Store"."My Events"', aggregate_id_column => 'Stream Id',
    sequence_number_column => 'Seq No', event_type_column => 'Kind', xact_id_column => 'Tx');
CREATE INDEX ON "Event Store"."My Events" ("Tx");
SELECT viewmig.set_event_store('"Event Store"."My Events"', aggregate_id_column => 'Stream Id',
    sequence_number_column => 'Seq No', event_type_column => 'Kind', xact_id_column => 'Tx');
SELECT viewmig.register_projector('Ledger "main"', '"Event Store"."Ledger Projector"("Event Store"."My Events")',
    ARRAY['"View Schema"."Account Balances"', '"View Schema"."Ledger; Lines"']::regclass[],
    event_types => ARRAY['Opened', 'Moved']);

INSERT INTO "Event Store"."My Events" ("Stream Id", "Seq No", "Kind", "Payload")
SELECT 'acct ' || a, 1, 'Opened', '{}' FROM generate_series(1, 30) a
UNION ALL
SELECT 'acct ' || a, 1 + m, CASE WHEN m % 4 = 0 THEN 'Ignored' ELSE 'Moved' END, jsonb_build_object('amount', a * m)
FROM generate_series(1, 30) a, generate_series(1, 6) m;

SELECT viewmig.prepare_initial(replay_schema => 'Replay "R"; DROP', archive_schema => 'Archive A');
-- Two background workers share the groups.
SELECT viewmig.replay_initial(batch_size => 25, workers => 2);
SELECT groups_total > 1 AS several_groups, groups_done = groups_total AS done FROM viewmig.status;
INSERT INTO "Event Store"."My Events" ("Stream Id", "Seq No", "Kind", "Payload")
VALUES ('acct 1', 8, 'Moved', '{"amount": 1000}'), ('acct 31', 1, 'Opened', '{}'), ('acct 31', 2, 'Moved', '{"amount": 5}');
SELECT viewmig.replay_increment();
SELECT viewmig.prepare_completion();
SET client_min_messages = warning;
SELECT viewmig.complete();
RESET client_min_messages;
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('View Schema', 'Archive A', 'Replay "R"; DROP') AND c.relkind IN ('r', 'S', 'i') ORDER BY 1, 2;

SELECT rebuild_from_scratch('View Schema', 'expected', ARRAY['Account Balances', 'Ledger; Lines'],
                            '"Event Store"."Ledger Projector"', '"Event Store"."My Events"', '"Stream Id", "Seq No"');
SELECT * FROM compare_schemas('View Schema', 'expected', ARRAY['Account Balances', 'Ledger; Lines']);
SELECT "Account", "Balance", "Moves" FROM "View Schema"."Account Balances" WHERE "Account" IN ('acct 1', 'acct 31') ORDER BY 1;

\c contrib_regression
DROP DATABASE viewmig_quoting;
