# A database owner who is not a superuser sets the database's default search_path to a schema of
# its own, whose operators and functions shadow pg_catalog's and note every call. viewmig's
# background processes — the launcher, job workers (as the bootstrap superuser until they take the
# job's role), replay workers and schema-migration workers — connect with that default, yet none
# of them may ever run the database owner's code: each pins search_path for its own SQL.
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
install_blog($node, authors => 30, posts_per_author => 3);
require_job_queue($node);
require_schema_migrations($node);
wait_for_launcher($node);

$node->safe_psql(
	'postgres', q{
CREATE ROLE dbowner LOGIN;
ALTER DATABASE postgres OWNER TO dbowner;
CREATE TABLE public.trap_calls (backend_type text, role name, at timestamptz DEFAULT clock_timestamp());
GRANT INSERT, SELECT ON public.trap_calls TO PUBLIC;
CREATE TABLE public.migrated (id int, a int);
INSERT INTO public.migrated SELECT g, g % 7 FROM generate_series(1, 1000) g;
});
$node->safe_psql(
	'postgres', q{
CREATE SCHEMA trap;
CREATE FUNCTION trap.note() RETURNS void LANGUAGE sql AS $$
    INSERT INTO public.trap_calls (backend_type, role)
    SELECT backend_type, current_user FROM pg_catalog.pg_stat_activity WHERE pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
$$;
CREATE FUNCTION trap.texteq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM trap.note(); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION trap.int8eq(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM trap.note(); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION trap.int4eq(a int, b int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM trap.note(); RETURN a OPERATOR(pg_catalog.=) b; END $$;
CREATE OPERATOR trap.= (FUNCTION = trap.texteq, LEFTARG = text, RIGHTARG = text);
CREATE OPERATOR trap.= (FUNCTION = trap.int8eq, LEFTARG = bigint, RIGHTARG = bigint);
CREATE OPERATOR trap.= (FUNCTION = trap.int4eq, LEFTARG = int, RIGHTARG = int);
CREATE FUNCTION trap.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN PERFORM trap.note(); RETURN pg_catalog.now(); END $$;
GRANT USAGE ON SCHEMA trap TO PUBLIC;
ALTER DATABASE postgres SET search_path = trap, public, pg_catalog;
}, extra_params => [ '-U', 'dbowner' ]);

# The trap is real: a superuser's own query in a new session runs it.
$node->safe_psql('postgres', q{SELECT count(*) FROM pg_class WHERE relname::text = 'trap_calls'::text});
is($node->safe_psql('postgres', q{SELECT count(*) > 0 FROM public.trap_calls WHERE backend_type OPERATOR(pg_catalog.=) 'client backend'}),
	't', 'the database default search_path reaches a new session of the superuser');

# Under PostgreSQL 15 schema public belongs to the database owner, who could put a better-matching
# function there: the superuser's projector, registered with public in its search_path, refuses to
# run (as the owner, it would run the database owner's code), until public is the superuser's again.
my $refused = enqueue_job($node, 'replay', { projectors => ['blog'], auto_complete => JSON::PP::true }, max_attempts => 1);
job_is($node, $refused, 'failed', 'the superuser\'s replay refuses while the database owner owns public');
like(job_field($node, $refused, 'last_error'), qr/schema public in its search_path, where its owner dbowner may create objects/,
	'... saying why');
$node->safe_psql('postgres', q{SELECT viewmig.abort(); ALTER SCHEMA public OWNER TO postgres; CREATE SCHEMA ops AUTHORIZATION dbowner;});

# Work of every kind of viewmig process.
my $job = enqueue_job($node, 'replay', { projectors => ['blog'], workers => 2, auto_complete => JSON::PP::true });
job_is($node, $job, 'succeeded', 'a replay job with two replay workers succeeds');
my $sm = $node->safe_psql('postgres',
	q{SELECT viewmig.add_index_in_background('public.migrated', ARRAY['a'], name => 'migrated_a_idx')});
ok( $node->poll_query_until(
		'postgres', "SELECT status OPERATOR(pg_catalog.=) 'succeeded'::text FROM viewmig.background_schema_migrations WHERE id OPERATOR(pg_catalog.=) $sm"),
	'a background index build succeeds');
is($node->safe_psql('postgres', q{SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.migrated_a_idx'::regclass}),
	't', 'its index is valid');
$node->safe_psql('postgres', q{SELECT viewmig.prepare_initial(ARRAY['blog']); SELECT viewmig.replay_initial(workers => 2); SELECT viewmig.abort();});

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM public.trap_calls WHERE backend_type LIKE 'viewmig%'}),
	'0', 'no viewmig process ever ran the database owner\'s operators or functions');
note('trap calls by backend type: '
	  . $node->safe_psql('postgres', q{SELECT string_agg(DISTINCT backend_type, ', ') FROM public.trap_calls}));

# viewmig.throttle_function is chosen by a superuser, but lives in a schema the database owner
# owns: it drops the function and creates its own under the same name. The
# launcher runs it as the bootstrap superuser no more: migrations stay throttled, with a WARNING.
$node->safe_psql('postgres', q{
CREATE FUNCTION ops.busy() RETURNS boolean LANGUAGE sql AS 'SELECT false';
ALTER SYSTEM SET viewmig.throttle_function = 'ops.busy';
SELECT pg_reload_conf();
});
$node->safe_psql('postgres', q{
DROP FUNCTION ops.busy();
CREATE FUNCTION ops.busy() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN PERFORM trap.note(); RETURN false; END $$;
}, extra_params => [ '-U', 'dbowner' ]);
my $throttled = $node->safe_psql('postgres',
	q{SELECT viewmig.add_index_in_background('public.migrated', ARRAY['id'], name => 'migrated_id_idx')});
ok( $node->poll_query_until(
		'postgres', "SELECT count(*) > 0 FROM viewmig.schema_migration_events WHERE migration_id OPERATOR(pg_catalog.=) $throttled"),
	'the launcher sees the new migration');
sleep(3);
is($node->safe_psql('postgres', "SELECT status FROM viewmig.background_schema_migrations WHERE id OPERATOR(pg_catalog.=) $throttled"),
	'enqueued', 'a throttle function the database owner replaced keeps the migration waiting');
like(slurp_file($node->logfile), qr/throttle_function ops\.busy is not owned by a superuser/,
	'the launcher logs why');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM public.trap_calls WHERE backend_type LIKE 'viewmig%'}),
	'0', 'the database owner\'s throttle function never ran in a viewmig process');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET viewmig.throttle_function; SELECT pg_reload_conf();});
ok( $node->poll_query_until(
		'postgres', "SELECT status OPERATOR(pg_catalog.=) 'succeeded'::text FROM viewmig.background_schema_migrations WHERE id OPERATOR(pg_catalog.=) $throttled"),
	'without the throttle function it runs');

$node->stop;
done_testing();
