# replay_increment(workers => 2): the events committed since the replay's bound, replayed by two
# workers in groups. A clean run equals a rebuild from scratch; an interrupted one (a handler
# ERROR in its last group) keeps its committed groups, makes a one-backend increment refuse to run
# (it would replay those events again), and a second replay_increment(workers => 2) finishes the
# same window: the tables equal a rebuild, no event applied twice. Needs no launcher.
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

# blog_projector, except that it fails on the aggregate named in fail_switch.
my $events = install_blog($node, authors => 50, posts_per_author => 3, handler => 'fragile_blog', setup => q{
CREATE TABLE public.fail_switch (aggregate_id uuid);
CREATE FUNCTION public.fragile_blog(e public.event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.aggregate_id = (SELECT f.aggregate_id FROM public.fail_switch f) THEN
        RAISE EXCEPTION 'fragile_blog fails on purpose at %', e.aggregate_id;
    END IF;
    PERFORM public.blog_projector(e);
END $$;
});
$node->safe_psql('postgres', q{SELECT viewmig.prepare_initial(ARRAY['blog'])});
is($node->safe_psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 100, workers => 2)'),
	$events, 'replay_initial(workers => 2) replays the history');

sub appended
{
	my ($first_author) = @_;
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM event_records');
	$node->safe_psql('postgres', "SELECT blog_events($first_author, 100, 3)");
	return $node->safe_psql('postgres', 'SELECT count(*) FROM event_records') - $before;
}

sub window_state
{
	return $node->safe_psql(
		'postgres', q{
SELECT (r.increment_upper IS NOT NULL) || '|' || (SELECT count(*) FROM viewmig.increment_groups g WHERE g.replay_id = r.id)
FROM viewmig.replays r ORDER BY id DESC LIMIT 1});
}

# 1. A clean parallel increment.
my $new = appended(1000);
is($node->safe_psql('postgres', 'SELECT viewmig.replay_increment(batch_size => 100, workers => 2)'),
	$new, "replay_increment(workers => 2) replays the $new new events");
is(window_state(), 'false|0', 'no window and no groups are left');
tables_match_rebuild($node, 'replay_schema', 'after a parallel increment: tables equal a rebuild from scratch');

# 2. Interrupted: the handler fails on the last aggregate of the next window.
$new = appended(2000);
my $done_before = $node->safe_psql('postgres', 'SELECT events_done FROM viewmig.replays ORDER BY id DESC LIMIT 1');
$node->safe_psql(
	'postgres', q{
INSERT INTO fail_switch
SELECT aggregate_id FROM event_records
WHERE xact_id >= (SELECT replayed_bound FROM viewmig.replays ORDER BY id DESC LIMIT 1)
ORDER BY aggregate_id DESC LIMIT 1});
my ($ret, $out, $err) =
  $node->psql('postgres', 'SELECT viewmig.replay_increment(batch_size => 50, workers => 2)');
isnt($ret, 0, 'the interrupted parallel increment fails');
like($err, qr/fragile_blog fails on purpose/, "the worker's ERROR is the caller's");
# Every committed batch counts, also those of a group cut short by the failure: batches commit
# early for a waiting worker, so a group that is not done may hold committed events too.
my $committed = $node->safe_psql('postgres',
	'SELECT coalesce(sum(events_done), 0) FROM viewmig.increment_groups');
cmp_ok($committed, '>', 0, "its committed batches stay committed ($committed events)");
like(window_state(), qr/^true\|\d+$/, 'its window and groups are kept');
is($node->safe_psql('postgres', 'SELECT increment_unfinished FROM viewmig.status LIMIT 1'),
	't', 'viewmig.status shows the unfinished increment');

($ret, $out, $err) = $node->psql('postgres', 'SELECT viewmig.replay_increment()');
isnt($ret, 0, 'a one-backend increment refuses to run meanwhile');
like($err, qr/has an unfinished parallel increment/, '... saying why');
($ret, $out, $err) = $node->psql('postgres', 'BEGIN; SELECT viewmig.replay_increment(workers => 2); COMMIT;');
like($err, qr/can not run inside a transaction block/, 'replay_increment(workers => 2) refuses a transaction block');

$node->safe_psql('postgres', 'DELETE FROM fail_switch');
my $rest = $node->safe_psql('postgres', 'SELECT viewmig.replay_increment(batch_size => 50, workers => 2)');
is($committed + $rest, $new, "the second call replays the rest of the window ($rest events)");
is(window_state(), 'false|0', 'the window is closed');
is($node->safe_psql('postgres', 'SELECT increment_unfinished FROM viewmig.status LIMIT 1'),
	'f', 'viewmig.status no longer shows it');
is($node->safe_psql('postgres', 'SELECT events_done FROM viewmig.replays ORDER BY id DESC LIMIT 1'),
	$done_before + $new, 'the replay counts every event of the window once');
tables_match_rebuild($node, 'replay_schema', 'after the resumed increment: tables equal a rebuild from scratch');

# 3. One-backend increments go on from the parallel bound.
$new = appended(3000);
is($node->safe_psql('postgres', 'SELECT viewmig.replay_increment()'),
	$new, "a one-backend increment then replays just the $new new events");
tables_match_rebuild($node, 'replay_schema', 'and the tables still equal a rebuild from scratch');

$node->stop;
done_testing();
