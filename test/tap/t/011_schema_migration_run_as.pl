# A background schema migration runs as the role that queued it, never with more rights:
#  * a non-superuser owning its table queues an index: the launcher's worker builds it, and the
#    migration's run_as is that role;
#  * a role without rights on a table can not queue a migration on it (ERROR, nothing queued),
#    whichever queuing function it uses;
#  * a custom migration whose statement needs rights the role lacks fails with the permission
#    error saved on the row (error_class 42501, error_message), and nothing is done;
#  * a custom migration's statements see current_user = that role, and can not switch back to
#    the worker's superuser (SET ROLE / RESET ROLE fail).
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

# alice owns schema app and its tables; public.secret (with an index and a NOT VALID check) is
# the superuser's, and alice has no privilege on it.
$node->safe_psql(
	'postgres', q{
CREATE ROLE alice LOGIN;
CREATE SCHEMA app AUTHORIZATION alice;
CREATE TABLE public.secret (x int NOT NULL, y int);
INSERT INTO public.secret SELECT g, g FROM generate_series(1, 1000) g;
CREATE INDEX secret_y_idx ON public.secret (y);
ALTER TABLE public.secret ADD CONSTRAINT secret_positive CHECK (x > 0) NOT VALID;
});
fill_table($node, 'app.items', 50_000, user => 'alice');
$node->safe_psql('postgres', 'CREATE TABLE app.audit (who text, session_role text)', extra_params => [ '-U', 'alice' ]);
my @as_alice = (extra_params => [ '-U', 'alice' ]);

# 1. alice's index on alice's table.
my $id = $node->safe_psql('postgres', q{SELECT viewmig.add_index_in_background('app.items', ARRAY['b'])}, @as_alice);
like($id, qr/^\d+$/, "alice queued migration $id");
is(sm_field($node, $id, 'run_as::text'), 'alice', 'its run_as is alice');
sm_is($node, $id, 'succeeded', 'the launcher\'s worker builds alice\'s index');
is(index_state($node, 'items_b_idx'), 'valid', 'the index is valid');
is($node->safe_psql('postgres', q{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'app.items_b_idx'::regclass}),
	'alice', 'owned by alice, with her table');
is( $node->safe_psql(
		'postgres', "SELECT status || '|' || migration_name FROM viewmig.background_schema_migrations_status WHERE id = $id", @as_alice),
	'succeeded|items_b_idx', 'alice follows her migration in background_schema_migrations_status');

# 2. alice can not queue anything on public.secret.
my %attempts = (
	add_index_in_background           => q{SELECT viewmig.add_index_in_background('public.secret', ARRAY['x'])},
	remove_index_in_background        => q{SELECT viewmig.remove_index_in_background('public.secret', 'secret_y_idx')},
	validate_constraint_in_background => q{SELECT viewmig.validate_constraint_in_background('public.secret', 'secret_positive')},
	enqueue_schema_migration          =>
	  q{SELECT viewmig.enqueue_schema_migration('occupy', 'public.secret', 'SELECT 1', max_attempts => 1)},
);
for my $fn (sort keys %attempts)
{
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', $attempts{$fn}, stdout => \$out, stderr => \$err, @as_alice);
	ok($rc != 0 && $err =~ /ERROR/, "$fn on a table alice has no rights on: ERROR")
	  or diag("it returned '$out' ($err)");
	note("$fn: $err");
}
is( $node->safe_psql(
		'postgres', q{SELECT count(*) FROM viewmig.background_schema_migrations WHERE table_name = 'public.secret'::regclass}),
	'0', 'nothing was queued on public.secret');
$node->poll_query_until('postgres',
	q{SELECT count(*) FROM viewmig.background_schema_migrations WHERE status NOT IN ('succeeded', 'failed', 'cancelled')}, '0');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE indrelid = 'public.secret'::regclass}), '1',
	'public.secret still has exactly its own index');

# 3. Custom migrations on alice's table whose statements need rights she lacks: they fail with
#    the permission error saved, and do nothing.
my %denied = (
	index_on_secret => 'CREATE INDEX CONCURRENTLY secret_x_by_alice ON public.secret (x)',
	read_secret     => 'INSERT INTO app.audit SELECT current_user, x::text FROM public.secret LIMIT 1',
	set_role        => 'SET ROLE postgres; INSERT INTO app.audit SELECT current_user, session_user',
	reset_role      => 'RESET ROLE; INSERT INTO app.audit SELECT current_user, session_user',
);
my %ids;
for my $name (sort keys %denied)
{
	(my $def = $denied{$name}) =~ s/'/''/g;
	$ids{$name} = $node->safe_psql('postgres',
		"SELECT viewmig.enqueue_schema_migration('$name', 'app.items', '$def', max_attempts => 1)", @as_alice);
}
for my $name (sort keys %denied)
{
	my $m = $ids{$name};
	sm_is($node, $m, 'failed', "custom migration '$name' fails (its only attempt)");
	is(sm_field($node, $m, q{run_as::text || '|' || error_class}), 'alice|42501',
		"'$name' ran as alice and failed with SQLSTATE 42501 (insufficient privilege)");
	like(sm_field($node, $m, 'error_message'), qr/permission denied|must be owner|cannot set parameter "role"/,
		"'$name': the permission error is saved in error_message")
	  and note("$name: " . sm_field($node, $m, 'error_message'));
	like(sm_events($node, $m), qr/^enqueued,started,run,failed$/, "'$name' events: enqueued, started, run, failed");
}
is(index_state($node, 'secret_x_by_alice'), 'missing', 'no index was created on public.secret');
is($node->safe_psql('postgres', 'SELECT count(*) FROM app.audit'), '0', 'no statement after a refused one ran');

# 4. What alice may do runs as alice (the worker connects as the bootstrap superuser: that is the
#    session role, never the current one).
my $who = $node->safe_psql('postgres',
	q{SELECT viewmig.enqueue_schema_migration('who', 'app.items', 'INSERT INTO app.audit SELECT current_user, session_user')},
	@as_alice);
sm_is($node, $who, 'succeeded', 'a custom migration within alice\'s rights succeeds');
is($node->safe_psql('postgres', 'SELECT who FROM app.audit'), 'alice', 'its statement ran with current_user = alice');

# alice can not cancel or retry a superuser's migration.
my $su = $node->safe_psql('postgres',
	q{SELECT viewmig.add_index_in_background('app.items', ARRAY['c'], run_after => now() + interval '1 hour')});
is(sm_field($node, $su, q{status || '|' || run_as::text}), 'delayed|postgres', 'a delayed migration of the superuser on alice\'s table');
for my $call ("viewmig.cancel_schema_migration($su)", "viewmig.configure_schema_migration($su, max_attempts => 9)")
{
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres', "SELECT $call", stdout => \$out, stderr => \$err, @as_alice);
	ok($rc != 0 && $err =~ /permission denied/, "alice: $call is refused") or diag("got '$out' ($err)");
}
is(sm_field($node, $su, q{status || '|' || max_attempts}), 'delayed|5', 'the superuser\'s migration is untouched');

$node->stop;
done_testing();
