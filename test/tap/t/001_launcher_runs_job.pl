# The launcher runs queued jobs: a whole 'replay' pipeline with auto_complete ends 'succeeded'
# with the view tables swapped in and equal to a rebuild from scratch, recording (and NOTIFYing)
# its events; a job that can only fail ends 'failed' after max_attempts with last_error set, and
# retry_job queues it again.
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
my $events = install_blog($node, authors => 60, posts_per_author => 3);
require_job_queue($node);
wait_for_launcher($node);

# A listener on channel viewmig sees the job's events as NOTIFY payloads.
my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN viewmig');

# 1. The whole replay, completed by the job.
my $id = enqueue_job($node, 'replay',
	{ projectors => ['blog'], batch_size => 50, workers => 2, auto_complete => JSON::PP::true });
is(job_field($node, $id, q{kind || '|' || run_as::text || '|' || max_attempts}),
	'replay|postgres|5', 'the job records its kind, the enqueuing role and the default max_attempts');
job_is($node, $id, 'succeeded', 'the replay job succeeds');
is( job_field(
		$node, $id,
		q{attempts = 1 AND started_at IS NOT NULL AND finished_at >= started_at AND enqueued_at <= started_at}),
	't', 'one attempt; enqueued_at <= started_at <= finished_at');
like(job_events($node, $id), qr/^enqueued,(?:.*,)?started,(?:.*,)?succeeded$/,
	'job_events: enqueued, started, ..., succeeded');
is(event_count($node, $id, 'failed') + event_count($node, $id, 'retried'), 0, 'no failure, no retry');

is( $node->safe_psql(
		'postgres', q{SELECT state || '|' || (events_done = (SELECT count(*) FROM event_records))
                     FROM viewmig.status ORDER BY id DESC LIMIT 1}),
	'completed|true', 'the replay is completed and counted every event');
is($node->safe_psql('postgres', q{SELECT status FROM viewmig.projector_versions WHERE projector = 'blog'}),
	'active', 'the replayed projector version is active');
tables_match_rebuild($node, 'view_schema', 'the swapped-in view tables equal a rebuild from scratch');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'replay_schema'}),
	'0', 'the replay schema is gone after complete');

my $heard = $listener->query_safe('SELECT 1');
my %heard = map { ($_->{event} // '') => 1 } notifications_for($heard, $id);
ok($heard{started} && $heard{succeeded}, 'NOTIFY viewmig carried the job\'s started and succeeded events')
  or diag("listener got:\n$heard");

# 2. A job that can not succeed: complete() with no active replay.
my $bad = enqueue_job($node, 'complete', {}, max_attempts => 1);
job_is($node, $bad, 'failed', 'complete() with no active replay: the job fails');
is(job_field($node, $bad, 'attempts'), '1', 'after its one allowed attempt');
like(job_field($node, $bad, 'last_error'), qr/complete/, 'last_error holds the step\'s ERROR');
like(job_events($node, $bad), qr/^enqueued,(?:.*,)?started,(?:.*,)?failed$/, 'job_events: enqueued, started, ..., failed');
$heard = $listener->query_safe('SELECT 1');
ok((grep { ($_->{event} // '') eq 'failed' } notifications_for($heard, $bad)), 'NOTIFY viewmig carried the failure')
  or diag("listener got:\n$heard");

# retry_job queues it again: it runs once more (and fails again: still no replay).
is($node->safe_psql('postgres', "SELECT viewmig.retry_job($bad)"), 't', 'retry_job re-enqueues the failed job');
is(event_count($node, $bad, 'retried'), '1', 'a retried event is recorded');
job_is($node, $bad, 'failed', 'the retried job runs again and fails again');
is(event_count($node, $bad, 'started') . '|' . event_count($node, $bad, 'failed'), '2|2', 'it started and failed twice');

# A succeeded job is not retried.
my ($rc, $out, $err) = (0, '', '');
$rc = $node->psql('postgres', "SELECT viewmig.retry_job($id)", stdout => \$out, stderr => \$err);
isnt($rc == 0 ? $out : 'error', 't', 'retry_job does not re-enqueue a succeeded job');
is(job_field($node, $id, 'status'), 'succeeded', 'the succeeded job stays succeeded');

# Unknown kinds are refused at enqueue time.
$rc = $node->psql('postgres', q{SELECT viewmig.enqueue('no_such_kind')}, stderr => \$err);
isnt($rc, 0, 'enqueue refuses an unknown kind');

$listener->quit;
$node->stop;
done_testing();
