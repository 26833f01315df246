# A streaming standby preloading viewmig: its launcher sees the database in recovery, says so once
# in the log and does nothing; jobs enqueued on the primary run on the primary (and replicate).
# After promotion the former standby's launcher starts working: a job enqueued there succeeds.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use ViewmigTAP;

my $recovery_line = qr/viewmig launcher[^\n]*recovery|recovery[^\n]*viewmig launcher/;

my $primary = viewmig_node('primary', allows_streaming => 1);
$primary->start;
install_blog($primary, authors => 30, posts_per_author => 2);
require_job_queue($primary);
wait_for_launcher($primary, 'the primary\'s launcher runs');

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
$standby->wait_for_log($recovery_line);
pass('the standby\'s launcher logged that the database is in recovery');

# A job enqueued on the primary runs there.
my $id = enqueue_job($primary, 'replay', { projectors => ['blog'], batch_size => 50, auto_complete => JSON::PP::true });
job_is($primary, $id, 'succeeded', 'the primary runs the job');
tables_match_rebuild($primary, 'view_schema', 'primary: view tables equal a rebuild from scratch');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', "SELECT status FROM viewmig.jobs WHERE id = $id"), 'succeeded',
	'the standby sees the job succeeded (replicated)');
is( $standby->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type IN ('viewmig job', 'viewmig worker')}),
	'0', 'the standby started no job or replay worker');
my @lines = PostgreSQL::Test::Utils::slurp_file($standby->logfile) =~ /$recovery_line/g;
is(scalar @lines, 1, 'the recovery message is logged once, not once per naptime');
ok(!$standby->log_contains(qr/read-only transaction/), 'the standby\'s launcher tried no write');

# Promotion: the former standby's launcher starts working.
$standby->promote;
ok($standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()'), 'the standby is promoted');
wait_for_launcher($standby, 'the promoted standby\'s launcher runs');
$standby->safe_psql('postgres', 'SELECT blog_events(31, 5, 2)');
my $id2 = enqueue_job($standby, 'replay', { projectors => ['blog'], batch_size => 50, auto_complete => JSON::PP::true });
job_is($standby, $id2, 'succeeded', 'a job enqueued on the promoted standby succeeds');
is(job_field($standby, $id2, 'attempts'), '1', 'in one attempt');
tables_match_rebuild($standby, 'view_schema', 'promoted standby: view tables equal a rebuild from scratch');
is($primary->safe_psql('postgres', "SELECT count(*) FROM viewmig.jobs WHERE id = $id2"), '0',
	'the old primary never saw that job');

$standby->stop;
$primary->stop;
done_testing();
