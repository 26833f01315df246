# The launcher runs background schema migrations by itself: add_index_in_background on a table
# of 200 000 rows is built by a 'viewmig schema migration' worker the launcher starts (nobody
# calls run_background_schema_migrations()), ends succeeded with a valid index, records (and
# NOTIFYs) its events, and background_schema_migrations_status shows the build's progress while
# it runs. The build is held by an old snapshot (see ViewmigTAP::hold_old_snapshot) so the
# running state is observed deterministically.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ViewmigTAP;

my $node = viewmig_node('main', extra_conf => 'viewmig.retry_delay = 0');
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION viewmig');
require_schema_migrations($node);
wait_for_launcher($node);
fill_table($node, 'public.orders', 200_000);

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN viewmig_schema_migrations');

# 1. Held: the launcher starts the build; it waits for the old snapshot with its progress shown.
my $holder = hold_old_snapshot($node);
my $id = $node->safe_psql('postgres', q{SELECT viewmig.add_index_in_background('public.orders', ARRAY['b', 'a'])});
like($id, qr/^\d+$/, "add_index_in_background queued migration $id");
is(sm_field($node, $id, q{kind || '|' || migration_name || '|' || run_as::text}),
	'add_index|orders_b_a_idx|postgres', 'kind, default index name (PostgreSQL\'s) and run_as');

wait_for_sm_phase($node, $id, 'waiting for old snapshots',
	'the status view shows the migration running, its build waiting for the old snapshot');
my $progress = $node->safe_psql(
	'postgres', qq{
SELECT (blocks_total > 0) || '|' || (blocks_done > 0) || '|' || (percent BETWEEN 0 AND 100) || '|'
       || (tuples_total IS NOT NULL) || '|' || attempts
FROM viewmig.background_schema_migrations_status WHERE id = $id});
is($progress, 'true|true|true|true|1',
	'progress columns while it runs: blocks_total, blocks_done, percent, tuples_total (attempt 1)');

# Who builds it: a 'viewmig schema migration' worker, the one the row names; no client backend
# runs run_background_schema_migrations().
my $worker = sm_field($node, $id, 'worker_pid');
like($worker, qr/^\d+$/, "the row names its worker (pid $worker)");
is( $node->safe_psql(
		'postgres', "SELECT backend_type || '|' || (query LIKE 'CREATE INDEX CONCURRENTLY%') FROM pg_stat_activity WHERE pid = $worker"),
	'viewmig schema migration|true', 'the worker is a viewmig schema migration backend running the CREATE INDEX CONCURRENTLY');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%run_background_schema_migrations%' AND pid <> pg_backend_pid()}),
	'0', 'nobody called run_background_schema_migrations()');
is($node->safe_psql('postgres', "SELECT (details->>'pid')::int FROM viewmig.schema_migration_events WHERE migration_id = $id AND event = 'started'"),
	$worker, 'the started event names the same worker');
is(index_state($node, 'orders_b_a_idx'), 'INVALID', 'meanwhile the index exists, not yet valid');

# 2. Released: the build completes.
$holder->quit;
sm_is($node, $id, 'succeeded', 'the launcher\'s worker builds the index: succeeded');
is(index_state($node, 'orders_b_a_idx'), 'valid', 'the index is valid and ready');
is( $node->safe_psql(
		'postgres', q{SELECT pg_get_indexdef('public.orders_b_a_idx'::regclass)}),
	'CREATE INDEX orders_b_a_idx ON public.orders USING btree (b, a)', 'with the queued definition');
is(sm_field($node, $id, q{attempts || '|' || (finished_at >= started_at) || '|' || (worker_pid IS NULL) || '|' || (error_message IS NULL)}),
	'1|true|true|true', 'one attempt, finished_at >= started_at, no worker, no error');
like(sm_events($node, $id), qr/^enqueued,started,run,completed$/, 'events: enqueued, started, run, completed');
is($node->safe_psql('postgres', "SELECT details->>'ok' FROM viewmig.schema_migration_events WHERE migration_id = $id AND event = 'run'"),
	'true', 'the run event says ok');
is($node->safe_psql('postgres', "SELECT phase IS NULL FROM viewmig.background_schema_migrations_status WHERE id = $id"),
	't', 'no progress shown once it ended');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'viewmig schema migration'}, '0'),
	'the worker exits');

my $heard = $listener->query_safe('SELECT 1');
my @events = map { $_->{event} // '' } sm_notifications_for($heard, $id);
is(join(',', @events), 'enqueued,started,run,completed', 'NOTIFY viewmig_schema_migrations carried each event, in order')
  or diag("listener got:\n$heard");
$listener->quit;

# 3. Without a holder: queued, built, done; the launcher wakes at commit (no naptime is waited
#    for as an assertion: only the end state is checked).
my $second = $node->safe_psql('postgres',
	q{SELECT viewmig.add_index_in_background('public.orders', ARRAY['c'], "where" => 'c > 3', "unique" => false)});
sm_is($node, $second, 'succeeded', 'a second migration on the same table is built by the launcher too');
is($node->safe_psql('postgres', q{SELECT pg_get_indexdef('public.orders_c_idx'::regclass)}),
	'CREATE INDEX orders_c_idx ON public.orders USING btree (c) WHERE (c > 3)', 'partial index as queued');
is(index_state($node, 'orders_c_idx'), 'valid', 'and valid');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE indrelid = 'public.orders'::regclass AND NOT indisvalid}),
	'0', 'no INVALID index on the table');

$node->stop;
done_testing();
