# The backend waiting for a replay step's workers leaves the xmin horizon, as VACUUM does, so a
# replay of hours keeps no dead rows alive anywhere -- but only when its statement can read
# nothing more with its snapshot (issue 14, class 9). Otherwise a table the statement reads
# before and after the step could lose rows in between: a concurrent DELETE + VACUUM would remove
# row versions the statement's snapshot still sees.
#  1. `SELECT viewmig.replay_initial(...)`: while it waits, VACUUM's removable cutoff passes the
#     caller's xmin (it left the horizon).
#  2. `SELECT (SELECT count(*) FROM victim), ..., viewmig.replay_initial(...), (SELECT count(*)
#     FROM victim)`: the caller stays in the horizon, VACUUM keeps the deleted rows, and both
#     counts are equal.
#  3. `SELECT count(*) FROM probe, viewmig.replay_initial(...)`: stays in the horizon too.
# The handler is held at a gate (ViewmigTAP::install_gated_handler) so the step waits mid-replay.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ViewmigTAP;

my $PAUSE_LOCK = 777;
my $node = viewmig_node('main');
$node->start;
my $events = install_blog($node, authors => 40, posts_per_author => 3, gated => 1);
$node->safe_psql(
	'postgres', q{
CREATE TABLE public.victim (id int) WITH (autovacuum_enabled = false);
INSERT INTO public.victim SELECT generate_series(1, 1000);
CREATE TABLE public.probe (id int) WITH (autovacuum_enabled = false);
INSERT INTO public.probe VALUES (1);
});

# Closes the gate once half of a replay's events are handled (handler_calls keeps counting
# across replays), and holds it.
sub hold_gate_mid_replay
{
	$node->safe_psql('postgres',
		"UPDATE replay_gate SET gate_after = (SELECT count(*) FROM handler_calls) + " . int($events / 2));
	return hold_gate($node);
}

sub wait_at_gate
{
	my ($what) = @_;
	ok( $node->poll_query_until(
			'postgres',
			q{SELECT count(*) > 0 FROM pg_stat_activity
              WHERE backend_type = 'viewmig worker' AND wait_event_type = 'Lock' AND wait_event = 'advisory'}),
		"$what: the replay worker waits at the gate");
}

sub open_gate
{
	my ($holder) = @_;
	$node->safe_psql('postgres', 'UPDATE replay_gate SET gate_after = NULL');
	$holder->quit;
}

# VACUUM (VERBOSE) of `table`: its removable cutoff, and its tuple counts; with the caller's
# backend_xmin at that moment.
sub vacuum_now
{
	my ($table, $caller_pid) = @_;
	my $xmin = $node->safe_psql('postgres', "SELECT backend_xmin FROM pg_stat_activity WHERE pid = $caller_pid");
	my ($rc, $out, $err) = $node->psql('postgres', "VACUUM (VERBOSE) $table");
	my ($cutoff) = $err =~ /removable cutoff: (\d+)/;
	my ($removed, $remain, $dead) = $err =~ /tuples: (\d+) removed, (\d+) remain, (\d+) are dead but not yet removable/;
	die "no VACUUM VERBOSE report in: $err" unless defined $cutoff && defined $removed;
	return { cutoff => $cutoff, xmin => $xmin, removed => $removed, dead => $dead };
}

sub prepare_replay
{
	$node->safe_psql('postgres', 'SELECT viewmig.abort()');
	$node->safe_psql('postgres', 'SELECT viewmig.prepare_initial()');
}

# 1. The plain call leaves the horizon while it waits.
prepare_replay();
my $holder = hold_gate_mid_replay();
my $caller = $node->background_psql('postgres');
my $pid = $caller->query_safe('SELECT pg_backend_pid()');
$caller->query_until(qr/started/, "\\echo started\nSELECT viewmig.replay_initial(batch_size => 5, workers => 1);\n");
wait_at_gate('plain call');
my $v = vacuum_now('public.probe', $pid);
like($v->{xmin}, qr/^\d+$/, "the waiting caller still has its snapshot (backend_xmin $v->{xmin})");
cmp_ok($v->{cutoff}, '>', $v->{xmin}, "VACUUM's removable cutoff ($v->{cutoff}) passed the caller's xmin: it left the horizon");
open_gate($holder);
like($caller->query_until(qr/^\d+\n/m, ''), qr/^$events$/m, 'the plain call replays every event');

# 2. A statement that reads victim before and after the step: the rows deleted (and vacuumed)
#    meanwhile must still be there for the second count. The statement pauses after its first
#    count (advisory lock $PAUSE_LOCK) so that the DELETE commits after its snapshot and before
#    the workers start; the workers' own snapshots then do not hold the rows back.
prepare_replay();
$holder = hold_gate_mid_replay();
my $pauser = $node->background_psql('postgres');
$pauser->query_safe("SELECT pg_advisory_lock($PAUSE_LOCK)");
$caller->query_until(
	qr/started/, qq{\\echo started
SELECT (SELECT count(*) FROM public.victim) AS before,
       (SELECT pg_advisory_lock_shared($PAUSE_LOCK)) IS NOT NULL AS paused,
       viewmig.replay_initial(batch_size => 5, workers => 1) AS replayed,
       (SELECT count(*) FROM public.victim) AS after;
});
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event = 'advisory' FROM pg_stat_activity WHERE pid = $pid"),
	'the statement counted victim and pauses before the step');
$node->safe_psql('postgres', 'DELETE FROM public.victim');
$pauser->query_safe("SELECT pg_advisory_unlock($PAUSE_LOCK)");
wait_at_gate('count, step, count');
$v = vacuum_now('public.victim', $pid);
cmp_ok($v->{cutoff}, '<=', $v->{xmin}, "VACUUM's removable cutoff ($v->{cutoff}) stays at the caller's xmin ($v->{xmin})");
is($v->{removed}, 0, 'VACUUM removes none of the rows deleted after the statement began');
is($v->{dead}, 1000, 'they are dead but not yet removable');
open_gate($holder);
is($caller->query_until(qr/^\d+\|\w\|\d+\|\d+\n/m, ''), "1000|t|$events|1000\n",
	'both counts of the statement see the same 1000 rows: none vanished');
$pauser->quit;

# 3. The step in FROM next to a table: it stays in the horizon too.
prepare_replay();
$holder = hold_gate_mid_replay();
$caller->query_until(qr/started/, "\\echo started\nSELECT count(*) FROM public.probe, viewmig.replay_initial(batch_size => 5, workers => 1);\n");
wait_at_gate('table, step');
$v = vacuum_now('public.probe', $pid);
cmp_ok($v->{cutoff}, '<=', $v->{xmin}, "VACUUM's removable cutoff ($v->{cutoff}) stays at the caller's xmin ($v->{xmin})");
open_gate($holder);
like($caller->query_until(qr/^\d+\n/m, ''), qr/^1$/m, 'the statement ends normally');

$caller->quit;
$node->stop;
done_testing();
