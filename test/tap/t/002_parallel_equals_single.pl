# replay_initial(workers => 2) and replay_initial(workers => 1) over the same events build the
# same tables, and both equal a rebuild from scratch. The blog projector's post events upsert
# their author's row, so two workers meet on shared rows (lock conflicts, batches replayed again):
# the result must not depend on it. Needs no launcher.
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
my $events = install_blog($node, authors => 200, posts_per_author => 4);
cmp_ok($events, '>', 2000, "the event store holds $events events");

my $tables = 'ARRAY[' . join(', ', map {"'$_'"} @BLOG_TABLES) . ']';

# 1. Two workers, small groups so that both have work.
$node->safe_psql('postgres', q{SELECT viewmig.prepare_initial(ARRAY['blog'])});
is($node->safe_psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 100, workers => 2)'),
	$events, 'replay_initial(workers => 2) replays every event');
is( $node->safe_psql(
		'postgres',
		q{SELECT groups_total > 2 AND groups_done = groups_total AND events_done = (SELECT count(*) FROM event_records)
          FROM viewmig.status ORDER BY id DESC LIMIT 1}),
	't', 'workers => 2: every group done, every event counted');
tables_match_rebuild($node, 'replay_schema', 'workers => 2: replay tables equal a rebuild from scratch');

# Keep the parallel result; start over with one worker on the same events.
$node->safe_psql('postgres',
	"CREATE SCHEMA parallel_result;\n"
	  . join('', map {"CREATE TABLE parallel_result.$_ AS SELECT * FROM replay_schema.$_;\n"} @BLOG_TABLES)
	  . 'SELECT viewmig.abort();');

# 2. One worker.
$node->safe_psql('postgres', q{SELECT viewmig.prepare_initial(ARRAY['blog'])});
is($node->safe_psql('postgres', 'SELECT viewmig.replay_initial(batch_size => 100, workers => 1)'),
	$events, 'replay_initial(workers => 1) replays every event');
tables_match_rebuild($node, 'replay_schema', 'workers => 1: replay tables equal a rebuild from scratch');

# 3. The two results row for row (serial columns aside, as compare_schemas does).
my $want = join("\n",
	map { my $n = $node->safe_psql('postgres', "SELECT count(*) FROM replay_schema.$_"); "$_|$n|0|0" }
	  @BLOG_TABLES);
is( $node->safe_psql(
		'postgres',
		"SELECT table_name || '|' || row_count || '|' || only_in_a || '|' || only_in_b "
		  . "FROM compare_schemas('replay_schema', 'parallel_result', $tables)"),
	$want, 'workers => 2 and workers => 1 build identical tables');

# 4. Both replays ran to the end without leaving workers behind.
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'viewmig worker'}),
	'0', 'no viewmig worker is left');

$node->stop;
done_testing();
