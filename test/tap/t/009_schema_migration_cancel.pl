# cancel_schema_migration on a running index build: the build is held by an old snapshot (see
# ViewmigTAP::hold_old_snapshot), so CREATE INDEX CONCURRENTLY has left its INVALID index in the
# catalog and waits. The cancel marks the migration cancelled at once; at commit the worker's
# statement is cancelled, the worker drops the INVALID index and exits -- all while the old
# snapshot is still held -- and the launcher never runs the migration again.
# Then: a composite migration (partitioned table) cancelled mid-way leaves no INVALID index
# either, and a cancelled migration can be queued anew with the call that queued it, as
# retry_schema_migration's HINT says.
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
fill_table($node, 'public.orders', 100_000);

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN viewmig_schema_migrations');

# 1. A held build.
my $holder = hold_old_snapshot($node);
my $holder_pid = $holder->query_safe('SELECT pg_backend_pid()');
my $id = $node->safe_psql('postgres',
	q{SELECT viewmig.add_index_in_background('public.orders', ARRAY['b'], name => 'orders_b_cancel')});
wait_for_sm_phase($node, $id, 'waiting for old snapshots', 'the build runs and waits for the old snapshot');
my $worker = sm_field($node, $id, 'worker_pid');
like($worker, qr/^\d+$/, "its worker: pid $worker");
is(index_state($node, 'orders_b_cancel'), 'INVALID',
	'the interrupted build would leave an INVALID index: it is in the catalog now');

# 2. Cancel it while it runs.
is($node->safe_psql('postgres', "SELECT viewmig.cancel_schema_migration($id)"), 't', 'cancel_schema_migration returns true');
is(sm_field($node, $id, 'status'), 'cancelled', 'the migration is cancelled at once');
ok($node->poll_query_until('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $worker", '0'),
	'its worker leaves pg_stat_activity');
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'viewmig schema migration'}, '0'),
	'no schema migration worker is left');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 'orders_b_cancel'}, '0'),
	'no index of that name is left (the INVALID one was dropped)')
  or diag('index: ' . index_state($node, 'orders_b_cancel'));
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $holder_pid AND state = 'idle in transaction'"),
	'1', 'all that while the old snapshot was still held: the build was interrupted, not finished');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE indrelid = 'public.orders'::regclass AND NOT indisvalid}),
	'0', 'no INVALID index on the table');
is(sm_event_count($node, $id, 'cancelled'), '1', 'a cancelled event is recorded');
is($node->safe_psql('postgres', "SELECT details->>'by' FROM viewmig.schema_migration_events WHERE migration_id = $id AND event = 'cancelled'"),
	'postgres', 'naming who cancelled');
is(sm_event_count($node, $id, 'completed') + sm_event_count($node, $id, 'errored') + sm_event_count($node, $id, 'failed'),
	0, 'no completed, errored or failed event');
is(sm_field($node, $id, q{status || '|' || attempts || '|' || (finished_at IS NOT NULL)}), 'cancelled|1|true',
	'still cancelled after the worker recorded its end; one attempt; finished_at set');
my $heard = $listener->query_safe('SELECT 1');
ok((grep { ($_->{event} // '') eq 'cancelled' } sm_notifications_for($heard, $id)), 'NOTIFY carried the cancelled event')
  or diag("listener got:\n$heard");
$listener->quit;

# 3. Released: nothing runs the cancelled migration on. One queued after it on the same table
#    runs and ends, so the launcher went past the cancelled one.
$holder->quit;
my $later = $node->safe_psql('postgres', q{SELECT viewmig.add_index_in_background('public.orders', ARRAY['c'])});
sm_is($node, $later, 'succeeded', 'a migration queued later on the same table is built');
is(sm_field($node, $id, 'status'), 'cancelled', 'the cancelled migration stays cancelled');
is(sm_event_count($node, $id, 'started') + sm_event_count($node, $id, 'retried'), 1, 'and was never started again');
is(index_state($node, 'orders_b_cancel'), 'missing', 'its index was not built');

# Cancelling it again reports nothing to cancel; retry refuses a cancelled migration.
my ($out, $err) = ('', '');
$node->psql('postgres', "SELECT viewmig.cancel_schema_migration($id)", stdout => \$out, stderr => \$err);
is($out, 'f', 'a second cancel returns false');
like($err, qr/already ended \(cancelled\)/, 'with a NOTICE that it already ended');
($out, $err) = ('', '');
my $rc = $node->psql('postgres', "SELECT viewmig.retry_schema_migration($id)", stdout => \$out, stderr => \$err);
isnt($rc, 0, 'retry_schema_migration refuses a cancelled migration');
like($err, qr/a cancelled one is queued anew with the same call that queued it/, 'its HINT: queue it anew with the same call');

# 4. A composite migration (partitioned table), cancelled while its first partition's build is
#    held: the composite and its unfinished children are cancelled, and no INVALID index is left
#    on the parent or a partition.
$node->safe_psql(
	'postgres', q{
CREATE TABLE public.events (at int NOT NULL, kind text NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE public.events_1 PARTITION OF public.events FOR VALUES FROM (0) TO (50000);
CREATE TABLE public.events_2 PARTITION OF public.events FOR VALUES FROM (50000) TO (100000);
INSERT INTO public.events SELECT g, 'k' || g % 5 FROM generate_series(0, 99999) g;
});
$holder = hold_old_snapshot($node);
my $composite = $node->safe_psql('postgres', q{SELECT viewmig.add_index_in_background('public.events', ARRAY['kind'])});
my $part1 = $node->safe_psql('postgres',
	"SELECT id FROM viewmig.background_schema_migrations WHERE parent_id = $composite AND migration_name = 'events_1_kind_idx'");
wait_for_sm_phase($node, $part1, 'waiting for old snapshots', 'the first partition\'s build runs and waits');
my $part1_worker = sm_field($node, $part1, 'worker_pid');
is($node->safe_psql('postgres', "SELECT viewmig.cancel_schema_migration($composite)"), 't', 'cancel the composite migration');
ok($node->poll_query_until('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $part1_worker", '0'),
	'the partition\'s worker exits');
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM pg_class WHERE relname = 'events_1_kind_idx'}, '0'),
	'the partition\'s INVALID index is dropped');
is( $node->safe_psql(
		'postgres', "SELECT string_agg(status, ',' ORDER BY id) FROM viewmig.background_schema_migrations WHERE id = $composite OR parent_id = $composite"),
	'cancelled,succeeded,cancelled,cancelled',
	'composite cancelled; the ON ONLY step had succeeded; both partitions\' builds cancelled');
is( $node->safe_psql(
		'postgres', q{
SELECT coalesce(string_agg(i.indexrelid::regclass::text, ','), 'none') FROM pg_index i
WHERE i.indrelid IN ('public.events'::regclass, 'public.events_1'::regclass, 'public.events_2'::regclass)
  AND NOT i.indisvalid}),
	'none', 'no INVALID index is left on the partitioned table or its partitions');
$holder->quit;

# 5. The cancelled migration of section 1, queued again with the same call: it is queued anew
#    (retry_schema_migration's HINT) and built -- not the cancelled row returned with "nothing
#    added".
($out, $err) = ('', '');
$node->psql('postgres', q{SELECT viewmig.add_index_in_background('public.orders', ARRAY['b'], name => 'orders_b_cancel')},
	stdout => \$out, stderr => \$err);
note("re-queue: out '$out', stderr '$err'");
my $requeued_status = $out =~ /^\d+$/ ? sm_field($node, $out, 'status') : 'error';
isnt($requeued_status, 'cancelled', 'the same call queues the cancelled migration anew (it does not return the cancelled one)')
  or diag("it returned migration $out ($requeued_status): $err");
SKIP:
{
	skip 'not queued anew', 2 if $requeued_status eq 'cancelled' || $requeued_status eq 'error';
	sm_is($node, $out, 'succeeded', 'the queued-anew migration is built');
	is(index_state($node, 'orders_b_cancel'), 'valid', 'and its index is valid');
}

$node->stop;
done_testing();
