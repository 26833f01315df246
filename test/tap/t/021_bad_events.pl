# Crash freedom on bad event rows (issue 14, classes 6 and 13), with workers and jobs: an
# interrupted parallel replay_initial resumes only after a NULL key written meanwhile is fixed,
# a replay job and a parallel increment refuse NULL keys and restored transaction ids with a
# clear ERROR, and the server never restarts (same postmaster, no "terminated by signal" in the log).
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
my $postmaster = $node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()');

my $events = install_blog($node, authors => 40, posts_per_author => 3, handler => 'fragile_blog', setup => q{
CREATE TABLE public.fail_switch (aggregate_id uuid);
CREATE FUNCTION public.fragile_blog(e public.event_records) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF e.aggregate_id = (SELECT f.aggregate_id FROM public.fail_switch f) THEN
        RAISE EXCEPTION 'fragile_blog fails on purpose at %', e.aggregate_id;
    END IF;
    PERFORM public.blog_projector(e);
END $$;
ALTER TABLE public.event_records ALTER COLUMN aggregate_id DROP NOT NULL, ALTER COLUMN sequence_number DROP NOT NULL,
    ALTER COLUMN event_type DROP NOT NULL, ALTER COLUMN xact_id DROP NOT NULL;
});

# 1. A parallel initial replay interrupted by a handler ERROR in its last aggregate; meanwhile an
#    event of an already replayed aggregate loses its aggregate id. The resume refuses it.
$node->safe_psql('postgres', q{
INSERT INTO fail_switch SELECT aggregate_id FROM event_records ORDER BY aggregate_id DESC LIMIT 1;
SELECT viewmig.prepare_initial(ARRAY['blog']);
});
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 50, workers => 2)');
like($err, qr/fragile_blog fails on purpose/, 'the interrupted replay relays the handler ERROR');
$node->safe_psql('postgres', q{
DELETE FROM fail_switch;
CREATE TABLE saved AS SELECT * FROM event_records WHERE id = (SELECT min(id) FROM event_records);
UPDATE event_records SET aggregate_id = NULL WHERE id = (SELECT id FROM saved);
});
($ret, $out, $err) = $node->psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 50, workers => 2)');
like($err, qr/event row with a NULL aggregate_id in event table public\.event_records can not be replayed/,
	'the resumed replay refuses the NULL aggregate id');
like($err, qr/DETAIL:  The row is at ctid \(\d+,\d+\) of (?:public\.)?event_records: aggregate_id=NULL, sequence_number=\d+/,
	'... and names the row');
$node->safe_psql('postgres',
	'UPDATE event_records e SET aggregate_id = s.aggregate_id FROM saved s WHERE e.id = s.id');
is($node->safe_psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 50, workers => 2) > 0'),
	't', 'once fixed, the replay resumes');
tables_match_rebuild($node, 'replay_schema', 'the resumed replay equals a rebuild');

# 2. A parallel increment refuses a NULL sequence number and a restored transaction id.
$node->safe_psql('postgres', q{
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json)
VALUES (gen_random_uuid(), NULL, 'AuthorCreated', '{"name": "x"}')});
($ret, $out, $err) = $node->psql('postgres', 'SELECT viewmig.replay_increment(workers => 2)');
like($err, qr/event row with a NULL sequence_number/, 'replay_increment(workers => 2) refuses a NULL sequence number');
$node->safe_psql('postgres', q{
UPDATE event_records SET sequence_number = 1 WHERE sequence_number IS NULL;
INSERT INTO event_records (aggregate_id, sequence_number, event_type, event_json, xact_id)
VALUES (gen_random_uuid(), 1, 'AuthorCreated', '{"name": "restored"}', 5000000000)});
($ret, $out, $err) = $node->psql('postgres', 'SELECT viewmig.replay_increment(workers => 2)');
like($err, qr/1 row\(s\) whose xact_id this cluster has not assigned yet \(highest 5000000000\)/,
	'replay_increment(workers => 2) refuses a restored transaction id');

# 3. A replay job fails on it with the same ERROR; then the HINT's UPDATE lets it finish.
$node->safe_psql('postgres', 'SELECT viewmig.abort()');
my $job = enqueue_job($node, 'replay', { projectors => ['blog'], workers => 2 }, max_attempts => 1);
wait_for_job_end($node, $job);
like(job_field($node, $job, 'last_error'), qr/has not assigned yet/, 'the replay job fails with the clear ERROR');
$node->safe_psql('postgres',
	'UPDATE event_records SET xact_id = pg_current_xact_id()::text::bigint WHERE xact_id > pg_current_xact_id()::text::bigint');
$node->safe_psql('postgres', 'SELECT viewmig.abort()');
$node->safe_psql('postgres', "SELECT viewmig.prepare_initial(ARRAY['blog'])");
is($node->safe_psql('postgres', 'SELECT viewmig.replay_initial(workers => 2) > 0'), 't',
	'after the UPDATE of the HINT the restored event replays');
is($node->safe_psql('postgres', "SELECT count(*) FROM replay_schema.authors WHERE name = 'restored'"), '1',
	'... and its row is there');

# 4. The server never restarted.
is($node->safe_psql('postgres', 'SELECT pg_postmaster_start_time()'), $postmaster, 'the postmaster never restarted');
unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated/, 'no backend crashed');
$node->stop;
done_testing();
