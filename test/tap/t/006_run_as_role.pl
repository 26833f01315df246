# A job runs as the role that enqueued it, never with more rights: a role without rights on the
# view tables gets a permission error (and nothing is created); it can not cancel a superuser's
# job; a job whose role was dropped before it ran fails with a clear error.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ViewmigTAP;

my $node = viewmig_node('main');
$node->start;
install_blog($node, authors => 40, posts_per_author => 3, gated => 1);
require_job_queue($node);
wait_for_launcher($node);
# alice may read the events, nothing more: the view tables belong to the superuser.
$node->safe_psql(
	'postgres', q{
CREATE ROLE alice LOGIN;
GRANT SELECT ON event_records TO alice;
});

# 1. alice enqueues a replay of tables she has no rights on: it fails as alice would.
my $id = enqueue_job($node, 'replay', { projectors => ['blog'], auto_complete => JSON::PP::true },
	user => 'alice', max_attempts => 1);
is(job_field($node, $id, 'run_as::text'), 'alice', 'the job runs as alice, who enqueued it');
job_is($node, $id, 'failed', 'alice\'s replay job fails');
like(job_field($node, $id, 'last_error'), qr/must be owner|permission denied/i,
	'last_error is a permission error');
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM viewmig.replays) || '|'
              || (SELECT count(*) FROM pg_namespace WHERE nspname IN ('replay_schema', 'archive_schema'))}),
	'0|0', 'nothing was done with more rights than alice\'s: no replay, no schema');

# 2. A superuser's job, held mid-replay at the gate: alice can not cancel it.
$node->safe_psql('postgres', 'UPDATE replay_gate SET gate_after = 20');
my $holder = hold_gate($node);
my $su_job = enqueue_job($node, 'replay', { projectors => ['blog'], batch_size => 50, auto_complete => JSON::PP::true });
ok($node->poll_query_until('postgres', "SELECT status = 'running' FROM viewmig.jobs WHERE id = $su_job"),
	'the superuser\'s job runs');
my ($out, $err) = ('', '');
my $rc = $node->psql('postgres', "SELECT viewmig.cancel_job($su_job)",
	stdout => \$out, stderr => \$err, extra_params => [ '-U', 'alice' ]);
isnt($rc, 0, 'alice can not cancel the superuser\'s job');
like($err, qr/ERROR/, 'with an ERROR') and note("alice's error: $err");
is(job_field($node, $su_job, 'status'), 'running', 'the job is still running');
$holder->quit;
$node->safe_psql('postgres', 'UPDATE replay_gate SET gate_after = NULL');
job_is($node, $su_job, 'succeeded', 'the superuser\'s job goes on and succeeds');
is(job_field($node, $su_job, 'run_as::text'), 'postgres', 'it ran as postgres');
tables_match_rebuild($node, 'view_schema', 'the superuser\'s replay built the view tables');

# 3. A job whose role is dropped before it runs (same transaction: the launcher can not have
#    started it) fails with an error naming the missing role, not as some other role.
$node->safe_psql(
	'postgres', q{
CREATE ROLE bob LOGIN;
BEGIN;
SET ROLE bob;
SELECT viewmig.enqueue('abort', '{}', max_attempts => 1);
RESET ROLE;
DROP ROLE bob;
COMMIT;
});
my $orphan = $node->safe_psql('postgres', 'SELECT max(id) FROM viewmig.jobs');
job_is($node, $orphan, 'failed', 'the dropped role\'s job fails');
like(job_field($node, $orphan, 'last_error'), qr/role/i, 'last_error says its role is missing')
  and note('last_error: ' . job_field($node, $orphan, 'last_error'));
is(event_count($node, $orphan, 'succeeded'), '0', 'it never ran as anyone else');

$node->stop;
done_testing();
