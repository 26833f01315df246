# kill -9 of a 'viewmig worker' mid-replay: the postmaster crash-restarts every backend, the
# launcher queues the interrupted job again, and it resumes from the committed checkpoints. The
# handler is held at a gate (see ViewmigTAP::install_gated_handler) once about half the events
# are in, so the kill lands mid-replay deterministically, with groups committed before it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ViewmigTAP;

# Cluster.pm turns restart_after_crash off; this test needs the crash restart.
my $node = viewmig_node('main', extra_conf => 'restart_after_crash = on');
$node->start;
my $events = install_blog($node, authors => 100, posts_per_author => 4, gated => 1);
require_job_queue($node);
wait_for_launcher($node);

my $holder = hold_gate_half_way($node, $events);

my $id = enqueue_job($node, 'replay',
	{ projectors => ['blog'], batch_size => 50, workers => 1, auto_complete => JSON::PP::false });

my $committed = wait_mid_replay($node, 'the crash');

my $pid = $node->safe_psql('postgres',
	q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'viewmig worker'});
my $log_offset = -s $node->logfile;
ok(kill('KILL', $pid), "kill -9 the viewmig worker (pid $pid)");

# The postmaster notices and reinitializes; our gate session dies with every other backend.
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
eval { $holder->quit };
ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the server is back after the crash');
$node->safe_psql('postgres', 'UPDATE replay_gate SET gate_after = NULL');
wait_for_launcher($node, 'the launcher runs again after the crash restart');

job_is($node, $id, 'succeeded', 'the interrupted job is resumed and succeeds');
cmp_ok(event_count($node, $id, 'started'), '>=', 2, 'the job started again after the crash');
cmp_ok(event_count($node, $id, 'retried'), '>=', 1, 'a retried event records the re-enqueue');
is($node->safe_psql('postgres', 'SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1'),
	'completion_prepared', 'auto_complete => false: the replay waits in completion_prepared');
is($node->safe_psql('postgres', 'SELECT count(*) FROM viewmig.replays'), '1', 'the same replay went on (no second replay)');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM handler_calls'), '>=', $committed,
	'the calls committed before the crash are kept');
handler_calls_exact($node, 'every event applied exactly once across the crash: resumed, not replayed again');
tables_match_rebuild($node, 'replay_schema', 'replay tables equal a rebuild from scratch (uninterrupted)');

$node->stop;
done_testing();
