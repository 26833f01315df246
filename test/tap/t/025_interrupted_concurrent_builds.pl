# Custom schema migrations (enqueue_schema_migration) holding CREATE INDEX CONCURRENTLY or
# REINDEX ... CONCURRENTLY, interrupted: viewmig recognises these statements (by parsing them)
# and, like add_index_in_background, drops the INVALID indexes an interrupted run left before it
# tries again, and when the migration is cancelled -- never a valid index.
#
# 1. CREATE INDEX CONCURRENTLY IF NOT EXISTS, interrupted by its statement_timeout while an old
#    snapshot holds it: the INVALID index is left; the retry drops it and builds a valid one (it
#    used to skip the INVALID index and record 'succeeded').
# 2. REINDEX INDEX CONCURRENTLY, interrupted the same way: <index>_ccnew is left INVALID; the
#    retry drops it and succeeds; no INVALID index is left.
# 3. REINDEX TABLE CONCURRENTLY, cancelled while it runs: no INVALID copy is left, the table's
#    indexes are valid.
# 4. Statements whose leftovers viewmig could not find are refused when queued.
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

my $invalid_sql = q{SELECT coalesce(string_agg(c.relname, ',' ORDER BY c.relname), 'none') FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'public.orders'::regclass AND NOT (i.indisvalid AND i.indisready)};

# Holds the build with an old snapshot until its statement_timeout interrupts it, then releases.
sub interrupt_once
{
	my ($id, $leftover, $what) = @_;
	my $holder = hold_old_snapshot($node);
	ok( $node->poll_query_until(
			'postgres', "SELECT count(*) > 0 FROM viewmig.schema_migration_events WHERE migration_id = $id AND event = 'errored'"),
		"$what: interrupted by its statement_timeout (errored)")
	  or diag(sm_events($node, $id));
	like($node->safe_psql('postgres', $invalid_sql), qr/\b\Q$leftover\E\b/, "$what: it left $leftover INVALID");
	$holder->quit;
	return;
}

# 1. CREATE INDEX CONCURRENTLY IF NOT EXISTS.
my $cic = $node->safe_psql('postgres',
	q{SELECT viewmig.enqueue_schema_migration('cic', 'public.orders',
	  'CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_b_custom ON public.orders (b)',
	  max_attempts => 20, statement_timeout => '2 s')});
interrupt_once($cic, 'orders_b_custom', 'CREATE INDEX CONCURRENTLY');
sm_is($node, $cic, 'succeeded', 'CREATE INDEX CONCURRENTLY: a retry succeeds');
is(index_state($node, 'orders_b_custom'), 'valid', 'CREATE INDEX CONCURRENTLY: its index is valid');
is($node->safe_psql('postgres', $invalid_sql), 'none', 'CREATE INDEX CONCURRENTLY: no INVALID index is left');
is( $node->safe_psql('postgres',
		"SELECT details->>'dropped_invalid_indexes' FROM viewmig.schema_migration_events WHERE migration_id = $cic AND event = 'completed'"),
	'1', 'CREATE INDEX CONCURRENTLY: the successful attempt dropped the INVALID index first');

# 2. REINDEX INDEX CONCURRENTLY.
$node->safe_psql('postgres', 'CREATE INDEX orders_c_idx ON public.orders (c)');
my $reindex = $node->safe_psql('postgres',
	q{SELECT viewmig.enqueue_schema_migration('reindex', 'public.orders', 'REINDEX INDEX CONCURRENTLY public.orders_c_idx',
	  max_attempts => 20, statement_timeout => '2 s')});
interrupt_once($reindex, 'orders_c_idx_ccnew', 'REINDEX INDEX CONCURRENTLY');
sm_is($node, $reindex, 'succeeded', 'REINDEX INDEX CONCURRENTLY: a retry succeeds');
is(index_state($node, 'orders_c_idx'), 'valid', 'REINDEX INDEX CONCURRENTLY: the index is valid');
is($node->safe_psql('postgres', $invalid_sql), 'none', 'REINDEX INDEX CONCURRENTLY: no INVALID _ccnew/_ccold is left');

# 3. REINDEX TABLE CONCURRENTLY, cancelled while held.
my $holder = hold_old_snapshot($node);
my $table = $node->safe_psql('postgres',
	q{SELECT viewmig.enqueue_schema_migration('reindex table', 'public.orders', 'REINDEX TABLE CONCURRENTLY public.orders')});
wait_for_sm_phase($node, $table, 'waiting for old snapshots', 'REINDEX TABLE CONCURRENTLY runs and waits');
my $worker = sm_field($node, $table, 'worker_pid');
isnt($node->safe_psql('postgres', $invalid_sql), 'none', 'REINDEX TABLE CONCURRENTLY: INVALID copies exist while it runs');
is($node->safe_psql('postgres', "SELECT viewmig.cancel_schema_migration($table)"), 't', 'cancel it');
ok($node->poll_query_until('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $worker", '0'), 'its worker exits');
is($node->safe_psql('postgres', $invalid_sql), 'none', 'REINDEX TABLE CONCURRENTLY cancelled: no INVALID index is left');
is(index_state($node, 'orders_b_custom') . ',' . index_state($node, 'orders_c_idx'), 'valid,valid', 'the indexes are valid');
is(sm_field($node, $table, 'status'), 'cancelled', 'the migration is cancelled');
$holder->quit;

# 4. Refused when queued.
my ($out, $err) = ('', '');
$node->psql('postgres', q{SELECT viewmig.enqueue_schema_migration('anon', 'public.orders', 'CREATE INDEX CONCURRENTLY ON public.orders (d)')},
	stdout => \$out, stderr => \$err);
like($err, qr/must name its index/, 'CREATE INDEX CONCURRENTLY without a name is refused');
($out, $err) = ('', '');
$node->psql('postgres', q{SELECT viewmig.enqueue_schema_migration('all', 'public.orders', 'REINDEX SCHEMA CONCURRENTLY public')},
	stdout => \$out, stderr => \$err);
like($err, qr/REINDEX SCHEMA, DATABASE or SYSTEM CONCURRENTLY can not be queued/, 'REINDEX SCHEMA CONCURRENTLY is refused');
like($err, qr/HINT:  Queue REINDEX TABLE CONCURRENTLY/, 'with a HINT');
# Recognised by the parser, not the text: a comment or a string saying CONCURRENTLY is no build.
($out, $err) = ('', '');
$node->psql('postgres', q{SELECT viewmig.enqueue_schema_migration('plain', 'public.orders',
	'/* CREATE INDEX CONCURRENTLY ON x */ SELECT ''REINDEX SCHEMA CONCURRENTLY public''', max_attempts => 1)},
	stdout => \$out, stderr => \$err);
like($out, qr/^\d+$/, 'text that merely mentions CONCURRENTLY is queued') or diag($err);
sm_is($node, $out, 'succeeded', 'and runs') if $out =~ /^\d+$/;

$node->stop;
done_testing();
