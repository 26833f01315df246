# Two workers whose batches all update one hot row. A batch holds that row's lock until it commits,
# so the other worker waits for it; the holder then commits at its next aggregate boundary instead
# of after its batch_size events ("committed early"), and once half of the batches end that way the
# second worker stops claiming groups. The tables must still equal a rebuild from scratch, and no
# event may be replayed twice or lost. Run twice: with the hot row updated by the handler's own
# statement (the waiter waits for the batch's transaction id), and inside a PL/pgSQL exception
# block (it waits for a subtransaction's id). Needs no launcher.
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
CREATE TABLE public.hot_mode (in_subtransaction boolean NOT NULL);
INSERT INTO public.hot_mode VALUES (false);
CREATE TABLE public.handler_calls (aggregate_id uuid NOT NULL, sequence_number int NOT NULL);
});
my $events = install_blog($node, authors => 100, posts_per_author => 3, handler => 'hot_blog', setup => q{
CREATE FUNCTION public.hot_blog(e public.event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT in_subtransaction FROM public.hot_mode) THEN
        BEGIN
            UPDATE public.hot_counter SET events = events + 1 WHERE id = 1;
        EXCEPTION WHEN division_by_zero THEN
            RAISE;
        END;
    ELSE
        UPDATE public.hot_counter SET events = events + 1 WHERE id = 1;
    END IF;
    INSERT INTO public.handler_calls VALUES (e.aggregate_id, e.sequence_number);
    PERFORM pg_sleep(0.002);
    PERFORM public.blog_projector(e);
END $$;
});
cmp_ok($events, '>', 500, "the event store holds $events events");

for my $in_subtransaction ('false', 'true')
{
	my $mode = $in_subtransaction eq 'true' ? 'hot row in a subtransaction' : 'hot row in the batch';
	$node->safe_psql(
		'postgres', qq{
UPDATE hot_mode SET in_subtransaction = $in_subtransaction;
TRUNCATE handler_calls;
DELETE FROM hot_counter;
INSERT INTO hot_counter VALUES (1, 0);
SELECT viewmig.prepare_initial(ARRAY['blog']);
});
	my $log_offset = -s $node->logfile;
	my ($ret, $out, $err) =
	  $node->psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 200, workers => 2)');
	is($ret, 0,       "$mode: replay_initial(workers => 2) succeeds");
	is($out, $events, "$mode: replay_initial(workers => 2) replays every event");

	my ($early) = $err =~ /(\d+) of \d+ batches were committed early: another worker waited for their rows/;
	ok(defined $early && $early > 0, "$mode: batches were committed early because the other worker waited")
	  or diag("stderr: $err");
	ok( $node->log_contains(
			qr/worker 2 of 2 stops claiming groups: of \d+ batches, \d+ were rolled back and \d+ cut short/,
			$log_offset),
		"$mode: the second worker stops claiming groups once most batches are cut short");

	tables_match_rebuild($node, 'replay_schema', "$mode: replay tables equal a rebuild from scratch");
	handler_calls_exact($node, "$mode: every event handled exactly once (committed work)");
	is($node->safe_psql('postgres', 'SELECT events FROM hot_counter'),
		$events, "$mode: the hot row counted every event once");
	$node->safe_psql('postgres', 'SELECT viewmig.abort()');
}

$node->stop;
done_testing();
