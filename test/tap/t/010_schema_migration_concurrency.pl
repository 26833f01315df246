# Never two schema migrations on one table at once, whoever schedules them, and a migration
# whose worker is killed mid-build is retried to success.
#
# 1. Two migrations (A1, A2) queued on table a and one (B1) on table b, in one transaction. The
#    launcher (viewmig.max_workers = 1: it runs one at a time) starts A1, whose build is held by
#    an old snapshot (ViewmigTAP::hold_old_snapshot). A second session calls
#    run_background_schema_migrations() meanwhile: it must run B1 (table b), never A2; a third
#    call finds nothing runnable (NULL). Once released, A2 runs after A1. All the while a watcher
#    samples that no table has two running migrations or two index builds in progress.
# 2. kill -9 of the schema migration worker mid-build (restart_after_crash = on): the migration
#    becomes errored (an attempt), is retried (viewmig.retry_delay = 0) and succeeds; the INVALID
#    index the killed build left is rebuilt valid.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ViewmigTAP;

# Cluster.pm turns restart_after_crash off; section 2 needs the crash restart.
my $node = viewmig_node('main',
	extra_conf => "viewmig.retry_delay = 0\nviewmig.max_workers = 1\nrestart_after_crash = on");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION viewmig');
require_schema_migrations($node);
wait_for_launcher($node);
fill_table($node, 'public.a', 100_000);
fill_table($node, 'public.b', 5_000);
my $violations_sql = one_per_table_violations();
my ($samples, $violations) = (0, []);

# Runs watch_until and accumulates its samples and violations.
sub watch
{
	my ($until, $label) = @_;
	my ($n, $v, $reached) = watch_until($node, $violations_sql, $until);
	$samples += $n;
	push @$violations, @$v;
	ok($reached, $label) or diag("not reached: $until");
	return;
}

# 1. Held: A1 by the launcher.
my $holder = hold_old_snapshot($node);
my ($a1, $a2, $b1) = split /\n/, $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT viewmig.add_index_in_background('public.a', ARRAY['a'], name => 'a_first');
SELECT viewmig.add_index_in_background('public.a', ARRAY['b'], name => 'a_second');
SELECT viewmig.add_index_in_background('public.b', ARRAY['b'], name => 'b_only');
COMMIT;
});
ok($a1 < $a2 && $a2 < $b1, "queued A1 = $a1, A2 = $a2 (table a), B1 = $b1 (table b)");
watch("SELECT status = 'running' AND phase = 'waiting for old snapshots' FROM viewmig.background_schema_migrations_status WHERE id = $a1",
	'the launcher runs A1; its build waits for the old snapshot');
is( $node->safe_psql(
		'postgres', "SELECT string_agg(status, ',' ORDER BY id) FROM viewmig.background_schema_migrations WHERE id IN ($a2, $b1)"),
	'enqueued,enqueued', 'A2 and B1 wait (the launcher runs one migration at a time)');

# A second session schedules by hand while A1 runs: it must take B1, not A2. Its own call waits
# for B1's build, which the old snapshot holds too.
my $manual = $node->background_psql('postgres');
$manual->query_safe('SET client_min_messages = warning');
$manual->query_until(qr/manual run started/,
	"\\echo manual run started\nSELECT viewmig.run_background_schema_migrations() AS ran;\n");
watch("SELECT status = 'running' AND phase = 'waiting for old snapshots' FROM viewmig.background_schema_migrations_status WHERE id = $b1",
	'the hand-run call runs B1 (the other table) while A1 runs');
is(sm_field($node, $a2, 'status'), 'enqueued', 'A2 (same table as the running A1) was not started');
isnt(sm_field($node, $b1, 'worker_pid'), sm_field($node, $a1, 'worker_pid'), 'B1 runs in a worker of its own');

# A third call: A2's table is busy, B1 runs: nothing may start.
is($node->safe_psql('postgres', 'SELECT viewmig.run_background_schema_migrations() IS NULL'), 't',
	'a third call while A1 and B1 run: nothing may start (NULL)');
is(sm_field($node, $a2, 'status'), 'enqueued', 'A2 still waits');

# Released: A1 and B1 finish, then A2 runs (by the launcher, or by nobody else).
$holder->quit;
watch("SELECT bool_and(status = 'succeeded') FROM viewmig.background_schema_migrations WHERE id IN ($a1, $a2, $b1)",
	'A1, B1 and then A2 all succeed');
my $ran = $manual->query_safe("\\echo manual run ended");
like($ran, qr/^$b1\n/, "the hand-run call returned B1 ($b1)") or diag("it printed: $ran");
$manual->quit;

cmp_ok($samples, '>', 0, "the watcher took $samples samples while the migrations ran");
is(join('; ', @$violations), '', 'at no sample did a table have two running migrations or two index builds');
is( $node->safe_psql(
		'postgres', qq{
SELECT (SELECT min(id) FROM viewmig.schema_migration_events WHERE migration_id = $a2 AND event = 'started')
     > (SELECT max(id) FROM viewmig.schema_migration_events WHERE migration_id = $a1 AND event = 'completed')}),
	't', 'A2 started only after A1 completed');
is(join(',', map { index_state($node, $_) } qw(a_first a_second b_only)), 'valid,valid,valid', 'all three indexes valid');
is(sm_field($node, $a2, 'attempts') + sm_field($node, $a1, 'attempts') + sm_field($node, $b1, 'attempts'),
	3, 'one attempt each: no run was refused or retried');

# 1b. A race without a holder: four migrations on each of three tables, scheduled at once by the
#     launcher and by three sessions calling run_background_schema_migrations() repeatedly.
fill_table($node, "public.r$_", 50_000) for 1 .. 3;
($samples, $violations) = (0, []);
my @runners;
for my $n (1 .. 3)
{
	my $s = $node->background_psql('postgres');
	$s->query_safe('SET client_min_messages = warning');
	push @runners, $s;
}
my $race = $node->safe_psql(
	'postgres', q{
BEGIN;
SELECT count(viewmig.add_index_in_background(('public.r' || t)::regclass, ARRAY[col], name => 'r' || t || '_' || col || '_' || i))
FROM generate_series(1, 3) t, unnest(ARRAY['a', 'b', 'c', 'id']) WITH ORDINALITY AS c(col, i);
SELECT min(id) FROM viewmig.background_schema_migrations WHERE table_name::text LIKE 'r_';
COMMIT;
});
my (undef, $race_from) = split /\n/, $race;
$_->query_until(qr/racing/, "\\echo racing\nSELECT viewmig.run_background_schema_migrations() FROM generate_series(1, 6);\n")
  for @runners;
watch("SELECT bool_and(status = 'succeeded') FROM viewmig.background_schema_migrations WHERE id >= $race_from",
	'the twelve racing migrations all succeed');
my $by_hand = 0;
for my $s (@runners)
{
	my ($out, $stderr_flag) = $s->query("\\echo done");
	$by_hand += () = $out =~ /^\d+$/mg;
	is($stderr_flag, 0, 'a racing session saw no WARNING or ERROR') or diag("session stderr: $s->{stderr}");
	$s->quit;
}
note("$by_hand of the 12 were run by the racing sessions, the rest by the launcher");
cmp_ok($samples, '>', 0, "the watcher took $samples samples during the race");
is(join('; ', @$violations), '', 'at no sample did a table have two running migrations or two index builds');
is($node->safe_psql('postgres', "SELECT sum(attempts) || '|' || count(*) FROM viewmig.background_schema_migrations WHERE id >= $race_from"),
	'12|12', 'one attempt each: no scheduler collided with another');
is( $node->safe_psql(
		'postgres', qq{
WITH span AS (
    SELECT m.id, m.table_name,
           (SELECT min(e.id) FROM viewmig.schema_migration_events e WHERE e.migration_id = m.id AND e.event = 'started') AS s,
           (SELECT max(e.id) FROM viewmig.schema_migration_events e WHERE e.migration_id = m.id AND e.event = 'completed') AS c
    FROM viewmig.background_schema_migrations m WHERE m.id >= $race_from)
SELECT count(*) FROM span x JOIN span y ON x.table_name = y.table_name AND x.id < y.id
WHERE x.s < y.c AND y.s < x.c}),
	'0', 'per table, no two migrations overlapped (started .. completed, by event order)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname ~ '^r\d_' AND i.indisvalid}),
	'12', 'twelve valid indexes');

# 2. kill -9 of the worker mid-build.
$holder = hold_old_snapshot($node);
my $k = $node->safe_psql('postgres', q{SELECT viewmig.add_index_in_background('public.a', ARRAY['c', 'a'], name => 'a_killed')});
wait_for_sm_phase($node, $k, 'waiting for old snapshots', 'the build to be killed runs, held');
my $pid = sm_field($node, $k, 'worker_pid');
is($node->safe_psql('postgres', "SELECT backend_type FROM pg_stat_activity WHERE pid = $pid"), 'viewmig schema migration',
	"its worker (pid $pid) is a viewmig schema migration backend");
is(index_state($node, 'a_killed'), 'INVALID', 'its INVALID index is in the catalog');
my $log_offset = -s $node->logfile;
ok(kill('KILL', $pid), "kill -9 the schema migration worker (pid $pid)");
$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
eval { $holder->quit };    # the holder died with every other backend
ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the server is back after the crash');
wait_for_launcher($node, 'the launcher runs again after the crash restart');

sm_is($node, $k, 'succeeded', 'the killed migration is retried and succeeds');
my $events = sm_events($node, $k);
like($events, qr/^enqueued,started,errored,retried,run,completed$/,
	'events: enqueued, started, errored (the killed attempt), retried, run, completed');
is( $node->safe_psql(
		'postgres', "SELECT details->>'reason' || '|' || (details->>'pid') FROM viewmig.schema_migration_events WHERE migration_id = $k AND event = 'errored'"),
	"worker exited|$pid", 'the errored event names the killed worker');
is(sm_field($node, $k, q{attempts || '|' || (error_message IS NULL) || '|' || (worker_pid IS NULL)}), '2|true|true',
	'two attempts; no error left on the row; no worker');
is($node->safe_psql('postgres', "SELECT details->>'dropped_invalid_index' FROM viewmig.schema_migration_events WHERE migration_id = $k AND event = 'completed'"),
	'true', 'the retry dropped the INVALID index the killed build left');
is(index_state($node, 'a_killed'), 'valid', 'and the index is valid');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_index WHERE indrelid IN ('public.a'::regclass, 'public.b'::regclass) AND NOT indisvalid}),
	'0', 'no INVALID index on either table');

# 3. Other ways a worker vanishes mid-build: pg_terminate_backend (it exits with FATAL, no crash
#    restart) and a fast server restart. Each time: errored, retried, succeeded, index valid.
my %vanish = (
	terminated => sub {
		my ($pid) = @_;
		is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"), 't', "pg_terminate_backend($pid)");
	},
	restarted => sub {
		$node->restart;
		pass('fast restart of the server');
	},
);
for my $how (sort keys %vanish)
{
	$holder = hold_old_snapshot($node);
	my $m = $node->safe_psql('postgres',
		"SELECT viewmig.add_index_in_background('public.b', ARRAY['c', 'b'], name => 'b_$how')");
	wait_for_sm_phase($node, $m, 'waiting for old snapshots', "$how: the build runs, held");
	my $wpid = sm_field($node, $m, 'worker_pid');
	$vanish{$how}->($wpid);
	eval { $holder->quit };
	ok($node->poll_query_until('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $wpid", '0'),
		"$how: the worker is gone");
	sm_is($node, $m, 'succeeded', "$how: the migration is retried and succeeds");
	like(sm_events($node, $m), qr/^enqueued,started,errored,retried,run,completed$/,
		"$how: events enqueued, started, errored, retried, run, completed");
	is(sm_field($node, $m, 'attempts'), '2', "$how: two attempts");
	is(index_state($node, "b_$how"), 'valid', "$how: the index is valid");
}

is($node->safe_psql('postgres', q{SELECT count(*) FROM viewmig.background_schema_migrations WHERE status <> 'succeeded'}),
	'0', 'every migration succeeded');

$node->stop;
done_testing();
