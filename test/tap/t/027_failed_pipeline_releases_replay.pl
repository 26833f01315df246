# A replay pipeline job that fails for good must not leave behind the replay it prepared: only
# one replay may be active, so it would block every other replay until someone aborted it. The
# job aborts the replay it prepared (its replay schema is dropped, the failed event names it),
# forgets it (retry_job starts over with prepare_initial), and another replay can be prepared at
# once. A value no step accepts (workers => -3) is refused when queued, so it never gets that far.
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
install_blog(
	$node,
	authors => 20,
	setup   => q{
CREATE TABLE public.fail_switch (on_ boolean NOT NULL);
INSERT INTO public.fail_switch VALUES (true);
CREATE FUNCTION public.failing_blog(e public.event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.event_type = 'PostTagged' AND (SELECT on_ FROM public.fail_switch) THEN
        RAISE EXCEPTION 'this handler fails on PostTagged' USING ERRCODE = 'data_exception';
    END IF;
    PERFORM public.blog_projector(e);
END $$;
},
	handler => 'failing_blog');
require_job_queue($node);
wait_for_launcher($node);

# 1. Refused when queued: nothing is prepared.
my ($out, $err) = ('', '');
$node->psql('postgres', q{SELECT viewmig.enqueue('replay', '{"workers": -3}')}, stdout => \$out, stderr => \$err);
like($err, qr/workers must be at least 1, not -3/, 'enqueue refuses workers => -3');
is($node->safe_psql('postgres', 'SELECT count(*) FROM viewmig.replays'), '0', 'no replay was prepared');

# 2. A pipeline whose handler fails (not worth retrying): the job fails, its replay is aborted.
my $job = enqueue_job($node, 'replay', { projectors => ['blog'] });
job_is($node, $job, 'failed', 'the pipeline fails for good');
my $replay = $node->safe_psql('postgres', 'SELECT max(id) FROM viewmig.replays');
is($node->safe_psql('postgres', "SELECT state FROM viewmig.replays WHERE id = $replay"), 'aborted',
	'the replay it prepared is aborted');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_namespace WHERE nspname = 'replay_schema'}), '0',
	'its replay schema is dropped');
is( $node->safe_psql('postgres',
		"SELECT details->>'aborted_replay' FROM viewmig.job_events WHERE job_id = $job AND event = 'failed'"),
	$replay, 'the failed event names the aborted replay');
is(job_field($node, $job, 'coalesce(replay_id::text, \'none\')'), 'none', 'the job forgot it');

# 3. Nothing blocks the next replay: prepare one by hand, and abort it.
like($node->safe_psql('postgres', 'SELECT viewmig.prepare_initial()'), qr/^\d+$/, 'another replay can be prepared');
is($node->safe_psql('postgres', 'SELECT viewmig.abort()'), 't', 'and aborted');

# 4. retry_job of the failed pipeline starts over (prepare_initial) and, the handler fixed, succeeds.
$node->safe_psql('postgres', 'UPDATE public.fail_switch SET on_ = false');
is($node->safe_psql('postgres', "SELECT viewmig.retry_job($job)"), 't', 'retry_job');
job_is($node, $job, 'succeeded', 'the retried pipeline succeeds from the start');
is( $node->safe_psql('postgres',
		"SELECT state FROM viewmig.replays WHERE id = (SELECT replay_id FROM viewmig.jobs WHERE id = $job)"),
	'completion_prepared', 'with a replay of its own, prepared anew');

$node->stop;
done_testing();
