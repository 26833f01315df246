-- The equality check (check_equal in bench/run.sh, after every replay and increment it checks):
-- each table built in schema :built (view_schema, replay_schema or set_based) against both
-- baselines' tables, with compare_schemas() from test/fixtures/compare.sql (all columns but
-- serial and identity ones, EXCEPT ALL both ways). One line per pair and table:
-- "baseline|table|rows in :built|rows only in :built|rows only in the baseline". check_equal calls
-- them equal when no row is on one side only (a table empty in :built then is empty in the
-- baseline too) and at least one table has rows.
SELECT b.schema_name, c.table_name, c.row_count, c.only_in_a, c.only_in_b
FROM unnest(ARRAY['baseline_a', 'baseline_b']::name[]) AS b(schema_name)
CROSS JOIN LATERAL compare_schemas(:'built', b.schema_name,
                                   ARRAY['authors', 'posts', 'post_tags', 'author_stats']::name[]) AS c
ORDER BY 1, 2;
