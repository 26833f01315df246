# Two workers whose batches all update one hot row. A batch holds that row's lock until it commits,
# so the other worker waits for it; the holder then commits at its next aggregate boundary instead
# of after its batch_size events ("committed early"), and once half of the batches end that way the
# second worker stops claiming groups. The tables must still equal a rebuild from scratch, and no
# event may be replayed twice or lost. Needs no launcher.
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

# Every event bumps one counter row, then takes 2 ms: the other worker is sure to find the row
# locked while the holder is still in its batch.
$node->safe_psql(
	'postgres', q{
CREATE TABLE public.hot_counter (id int PRIMARY KEY, events bigint NOT NULL);
INSERT INTO public.hot_counter VALUES (1, 0);
CREATE TABLE public.handler_calls (aggregate_id uuid NOT NULL, sequence_number int NOT NULL);
});
my $events = install_blog($node, authors => 100, posts_per_author => 3, handler => 'hot_blog', setup => q{
CREATE FUNCTION public.hot_blog(e public.event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public.hot_counter SET events = events + 1 WHERE id = 1;
    INSERT INTO public.handler_calls VALUES (e.aggregate_id, e.sequence_number);
    PERFORM pg_sleep(0.002);
    PERFORM public.blog_projector(e);
END $$;
});
cmp_ok($events, '>', 500, "the event store holds $events events");

$node->safe_psql('postgres', q{SELECT viewmig.prepare_initial(ARRAY['blog'])});
my $log_offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 200, workers => 2)');
is($ret, 0, 'replay_initial(workers => 2) succeeds');
is($out, $events, 'replay_initial(workers => 2) replays every event');

my ($early, $batches) = $err =~ /(\d+) of (\d+) batches were committed early: another worker waited for their rows/;
ok(defined $early && $early > 0, 'batches were committed early because the other worker waited')
  or diag("stderr: $err");
ok($node->log_contains(qr/worker 2 of 2 stops claiming groups: of \d+ batches, \d+ were rolled back and \d+ cut short/,
		$log_offset),
	'the second worker stops claiming groups once most batches are cut short');

tables_match_rebuild($node, 'replay_schema', 'replay tables equal a rebuild from scratch');
handler_calls_exact($node, 'every event handled exactly once (committed work)');
is($node->safe_psql('postgres', 'SELECT events FROM hot_counter'), $events, 'the hot row counted every event once');

$node->stop;
done_testing();
