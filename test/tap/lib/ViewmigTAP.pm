# Helpers shared by the viewmig TAP tests (test/tap/t/*.pl): a cluster preloading viewmig, the
# blog fixtures, a handler that can be held at a gate mid-replay, job queue helpers, and the
# "tables equal a rebuild from scratch" check built on test/fixtures/compare.sql; for background
# schema migrations, an old-snapshot holder that keeps CREATE INDEX CONCURRENTLY waiting, row and
# event helpers, and a watcher sampling the one-migration-per-table rule.
package ViewmigTAP;

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();

our @EXPORT = qw(viewmig_node fixtures_dir install_blog install_gated_handler require_job_queue wait_for_launcher
  wait_mid_replay
  enqueue_job wait_for_job_end job_is job_field job_events event_count tables_match_rebuild
  handler_calls_exact hold_gate hold_gate_half_way viewmig_backends notifications_for @BLOG_TABLES $GATE_LOCK
  require_schema_migrations fill_table hold_old_snapshot sm_field sm_events sm_event_count wait_for_sm_end
  sm_is wait_for_sm_phase sm_notifications_for index_state one_per_table_violations watch_until);

our @BLOG_TABLES = qw(authors posts post_tags);
our $GATE_LOCK   = 4242;    # advisory lock key of the gate (see install_gated_handler)

# test/fixtures, next to test/tap (run.sh copies both); VIEWMIG_FIXTURES overrides it.
sub fixtures_dir
{
	return $ENV{VIEWMIG_FIXTURES} // "$FindBin::RealBin/../../fixtures";
}

# A new (not yet started) cluster preloading viewmig, its launcher serving database postgres and
# looking for work every second. %params go to init() (e.g. allows_streaming => 1); extra_conf
# is appended to postgresql.conf.
sub viewmig_node
{
	my ($name, %params) = @_;
	my $extra = delete $params{extra_conf} // '';
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%params);
	$node->append_conf(
		'postgresql.conf', qq{
shared_preload_libraries = 'viewmig'
viewmig.database = 'postgres'
viewmig.naptime = '1s'
viewmig.progress_interval = 0
max_worker_processes = 16
shared_buffers = 16MB
$extra
});
	return $node;
}

# Creates the extension, the blog domain (test/fixtures/blog.sql) and the comparison helpers
# (compare.sql), runs $opt{setup} (SQL, e.g. a handler of the test's own), names the event store
# and registers projector 'blog' with handler $opt{handler} (default blog_projector), then writes
# blog_events(1, authors, posts_per_author).
sub install_blog
{
	my ($node, %opt) = @_;
	my $fixtures = fixtures_dir();
	my $authors  = $opt{authors}          // 40;
	my $posts    = $opt{posts_per_author} // 3;
	$node->safe_psql(
		'postgres', qq{
CREATE EXTENSION viewmig;
\\i $fixtures/blog.sql
\\i $fixtures/compare.sql
});
	install_gated_handler($node) if $opt{gated};
	$node->safe_psql('postgres', $opt{setup}) if $opt{setup};
	my $handler = $opt{handler} // ($opt{gated} ? 'gated_blog' : 'blog_projector');
	$node->safe_psql(
		'postgres', qq{
SELECT viewmig.set_event_store('event_records');
SELECT viewmig.register_projector('blog', '$handler(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[]);
SELECT blog_events(1, $authors, $posts);
});
	return $node->safe_psql('postgres', 'SELECT count(*) FROM event_records');
}

# gated_blog(e): blog_projector(e), plus
#  * one row in public.handler_calls per call, committed (or lost) with the replay's own work:
#    after any interruption, handler_calls has exactly one row per event iff no committed work
#    was replayed again (see handler_calls_exact);
#  * a gate: once handler_calls holds at least replay_gate.gate_after rows (committed ones plus
#    the caller's own), every call takes advisory lock $GATE_LOCK shared, so the replay blocks
#    while the test holds that lock (hold_gate) -- mid-replay, deterministically, with the groups
#    before it committed. gate_after NULL opens the gate.
sub install_gated_handler
{
	my ($node) = @_;
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE public.replay_gate (gate_after bigint);
INSERT INTO public.replay_gate VALUES (NULL);
CREATE TABLE public.handler_calls (aggregate_id uuid NOT NULL, sequence_number int NOT NULL);
GRANT SELECT ON public.replay_gate TO PUBLIC;
CREATE FUNCTION public.gated_blog(e public.event_records) RETURNS void LANGUAGE plpgsql AS \$\$
DECLARE
    gate bigint := (SELECT g.gate_after FROM public.replay_gate g);
BEGIN
    INSERT INTO public.handler_calls VALUES (e.aggregate_id, e.sequence_number);
    IF gate IS NOT NULL AND (SELECT count(*) FROM public.handler_calls) >= gate THEN
        PERFORM pg_advisory_xact_lock_shared($GATE_LOCK);
    END IF;
    PERFORM public.blog_projector(e);
END \$\$;
});
	return;
}

# A background session holding the gate's lock; quit it (or let the server drop it) to open.
# Closes the gate once half of the `$events` events are in, and holds it (see hold_gate).
sub hold_gate_half_way
{
	my ($node, $events) = @_;
	my $gate_after = int($events / 2);
	$node->safe_psql('postgres', "UPDATE replay_gate SET gate_after = $gate_after");
	return hold_gate($node);
}

sub hold_gate
{
	my ($node) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($GATE_LOCK)");
	return $holder;
}

# The whole committed result: one handler call per event, none twice.
# Waits until the single replay worker is held at the gate, checks that the replay is midway
# (some groups done, not all) and returns how many handler calls are committed; `$what` names
# what comes next ("the crash") in the test output.
sub wait_mid_replay
{
	my ($node, $what) = @_;
	Test::More::ok(
		$node->poll_query_until(
			'postgres',
			q{SELECT count(*) FROM pg_stat_activity
              WHERE backend_type = 'viewmig worker' AND wait_event_type = 'Lock' AND wait_event = 'advisory'},
			'1'),
		'the replay worker waits at the gate');
	Test::More::is(
		$node->safe_psql(
			'postgres',
			q{SELECT state || '|' || (groups_done > 0) || '|' || (groups_done < groups_total)
              FROM viewmig.status ORDER BY id DESC LIMIT 1}),
		'replaying_initial|true|true',
		'mid-replay: some groups done, not all');
	my $committed = $node->safe_psql('postgres', 'SELECT count(*) FROM handler_calls');
	Test::More::cmp_ok($committed, '>', 0, "$committed handler calls committed before $what");
	return $committed;
}

sub handler_calls_exact
{
	my ($node, $label) = @_;
	my $r = $node->safe_psql(
		'postgres', q{
SELECT (SELECT count(*) FROM event_records) || ' events, ' || count(*) || ' calls, '
       || count(DISTINCT (aggregate_id, sequence_number)) || ' distinct'
FROM handler_calls});
	my ($events) = $r =~ /^(\d+) events/;
	is($r, "$events events, $events calls, $events distinct", $label);
	return;
}

# Fails fast (instead of timing out on polls) when the installed build has no job queue.
sub require_job_queue
{
	my ($node) = @_;
	my $has = $node->safe_psql('postgres',
		q{SELECT to_regprocedure('viewmig.enqueue(text, jsonb, integer)') IS NOT NULL});
	ok($has eq 't', 'the installed viewmig has the job queue (viewmig.enqueue)')
	  or BAIL_OUT_FILE('the installed viewmig build has no job queue; run `make install` with the launcher');
	return;
}

sub BAIL_OUT_FILE
{
	my ($why) = @_;
	diag($why);
	done_testing();
	exit 1;
}

sub wait_for_launcher
{
	my ($node, $label) = @_;
	ok( $node->poll_query_until(
			'postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'viewmig launcher' AND datname = 'postgres'},
			'1'),
		$label // 'the viewmig launcher runs in database postgres');
	return;
}

# viewmig.enqueue($kind, $args) as $opt{user} (a LOGIN role; default: the bootstrap superuser);
# returns the job id. $args is a Perl hash (sent as jsonb).
sub enqueue_job
{
	my ($node, $kind, $args, %opt) = @_;
	my $json = JSON::PP->new->canonical->encode($args // {});
	$json =~ s/'/''/g;
	my $sql = "SELECT viewmig.enqueue('$kind', '$json'::jsonb"
	  . (defined $opt{max_attempts} ? ", max_attempts => $opt{max_attempts}" : '') . ')';
	my @extra = defined $opt{user} ? (extra_params => [ '-U', $opt{user} ]) : ();
	my $id = $node->safe_psql('postgres', $sql, @extra);
	like($id, qr/^\d+$/, "enqueued a '$kind' job" . (defined $opt{user} ? " as $opt{user}" : ''));
	return $id;
}

sub job_field
{
	my ($node, $id, $expr) = @_;
	return $node->safe_psql('postgres', "SELECT $expr FROM viewmig.jobs WHERE id = $id");
}

# Polls until the job is succeeded, failed or cancelled (failed only once its attempts are used:
# a retry waits as 'enqueued'); returns that status.
sub wait_for_job_end
{
	my ($node, $id) = @_;
	$node->poll_query_until('postgres',
		"SELECT status IN ('succeeded', 'failed', 'cancelled') FROM viewmig.jobs WHERE id = $id")
	  or diag("job $id did not end: " . job_field($node, $id, 'row_to_json(jobs)'));
	return job_field($node, $id, 'status');
}

# Waits for the job to end and checks its final status; on a mismatch shows the job and its events.
sub job_is
{
	my ($node, $id, $status, $label) = @_;
	my $got = wait_for_job_end($node, $id);
	is($got, $status, $label // "job $id ends $status")
	  or diag("job: " . job_field($node, $id, 'row_to_json(jobs)') . "\nevents: " . job_events($node, $id));
	return $got;
}

# The job's events in order, comma-separated.
sub job_events
{
	my ($node, $id) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(event, ',' ORDER BY id) FROM viewmig.job_events WHERE job_id = $id");
}

sub event_count
{
	my ($node, $id, $event) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM viewmig.job_events WHERE job_id = $id AND event = '$event'");
}

# Comma-separated pids of the backends of the given types (default: viewmig's job backends and
# replay workers), '' when none.
sub viewmig_backends
{
	my ($node, $types) = @_;
	$types //= [ 'viewmig job', 'viewmig worker' ];
	my $in = join(', ', map {"'$_'"} @$types);
	return $node->safe_psql('postgres',
		"SELECT string_agg(pid::text, ',' ORDER BY pid) FROM pg_stat_activity WHERE backend_type IN ($in)");
}

# Rebuilds the blog tables from scratch (every event through blog_projector, in order, into
# schema "expected") and checks that $schema's tables hold the same rows (serial columns aside).
sub tables_match_rebuild
{
	my ($node, $schema, $label) = @_;
	my $tables = 'ARRAY[' . join(', ', map {"'$_'"} @BLOG_TABLES) . ']';
	$node->safe_psql('postgres',
		"SELECT rebuild_from_scratch('view_schema', 'expected', $tables, 'blog_projector')");
	my $want = $node->safe_psql(
		'postgres', join("\nUNION ALL ",
			map {"SELECT '$_|' || count(*) || '|0|0' FROM expected.$_"} @BLOG_TABLES));
	my $got = $node->safe_psql('postgres',
		"SELECT table_name || '|' || row_count || '|' || only_in_a || '|' || only_in_b "
		  . "FROM compare_schemas('$schema', 'expected', $tables)");
	is($got, $want, $label // "$schema tables equal a rebuild from scratch (table|rows|only here|only in rebuild)");
	return;
}

# The NOTIFY viewmig payloads (decoded) that psql printed in $output for job $id.
sub notifications_for
{
	my ($output, $id) = @_;
	my @found;
	for my $line (split /\n/, $output // '')
	{
		next unless $line =~ /^Asynchronous notification "viewmig" with payload "(.*)" received from server process/;
		my $payload = eval { JSON::PP::decode_json($1) };
		push @found, $payload if ref $payload eq 'HASH' && defined $payload->{job} && $payload->{job} == $id;
	}
	return @found;
}

# ---- Background schema migrations (test/tap/t/008_* and later) ----

# Fails fast when the installed build has no background schema migrations.
sub require_schema_migrations
{
	my ($node) = @_;
	my $has = $node->safe_psql('postgres',
		q{SELECT to_regprocedure('viewmig.run_background_schema_migrations()') IS NOT NULL});
	ok($has eq 't', 'the installed viewmig has background schema migrations')
	  or BAIL_OUT_FILE('the installed viewmig build has no background schema migrations; run `make install`');
	return;
}

# CREATE TABLE $table (id int, a int, b text, c int) with $rows rows, as $opt{user} (a LOGIN role;
# default: the bootstrap superuser).
sub fill_table
{
	my ($node, $table, $rows, %opt) = @_;
	my @extra = defined $opt{user} ? (extra_params => [ '-U', $opt{user} ]) : ();
	$node->safe_psql(
		'postgres', qq{
CREATE TABLE $table (id int NOT NULL, a int NOT NULL, b text NOT NULL, c int);
INSERT INTO $table SELECT g, g % 1000, md5(g::text), g % 7 FROM generate_series(1, $rows) g;
ANALYZE $table;
}, @extra);
	return;
}

# A background session whose open transaction holds an old snapshot: every CREATE INDEX
# CONCURRENTLY started after it waits for it ("waiting for old snapshots", after the build and
# the validation scan, with its INVALID index in the catalog) until the session ends. REPEATABLE
# READ is what keeps the snapshot: an idle READ COMMITTED transaction has an xid but no xmin, and
# CIC does not wait for it. The session touches no table, so it holds no lock a DROP INDEX
# CONCURRENTLY would wait for. Quit it (or let the server drop it) to let the builds finish.
sub hold_old_snapshot
{
	my ($node) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
	$holder->query_safe('SELECT txid_current()');
	return $holder;
}

sub sm_field
{
	my ($node, $id, $expr) = @_;
	return $node->safe_psql('postgres', "SELECT $expr FROM viewmig.background_schema_migrations m WHERE id = $id");
}

# The migration's events in order, comma-separated.
sub sm_events
{
	my ($node, $id) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(event, ',' ORDER BY id) FROM viewmig.schema_migration_events WHERE migration_id = $id");
}

sub sm_event_count
{
	my ($node, $id, $event) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM viewmig.schema_migration_events WHERE migration_id = $id AND event = '$event'");
}

# Polls until the migration is succeeded, failed or cancelled (errored waits for a retry);
# returns that status.
sub wait_for_sm_end
{
	my ($node, $id) = @_;
	$node->poll_query_until('postgres',
		"SELECT status IN ('succeeded', 'failed', 'cancelled') FROM viewmig.background_schema_migrations WHERE id = $id")
	  or diag("schema migration $id did not end: " . sm_field($node, $id, 'row_to_json(m)'));
	return sm_field($node, $id, 'status');
}

# Waits for the migration to end and checks its final status; on a mismatch shows the row and
# its events.
sub sm_is
{
	my ($node, $id, $status, $label) = @_;
	my $got = wait_for_sm_end($node, $id);
	is($got, $status, $label // "schema migration $id ends $status")
	  or diag('migration: ' . $node->safe_psql('postgres',
			"SELECT row_to_json(m) FROM viewmig.background_schema_migrations m WHERE id = $id")
		  . "\nevents: " . sm_events($node, $id));
	return $got;
}

# Polls the status view until the migration is running with the given CREATE INDEX progress
# phase (default: any phase).
sub wait_for_sm_phase
{
	my ($node, $id, $phase, $label) = @_;
	my $cond = defined $phase ? "phase = '$phase'" : 'phase IS NOT NULL';
	return ok(
		$node->poll_query_until(
			'postgres',
			"SELECT status = 'running' AND $cond FROM viewmig.background_schema_migrations_status WHERE id = $id"),
		$label // "migration $id runs, its build in phase " . ($phase // '(any)'))
	  || diag('status: ' . $node->safe_psql('postgres',
			"SELECT row_to_json(s) FROM viewmig.background_schema_migrations_status s WHERE id = $id"));
}

# The NOTIFY viewmig_schema_migrations payloads (decoded) that psql printed in $output for
# migration $id.
sub sm_notifications_for
{
	my ($output, $id) = @_;
	my @found;
	for my $line (split /\n/, $output // '')
	{
		next
		  unless $line =~
		  /^Asynchronous notification "viewmig_schema_migrations" with payload "(.*)" received from server process/;
		my $payload = eval { JSON::PP::decode_json($1) };
		push @found, $payload
		  if ref $payload eq 'HASH' && defined $payload->{migration} && $payload->{migration} == $id;
	}
	return @found;
}

# 'valid', 'INVALID' or 'missing': the index named $name (any schema).
sub index_state
{
	my ($node, $name) = @_;
	return $node->safe_psql(
		'postgres', qq{
SELECT coalesce((SELECT string_agg(CASE WHEN i.indisvalid AND i.indisready THEN 'valid' ELSE 'INVALID' END, ',')
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = '$name'), 'missing')});
}

# SQL returning '' or a description of every table that has more than one schema migration
# running, or more than one CREATE INDEX in progress, right now.
sub one_per_table_violations
{
	return q{
SELECT coalesce(string_agg(v, '; '), '') FROM (
    SELECT table_name::text || ': migrations ' || string_agg(id::text, '+' ORDER BY id) || ' running' AS v
    FROM viewmig.background_schema_migrations WHERE status = 'running' AND NOT composite
    GROUP BY table_name HAVING count(*) > 1
    UNION ALL
    SELECT relid::regclass::text || ': ' || count(*) || ' index builds in progress (pids '
           || string_agg(pid::text, '+' ORDER BY pid) || ')'
    FROM pg_stat_progress_create_index GROUP BY relid HAVING count(*) > 1) s};
}

# Samples $check (SQL returning '' when all is well, else a description) over and over in a
# session of its own (autocommit: it never holds a snapshot between samples) until $until (SQL
# returning true) holds or the poll timeout passes. Returns (samples, [distinct violations],
# reached): the caller asserts on them.
sub watch_until
{
	my ($node, $check, $until) = @_;
	my $session = $node->background_psql('postgres');
	my ($samples, %seen, $reached) = (0);
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (time() < $deadline)
	{
		my $row = $session->query_safe("SELECT ($until)::text || '|' || coalesce(($check), '')");
		$samples++;
		my ($done, $violation) = split /\|/, $row, 2;
		$seen{$violation} = 1 if defined $violation && $violation ne '';
		if ($done eq 'true') { $reached = 1; last; }
		Time::HiRes::usleep(5_000);     # pacing only: no assertion depends on it
	}
	$session->quit;
	return ($samples, [ sort keys %seen ], $reached);
}

1;
