# Helpers shared by the viewmig TAP tests (test/tap/t/*.pl): a cluster preloading viewmig, the
# blog fixtures, a handler that can be held at a gate mid-replay, job queue helpers, and the
# "tables equal a rebuild from scratch" check built on test/fixtures/compare.sql.
package ViewmigTAP;

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use JSON::PP ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(viewmig_node install_blog install_gated_handler require_job_queue wait_for_launcher
  enqueue_job wait_for_job_end job_is job_field job_events event_count tables_match_rebuild
  handler_calls_exact hold_gate viewmig_backends notifications_for @BLOG_TABLES $GATE_LOCK);

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
# (compare.sql), names the event store and registers projector 'blog' with handler $opt{handler}
# (default blog_projector), then writes blog_events(1, authors, posts_per_author).
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
sub hold_gate
{
	my ($node) = @_;
	my $holder = $node->background_psql('postgres');
	$holder->query_safe("SELECT pg_advisory_lock($GATE_LOCK)");
	return $holder;
}

# The whole committed result: one handler call per event, none twice.
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

1;
