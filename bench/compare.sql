-- The equality check (run by bench/run.sh after complete, and after each parallel replay_initial):
-- each table viewmig built in schema :built (view_schema, or replay_schema) against both
-- baselines' tables, with compare_schemas() from test/fixtures/compare.sql (all columns but
-- serial and identity ones, EXCEPT ALL both ways). One line per pair and table:
-- "baseline|table|rows in :built|rows only in :built|rows only in the baseline".
SELECT b.schema_name, c.table_name, c.row_count, c.only_in_a, c.only_in_b
FROM unnest(ARRAY['baseline_a', 'baseline_b']::name[]) AS b(schema_name)
CROSS JOIN LATERAL compare_schemas(:'built', b.schema_name,
                                   ARRAY['authors', 'posts', 'post_tags', 'author_stats']::name[]) AS c
ORDER BY 1, 2;
