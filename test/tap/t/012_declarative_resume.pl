# kill -9 of a 'viewmig worker' in the middle of a declarative projector's initial replay: the
# postmaster crash-restarts every backend and the resumed replay (a queued job the launcher runs
# again; or replay_initial called again) must end with the same tables as an uninterrupted
# replay. The C++ engine calls no handler, so the kill is made to land mid-replay by a BEFORE
# INSERT row trigger on one replay table (COPY fires it): once a given share of that table's rows
# is in, every row takes advisory lock $GATE_LOCK shared, so the engine's COPY blocks while the
# test holds that lock (hold_gate), with the groups before it committed.
#
# Projector 'decl' has the rules of sql/declarative_projectors.sql: d_posts is "partitioned"
# (keyed by aggregate_id), d_post_tags "append-only" (serial key; both get their primary key after
# the load), d_authors and d_tag_counts "shared" (keyed by a JSON field, updated by events of many
# aggregates). A fresh replay keeps shared rows in memory and writes them once at the end, so
# after a crash the resumed replay must rebuild them from the committed groups' events, write
# them and go on writing them with every batch ("eager"); after a crash in eager mode it reads
# them back from the tables. Projector 'decl3' has no shared table, so two workers really load it
# in parallel. Hand-written PL/pgSQL handlers (decl_reference, decl3_reference), run over every
# event by rebuild_from_scratch, are the references.
#
# 1. 'decl', one worker, a 'replay_initial' job: crash while shared rows are still only in memory;
#    the launcher resumes the job.
# 2. 'decl', workers => 2 asked (it runs in one worker: a LOG line says so), replay_initial() by
#    hand: a crash in that mode, then a second crash once the resumed replay writes shared rows
#    with every batch; called again after each.
# 3. 'decl3', two workers both at the gate: crash, replay_initial(workers => 2) again.
# 4. 'decl', one worker, no crash: a batch fails with a deadlock once and is retried in the worker
#    (its rollback also loses the shared rows the engine held in memory for the earlier batches).
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
install_blog($node, authors => 100, posts_per_author => 4);
require_job_queue($node);
wait_for_launcher($node);

# ---- The projectors (tables, rules, hand-written references: test/fixtures/declarative.sql),
# more history, the gate. ----
my $fixtures = fixtures_dir();
$node->safe_psql('postgres', qq{
\\i $fixtures/declarative.sql
SELECT viewmig.register_declarative_projector('decl', public.decl_rules(),
    ARRAY['view_schema.d_authors', 'view_schema.d_posts', 'view_schema.d_post_tags', 'view_schema.d_tag_counts']::regclass[]);
SELECT viewmig.register_declarative_projector('decl3', public.decl3_rules(), ARRAY['view_schema.d_seen', 'view_schema.d_log']::regclass[]);
});
$node->safe_psql('postgres', <<'SQL');
-- More history: retracted posts (a delete and a shared decrement), removed tags, a note with
-- characters COPY must escape.
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
SELECT md5('post' || a || '/' || p)::uuid, 4, 'PostRetracted', jsonb_build_object('author_id', md5('author' || a)::uuid)
FROM generate_series(1, 10) a, generate_series(1, 2) p;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
SELECT md5('post' || a || '/' || p)::uuid, 5, 'TagRemoved', jsonb_build_object('tag', 'tag' || (p % 3))
FROM generate_series(11, 20) a, generate_series(1, 2) p;
UPDATE event_records SET event_json = event_json || jsonb_build_object('note', E'tab\there, line\nbreak, back\\slash, \\N')
WHERE event_type = 'PostPublished' AND aggregate_id = md5('post40/2')::uuid;

-- The gate: a BEFORE INSERT row trigger (installed on a replay table once prepare_initial made
-- it). Every row counts; past gate_after rows, once at least min_workers replay workers have
-- committed batches of the replay, each row takes the gate's lock shared. Until then each row
-- waits row_delay seconds (so that a second worker has its turns before the gate closes). Its
-- own lock_timeout of 0: with several workers the worker's session has a short one.
CREATE SEQUENCE public.gate_rows;
CREATE TABLE public.decl_gate (gate_after bigint, min_workers int NOT NULL, row_delay float8 NOT NULL);
INSERT INTO public.decl_gate VALUES (NULL, 1, 0);
CREATE FUNCTION public.decl_gate_row() RETURNS trigger LANGUAGE plpgsql SET lock_timeout = 0 AS $$
DECLARE
    g public.decl_gate := (SELECT g FROM public.decl_gate g);
BEGIN
    IF nextval('public.gate_rows') > g.gate_after
       AND (SELECT count(DISTINCT worker_pid) FROM viewmig.replay_groups
            WHERE replay_id = (SELECT max(id) FROM viewmig.replays) AND events_done > 0) >= g.min_workers THEN
        PERFORM pg_advisory_xact_lock_shared(4242);
    ELSIF g.gate_after IS NOT NULL AND g.row_delay > 0 THEN
        PERFORM pg_sleep(g.row_delay);
    END IF;
    RETURN NEW;
END $$;

-- A batch that fails once with a deadlock (retried in the worker, not a crash): past fail_after
-- rows, the first row raises 40P01; sequences (not rolled back) make it once.
CREATE SEQUENCE public.fail_rows;
CREATE SEQUENCE public.fail_fired;
CREATE TABLE public.decl_fail (fail_after bigint);
INSERT INTO public.decl_fail VALUES (NULL);
CREATE FUNCTION public.decl_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF nextval('public.fail_rows') > (SELECT f.fail_after FROM public.decl_fail f) AND nextval('public.fail_fired') = 1 THEN
        RAISE EXCEPTION 'decl_fail_once: a deadlock, once' USING ERRCODE = 'deadlock_detected';
    END IF;
    RETURN NEW;
END $$;
SQL
is($GATE_LOCK, 4242, 'the gate trigger takes ViewmigTAP\'s gate lock');

my $events = $node->safe_psql('postgres', 'SELECT count(*) FROM event_records');
cmp_ok($events, '>', 1000, "the event store holds $events events");

# What each projector replays, its reference, and what its replay tables must end with.
my %P = (
	decl => {
		tables     => [qw(d_authors d_posts d_post_tags d_tag_counts)],
		reference  => 'decl_reference',
		events     => $events,
		gated      => 'd_post_tags',
		gated_rows => $node->safe_psql('postgres', q{SELECT count(*) FROM event_records WHERE event_type = 'PostTagged'}),
		shared     => [qw(d_authors d_tag_counts)],
		bulk       => 'd_post_tags:d_post_tags_pkey:true,d_posts:d_posts_pkey:true',
		keys =>
		  'd_authors:d_authors_pkey,d_post_tags:d_post_tags_pkey,d_posts:d_posts_pkey,d_tag_counts:d_tag_counts_pkey',
	},
	decl3 => {
		tables     => [qw(d_seen d_log)],
		reference  => 'decl3_reference',
		events     => $node->safe_psql('postgres',
			q{SELECT count(*) FROM event_records WHERE event_type IN ('PostDrafted', 'PostTagged')}),
		gated      => 'd_log',
		gated_rows => $node->safe_psql('postgres',
			q{SELECT count(*) FROM event_records WHERE event_type IN ('PostDrafted', 'PostTagged')}),
		shared           => [],
		bulk             => 'd_log:d_log_pkey:true,d_seen:d_seen_pkey:true',
		keys             => 'd_log:d_log_pkey,d_seen:d_seen_pkey',
	});
for my $name (sort keys %P)
{
	my $p      = $P{$name};
	my $schema = "by_hand_$name";
	$p->{array} = '{' . join(',', @{ $p->{tables} }) . '}';
	my %shared = map { $_ => 1 } @{ $p->{shared} };
	$p->{unshared} = '{' . join(',', grep { !$shared{$_} } @{ $p->{tables} }) . '}';
	is( $node->safe_psql(
			'postgres', "SELECT rebuild_from_scratch('view_schema', '$schema', '$p->{array}', '$p->{reference}')"),
		$events, "$name: the hand-written handler rebuilt its tables from every event (schema $schema)");
	$p->{schema} = $schema;
	$p->{want} = join("\n",
		map { my $n = $node->safe_psql('postgres', "SELECT count(*) FROM $schema.$_"); "$_|$n|0|0" }
		  @{ $p->{tables} });
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM by_hand_decl.d_tag_counts WHERE n > 0}), '3',
	'the reference has its shared counters');

sub viewmig_workers
{
	return $node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'viewmig worker'});
}

# prepare_initial, then the gate on the projector's gated replay table; returns the replay id.
sub prepare_gated
{
	my ($label, $projector) = @_;
	my $p = $P{$projector};
	my $replay = $node->safe_psql('postgres', "SELECT viewmig.prepare_initial(ARRAY['$projector'])");
	like($replay, qr/^\d+$/, "$label: replay $replay prepared");
	# Partitioned and append-only tables always get their keys after the load (shared ones may too:
	# see keys_match_deferred_ddl).
	is( $node->safe_psql(
			'postgres',
			"SELECT string_agg(table_name || ':' || object_name || ':' || done, ',' ORDER BY table_name) "
			  . "FROM viewmig.replay_deferred_ddl "
			  . "WHERE replay_id = $replay AND kind = 'bulk_constraint' AND table_name = ANY('$p->{unshared}')"),
		$p->{bulk} =~ s/:true/:false/gr,
		"$label: the keys of the partitioned and append-only tables wait for the end of the load");
	keys_match_deferred_ddl("$label: prepared", $replay, $projector);
	$node->safe_psql('postgres',
		"CREATE TRIGGER gate BEFORE INSERT ON replay_schema.$p->{gated} FOR EACH ROW EXECUTE FUNCTION public.decl_gate_row()");
	return $replay;
}

# Closes the gate once $fraction of the gated table's rows are in (counting from $from rows) and
# $min_workers workers have committed batches; returns the session holding the gate.
sub close_gate
{
	my ($projector, $fraction, $min_workers, $row_delay, $from) = @_;
	my $gate_after = int($P{$projector}{gated_rows} * $fraction) - ($from // 0);
	$node->safe_psql(
		'postgres', qq{
SELECT setval('public.gate_rows', 1, false);
UPDATE public.decl_gate SET gate_after = $gate_after, min_workers = $min_workers, row_delay = $row_delay;
});
	return hold_gate($node);
}

sub groups_sql
{
	my ($replay, $where) = @_;
	return "SELECT coalesce(string_agg(group_no || '/' || events_done || '/' || worker_pid || '/' || finished_at, ',' "
	  . "ORDER BY group_no), '') FROM viewmig.replay_groups WHERE replay_id = $replay AND $where";
}

# The replay workers waiting for the gate's lock (not any advisory lock: the workers also wait
# for each other on viewmig's group-planning lock, an advisory lock too).
my $AT_GATE = qq{
SELECT DISTINCT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid
WHERE a.backend_type = 'viewmig worker' AND l.locktype = 'advisory' AND NOT l.granted
  AND l.classid = 0 AND l.objid = $GATE_LOCK AND l.objsubid = 1};

# Waits until $n workers wait at the gate; checks the replay is midway; returns what is committed
# (a hash: the done groups, their description, the events done), made durable by a checkpoint,
# and the pid of a worker held at the gate.
sub wait_at_gate
{
	my ($label, $replay, $projector, $n) = @_;
	my $p = $P{$projector};
	ok($node->poll_query_until('postgres', "SELECT count(*) FROM ($AT_GATE) w", $n),
		"$label: $n replay worker(s) wait at the gate (in the engine's COPY)");
	is( $node->safe_psql(
			'postgres',
			"SELECT state || '|' || (groups_done > 0) || '|' || (groups_done < groups_total) FROM viewmig.status WHERE id = $replay"),
		'replaying_initial|true|true',
		"$label: mid-replay: some groups done, not all");
	keys_match_deferred_ddl("$label: during the load", $replay, $projector);
	my %before;
	$before{groups} = $node->safe_psql('postgres',
		"SELECT string_agg(group_no::text, ',' ORDER BY group_no) FROM viewmig.replay_groups WHERE replay_id = $replay AND done");
	$before{described} = $node->safe_psql('postgres', groups_sql($replay, "group_no IN ($before{groups})"));
	$before{events} = $node->safe_psql('postgres',
		"SELECT sum(events_done) FROM viewmig.replay_groups WHERE replay_id = $replay");
	cmp_ok($before{events}, '>', 0, "$label: $before{events} events committed before the crash");
	# The workers commit with synchronous_commit = off: a crash may lose their last commits (and
	# the resumed replay then replays those groups again, by design). A checkpoint after the
	# snapshot above makes every commit it saw durable, so that "not redone" is exact.
	$node->safe_psql('postgres', 'CHECKPOINT');
	$before{pid} = $node->safe_psql('postgres', "SELECT min(pid) FROM ($AT_GATE) w");
	return \%before;
}

# Each replay table has its primary key iff no bulk_constraint row of it waits (not done).
sub keys_match_deferred_ddl
{
	my ($label, $replay, $projector) = @_;
	is( $node->safe_psql(
			'postgres', qq{
SELECT coalesce(string_agg(t || CASE WHEN has_key THEN ' has its key' ELSE ' has no key' END
                           || ', its bulk_constraint ' || coalesce(d.done::text, '(none)'), '; ' ORDER BY t), '')
FROM unnest('$P{$projector}{array}'::name[]) t
CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM pg_constraint c
                                   WHERE c.conrelid = format('replay_schema.%I', t)::regclass AND c.contype = 'p')) k(has_key)
LEFT JOIN LATERAL (SELECT bool_and(done) AS done FROM viewmig.replay_deferred_ddl
                   WHERE replay_id = $replay AND kind = 'bulk_constraint' AND table_name = t) d ON true
WHERE has_key <> coalesce(d.done, true)}),
		'', "$label: each replay table has its primary key iff its bulk_constraint row is done (or it has none)");
	return;
}

# The shared tables' rows and the projectors writing them with every batch: 'authors|tags|eager'.
sub shared_state
{
	my ($replay) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT (SELECT count(*) FROM replay_schema.d_authors) || '|' || (SELECT count(*) FROM replay_schema.d_tag_counts)
       || '|' || eager_projectors::text FROM viewmig.replays WHERE id = $replay});
}

# kill -9 of the worker at the gate; waits for the crash restart (the gate's session and every
# other backend die with it) and opens the gate.
sub crash
{
	my ($label, $pid, @sessions) = @_;
	my $log_offset = -s $node->logfile;
	ok(kill('KILL', $pid), "$label: kill -9 the viewmig worker at the gate (pid $pid)");
	$node->wait_for_log(qr/all server processes terminated; reinitializing/, $log_offset);
	eval { $_->quit } for @sessions;
	ok($node->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), "$label: the server is back after the crash");
	$node->safe_psql('postgres', 'UPDATE public.decl_gate SET gate_after = NULL');
	return;
}

# Committed groups as they were before a crash (wait_at_gate) are still there, unchanged.
sub groups_kept
{
	my ($label, $replay, $before) = @_;
	is($node->safe_psql('postgres', groups_sql($replay, "group_no IN ($before->{groups})")),
		$before->{described},
		"$label: the groups committed before the crash were not redone (same events, worker and finish time)");
	return;
}

# After the resumed replay: finished, committed groups untouched, every event counted once, the
# keys added, the tables equal to the reference.
sub check_resumed
{
	my ($label, $replay, $projector, @befores) = @_;
	my $p = $P{$projector};
	is( $node->safe_psql(
			'postgres',
			"SELECT state || '|' || groups_done || '/' || groups_total || '|' || events_done FROM viewmig.status WHERE id = $replay"),
		'replayed|'
		  . $node->safe_psql('postgres', "SELECT count(*) || '/' || count(*) FROM viewmig.replay_groups WHERE replay_id = $replay")
		  . "|$p->{events}",
		"$label: the replay finished (state replayed, every group done, every event counted once)");
	for my $i (0 .. $#befores)
	{
		groups_kept(@befores > 1 ? "$label (crash " . ($i + 1) . ')' : $label, $replay, $befores[$i]);
	}
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FILTER (WHERE NOT done) || '|' || string_agg(table_name || ':' || object_name || ':' || done, ',' "
			  . "ORDER BY table_name) FILTER (WHERE table_name = ANY('$p->{unshared}')) "
			  . "FROM viewmig.replay_deferred_ddl WHERE replay_id = $replay AND kind = 'bulk_constraint'"),
		"0|$p->{bulk}", "$label: the bulk_constraint rows are done (none left waiting)");
	is( $node->safe_psql(
			'postgres',
			q{SELECT string_agg(r.relname || ':' || c.conname, ',' ORDER BY r.relname) FROM pg_constraint c
              JOIN pg_class r ON r.oid = c.conrelid
              WHERE c.connamespace = 'replay_schema'::regnamespace AND c.contype = 'p'}),
		$p->{keys}, "$label: every replay table has its primary key");
	is( $node->safe_psql(
			'postgres',
			"SELECT table_name || '|' || row_count || '|' || only_in_a || '|' || only_in_b "
			  . "FROM compare_schemas('replay_schema', '$p->{schema}', '$p->{array}')"),
		$p->{want},
		"$label: replay tables equal the hand-written handler's rebuild (table|rows|only in replay|only in rebuild)");
	is(viewmig_workers(), '0', "$label: no viewmig worker is left");
	return;
}

# ---- 1. 'decl', one worker, a queued replay_initial job resumed by the launcher. ----
{
	my $label  = 'decl, one worker';
	my $replay = prepare_gated($label, 'decl');
	my $holder = close_gate('decl', 1 / 2, 1, 0);
	my $id     = enqueue_job($node, 'replay_initial', { batch_size => 50, workers => 1 });
	my $before = wait_at_gate($label, $replay, 'decl', 1);
	is(viewmig_workers(), '1', "$label: one replay worker");
	is(shared_state($replay), '0|0|{}', "$label: the shared rows are still only in the engine's memory (none written)");

	crash($label, $before->{pid}, $holder);
	wait_for_launcher($node, "$label: the launcher runs again after the crash restart");
	job_is($node, $id, 'succeeded', "$label: the interrupted job is resumed and succeeds");
	cmp_ok(event_count($node, $id, 'started'), '>=', 2, "$label: the job started again after the crash");
	cmp_ok(event_count($node, $id, 'retried'), '>=', 1, "$label: a retried event records the re-enqueue");
	is(job_field($node, $id, q{result->>'value'}), $events - $before->{events},
		"$label: the resumed attempt replayed only the events not committed before the crash");
	like(shared_state($replay), qr/^\d+\|3\|\{decl\}$/,
		"$label: the resumed replay rebuilt the shared rows of the committed groups and went on eagerly");
	check_resumed($label, $replay, 'decl', $before);
	is($node->safe_psql('postgres', q{SELECT note FROM replay_schema.d_posts WHERE id = md5('post40/2')::uuid}),
		"tab\there, line\nbreak, back\\slash, \\N", "$label: a note with tab, newline, backslash and \\N survives COPY");
}

# ---- 2. 'decl', workers => 2 asked, replay_initial() by hand: two crashes. ----
{
	my $label = 'decl, workers => 2';
	$node->safe_psql('postgres', 'SELECT viewmig.abort()');
	my $replay     = prepare_gated($label, 'decl');
	my $holder     = close_gate('decl', 1 / 3, 1, 0);
	my $log_offset = -s $node->logfile;
	my $caller     = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_until(qr/replaying/, "\\echo replaying\nSELECT viewmig.replay_initial(batch_size => 50, workers => 2);\n");
	my $first = wait_at_gate("$label, crash 1", $replay, 'decl', 1);
	ok( $node->log_contains(
			qr/one worker replays declarative projector "decl": its table "d_(authors|tag_counts)" has rows shared by many aggregates/,
			$log_offset),
		"$label: a LOG line says one worker replays the projector with shared tables");
	is(viewmig_workers(), '1', "$label: the second worker left at once");
	is(shared_state($replay), '0|0|{}', "$label, crash 1: the shared rows are still only in memory");
	crash("$label, crash 1", $first->{pid}, $holder, $caller);
	is($node->safe_psql('postgres', "SELECT state FROM viewmig.replays WHERE id = $replay"),
		'replaying_initial', "$label, crash 1: after the crash the replay waits, partly done");
	groups_kept("$label, crash 1", $replay, $first);

	# Resumed: the shared rows of the committed groups are written first, then with every batch;
	# a second crash in that mode, past two thirds of the gated rows.
	my $committed = $node->safe_psql('postgres', "SELECT count(*) FROM replay_schema.d_post_tags");
	$holder = close_gate('decl', 2 / 3, 1, 0, $committed);
	$caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_until(qr/replaying/, "\\echo replaying\nSELECT viewmig.replay_initial(workers => 2);\n");
	my $second = wait_at_gate("$label, crash 2", $replay, 'decl', 1);
	cmp_ok($second->{events}, '>', $first->{events}, "$label, crash 2: the resumed replay committed more groups");
	like(shared_state($replay), qr/^\d+\|3\|\{decl\}$/,
		"$label, crash 2: the shared rows are in the tables, written with every batch (eager)");
	is( $node->safe_psql(
			'postgres',
			q{SELECT string_agg(r.relname, ',' ORDER BY r.relname) FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
              WHERE c.connamespace = 'replay_schema'::regnamespace AND c.contype = 'p' AND r.relname IN ('d_authors', 'd_tag_counts')}),
		'd_authors,d_tag_counts', "$label, crash 2: the shared tables have their keys (read by key with every batch)");
	crash("$label, crash 2", $second->{pid}, $holder, $caller);
	groups_kept("$label, crash 2", $replay, $second);

	# Resumed in eager mode: the shared rows are read back from the tables.
	my $done = $node->safe_psql('postgres', "SELECT sum(events_done) FROM viewmig.replay_groups WHERE replay_id = $replay");
	is($done, $second->{events}, "$label: $done events committed before the second crash");
	is($node->safe_psql('postgres', 'SELECT viewmig.replay_initial(workers => 2)'),
		$events - $done, "$label: replay_initial called again replays only the events not committed");
	check_resumed($label, $replay, 'decl', $first, $second);
}

# ---- 3. 'decl3' (no shared table), two workers both held at the gate. ----
{
	my $label = 'decl3, two workers';
	$node->safe_psql('postgres', 'SELECT viewmig.abort()');
	my $replay = prepare_gated($label, 'decl3');
	my $holder = close_gate('decl3', 1 / 2, 2, 0.001);
	my $caller = $node->background_psql('postgres', on_error_stop => 0);
	$caller->query_until(qr/replaying/, "\\echo replaying\nSELECT viewmig.replay_initial(batch_size => 50, workers => 2);\n");
	my $before = wait_at_gate($label, $replay, 'decl3', 2);
	is( $node->safe_psql(
			'postgres',
			"SELECT count(DISTINCT worker_pid) FROM viewmig.replay_groups WHERE replay_id = $replay AND events_done > 0"),
		'2', "$label: both workers committed batches before the crash");

	crash($label, $before->{pid}, $holder, $caller);
	my $done = $node->safe_psql('postgres', "SELECT sum(events_done) FROM viewmig.replay_groups WHERE replay_id = $replay");
	is($done, $before->{events}, "$label: $done events committed before the crash");
	is($node->safe_psql('postgres', 'SELECT viewmig.replay_initial(workers => 2)'),
		$P{decl3}{events} - $done, "$label: replay_initial called again replays only the events not committed");
	check_resumed($label, $replay, 'decl3', $before);
}

# ---- 4. 'decl', one worker: no crash, a batch rolled back by a deadlock and retried. ----
{
	my $label = 'decl, a batch retried';
	$node->safe_psql('postgres', 'SELECT viewmig.abort()');
	my $replay = prepare_gated($label, 'decl');
	my $fail_after = int($P{decl}{gated_rows} / 2);
	$node->safe_psql(
		'postgres', qq{
CREATE TRIGGER fail_once BEFORE INSERT ON replay_schema.d_post_tags FOR EACH ROW EXECUTE FUNCTION public.decl_fail_once();
UPDATE public.decl_fail SET fail_after = $fail_after;
});
	my ($stdout, $stderr);
	$node->psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 50, workers => 1)',
		stdout => \$stdout, stderr => \$stderr, on_error_die => 1);
	is($stdout, $events, "$label: replay_initial replays every event once");
	like($stderr, qr/1 batches were replayed again/, "$label: one batch was replayed again (NOTICE)");
	is($node->safe_psql('postgres', q{SELECT is_called FROM public.fail_fired}), 't',
		"$label: the deadlock was raised (by the first row past half of the gated table's)");
	like(shared_state($replay), qr/^\d+\|3\|\{decl\}$/,
		"$label: the shared rows of the earlier batches (only in memory, lost with the rollback) were rebuilt; eager since");
	check_resumed($label, $replay, 'decl');
}

$node->stop;
done_testing();
