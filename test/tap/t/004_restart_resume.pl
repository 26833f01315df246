# A server restart mid-replay (pg_ctl restart, fast mode): after the restart the launcher queues
# the interrupted job again and it resumes from the committed checkpoints. The handler is held at
# a gate (see ViewmigTAP::install_gated_handler) once about half the events are in, so the
# restart lands mid-replay deterministically, with groups committed before it.
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
my $events = install_blog($node, authors => 100, posts_per_author => 4, gated => 1);
require_job_queue($node);
wait_for_launcher($node);

my $holder = hold_gate_half_way($node, $events);

my $id = enqueue_job($node, 'replay',
	{ projectors => ['blog'], batch_size => 50, workers => 1, auto_complete => JSON::PP::false });

my $committed = wait_mid_replay($node, 'the restart');

# The restart ends every session, the gate's too.
$node->restart;
eval { $holder->quit };
$node->safe_psql('postgres', 'UPDATE replay_gate SET gate_after = NULL');
wait_for_launcher($node, 'the launcher runs again after the restart');

job_is($node, $id, 'succeeded', 'the interrupted job is resumed and succeeds');
cmp_ok(event_count($node, $id, 'started'), '>=', 2, 'the job started again after the restart');
is($node->safe_psql('postgres', 'SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1'),
	'completion_prepared', 'auto_complete => false: the replay waits in completion_prepared');
is($node->safe_psql('postgres', 'SELECT count(*) FROM viewmig.replays'), '1', 'the same replay went on (no second replay)');
cmp_ok($node->safe_psql('postgres', 'SELECT count(*) FROM handler_calls'), '>=', $committed,
	'the calls committed before the restart are kept');
handler_calls_exact($node, 'every event applied exactly once across the restart: resumed, not replayed again');
tables_match_rebuild($node, 'replay_schema', 'replay tables equal a rebuild from scratch (uninterrupted)');

$node->stop;
done_testing();
