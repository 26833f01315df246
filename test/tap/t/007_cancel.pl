# cancel_job on a running replay job: the job is marked cancelled at once, its backend and its
# replay workers leave pg_stat_activity, a 'cancelled' event is recorded and it is not resumed by
# the launcher; retry_job queues it again and it finishes the replay from where it stopped.
# The handler is held at a gate (see ViewmigTAP::install_gated_handler) so the job is mid-replay.
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
	{ projectors => ['blog'], batch_size => 50, workers => 2, auto_complete => JSON::PP::true });
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity
          WHERE backend_type = 'viewmig worker' AND wait_event_type = 'Lock' AND wait_event = 'advisory'}),
	'a replay worker waits at the gate');
is(job_field($node, $id, 'status'), 'running', 'the job is running');
my $pids = viewmig_backends($node);
like($pids, qr/^\d+(,\d+)+$/, "the job's backend and its replay workers: $pids");

is($node->safe_psql('postgres', "SELECT viewmig.cancel_job($id)"), 't', 'cancel_job returns true');
is(job_field($node, $id, 'status'), 'cancelled', 'the job is cancelled');
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid IN ($pids)", '0'),
	'its backend and replay workers are gone');
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('viewmig job', 'viewmig worker')}, '0'),
	'no viewmig job or replay worker is left');
is(event_count($node, $id, 'cancelled'), '1', 'a cancelled event is recorded');
is(job_field($node, $id, 'finished_at IS NOT NULL'), 't', 'finished_at is set');

# Open the gate: nothing runs the cancelled job on. A job enqueued after it runs and ends (here
# prepare_completion, refused while the initial replay is unfinished: it leaves the replay as it
# is) while the cancelled one stays cancelled, so the launcher went past it.
$holder->quit;
my $later = enqueue_job($node, 'prepare_completion', {}, max_attempts => 1);
job_is($node, $later, 'failed', 'a job enqueued after it runs (and is refused: the initial replay is unfinished)');
is(job_field($node, $id, 'status'), 'cancelled', 'the cancelled job stays cancelled');
is(event_count($node, $id, 'started'), '1', 'and was not started again');
is($node->safe_psql('postgres', 'SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1'),
	'replaying_initial', 'the replay waits, partly done');

# retry_job: the same job resumes the replay and completes it.
$node->safe_psql('postgres', 'UPDATE replay_gate SET gate_after = NULL');
is($node->safe_psql('postgres', "SELECT viewmig.retry_job($id)"), 't', 'retry_job re-enqueues the cancelled job');
job_is($node, $id, 'succeeded', 'the retried job succeeds');
is($node->safe_psql('postgres', 'SELECT state FROM viewmig.status ORDER BY id DESC LIMIT 1'),
	'completed', 'the replay is completed');
handler_calls_exact($node, 'every event applied exactly once across the cancel: resumed, not replayed again');
tables_match_rebuild($node, 'view_schema', 'view tables equal a rebuild from scratch');

# Nothing left to cancel.
my ($out, $err) = ('', '');
my $rc = $node->psql('postgres', "SELECT viewmig.cancel_job($id)", stdout => \$out, stderr => \$err);
isnt($rc == 0 ? $out : 'error', 't', 'cancel_job of a finished job does not report a cancel');
is(job_field($node, $id, 'status'), 'succeeded', 'and the job stays succeeded');

$node->stop;
done_testing();
