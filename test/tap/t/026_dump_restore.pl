# Backups (issue 14, class 12): viewmig's configuration is marked with pg_extension_config_dump,
# so pg_dump carries it and a restore into a new database goes on as before -- the live
# projection trigger (restored with the event table) finds its projectors, a full replay works,
# and queued schema migrations are still queued. Transient state (replays in progress, jobs,
# finished schema migrations, retired projector versions) is left out on purpose.
#
# Database 'origin' gets an event store; projectors of every kind (plain and live, batch and live,
# declarative and live, one with a pending version and a retired one); view-schema DDL, version
# definitions and a migrated version; a delayed background schema migration, a succeeded one and
# a cancelled one; a queued job; and a replay left prepared (its replay schema is viewmig's).
# Then:
#  1. pg_dump -Fc | pg_restore into 'postgres' (the launcher's database): the configuration is
#     there, the transient state is not; inserts are projected live; a full replay
#     (prepare_initial -> replay_initial -> prepare_completion -> complete) equals a rebuild from
#     scratch; the delayed migration is still delayed, and the launcher runs it once it is due.
#  2. the same dump with pg_restore --single-transaction, and 3. a plain pg_dump | psql
#     (ON_ERROR_STOP): both restore without an error, with the same configuration, and inserts work.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;
use ViewmigTAP;

my $node = viewmig_node('main');
$node->start;
my $fixtures = fixtures_dir();

# ---- The original database. ----
$node->safe_psql('postgres', 'CREATE DATABASE origin');
$node->safe_psql('origin', qq{
CREATE EXTENSION viewmig;
\\i $fixtures/blog.sql
\\i $fixtures/declarative.sql
\\i $fixtures/compare.sql
});
$node->safe_psql('origin', <<'SQL');
CREATE TABLE view_schema.event_counts (aggregate_id uuid PRIMARY KEY, n int NOT NULL);
CREATE FUNCTION public.count_batch(events public.event_records[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_counts AS c (aggregate_id, n)
    SELECT e.aggregate_id, count(*) FROM unnest(events) e GROUP BY 1
    ON CONFLICT (aggregate_id) DO UPDATE SET n = c.n + EXCLUDED.n;
END $$;
SELECT viewmig.set_event_store('event_records');
-- blog: version 1 (plain) is retired by version 2 (live) once a replay completes; version 3 is
-- pending, with its replay left prepared.
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[]);
SELECT viewmig.register_projector('counts', 'count_batch(event_records[])',
    ARRAY['view_schema.event_counts']::regclass[], mode => 'batch', live => true);
SELECT viewmig.register_declarative_projector('decl3', public.decl3_rules(),
    ARRAY['view_schema.d_seen', 'view_schema.d_log']::regclass[], live => true);
SELECT blog_events(1, 30, 3);
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[], live => true);
SQL
# Makes blog version 2 active (and version 1 retired), with an archive schema of viewmig's.
my $full_replay = q{
SELECT viewmig.prepare_initial();
SELECT viewmig.replay_initial();
SELECT viewmig.prepare_completion();
SELECT viewmig.complete();
};
$node->safe_psql('origin', $full_replay);
$node->safe_psql('origin', <<'SQL');
SELECT blog_events(31, 10, 3);  -- projected live
SELECT viewmig.register_projector('blog', 'blog_projector(event_records)',
    ARRAY['view_schema.authors', 'view_schema.posts', 'view_schema.post_tags']::regclass[],
    live => true, event_types => ARRAY['AuthorCreated', 'PostDrafted', 'PostTagged', 'PostPublished']);
-- View-schema DDL, a version definition, the version create_view_tables records.
SELECT viewmig.define_table_sql('notes', 'CREATE TABLE notes%SUFFIX% (id uuid CONSTRAINT notes_pk%SUFFIX% PRIMARY KEY, body text)');
SELECT viewmig.define_table_sql('d_seen', 'CREATE TABLE d_seen%SUFFIX% (aggregate_id uuid CONSTRAINT d_seen_pk%SUFFIX% PRIMARY KEY, events int NOT NULL, last_type text)');
SELECT viewmig.define_table_sql('d_log', 'CREATE TABLE d_log%SUFFIX% (line bigserial CONSTRAINT d_log_pk%SUFFIX% PRIMARY KEY, aggregate_id uuid NOT NULL, event_type text NOT NULL)');
SELECT viewmig.define_view_schema_version(1, ARRAY['decl3']);
SELECT viewmig.create_view_tables();
-- Schema migrations: one delayed by a day, one run to the end, one cancelled.
SELECT viewmig.add_index_in_background('view_schema.authors', ARRAY['name'], name => 'authors_name_idx',
                                       run_after => now() + interval '1 day');
SELECT viewmig.add_index_in_background('view_schema.posts', ARRAY['title'], name => 'posts_title_plain_idx');
SELECT viewmig.run_background_schema_migrations();
SELECT viewmig.cancel_schema_migration(viewmig.add_index_in_background('view_schema.posts', ARRAY['published'],
                                                                       name => 'posts_published_idx'));
-- A delayed migration on a partitioned table: a composite row and one row per partition.
CREATE TABLE public.measurements (id int NOT NULL, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE public.measurements_2025 PARTITION OF public.measurements FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.measurements_2026 PARTITION OF public.measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT viewmig.add_index_in_background('public.measurements', ARRAY['id'], name => 'measurements_id_idx',
                                       run_after => now() + interval '1 day');
-- A delayed migration whose table is dropped afterwards: not dumped (its OID would name nothing,
-- or another table, in the restored database).
CREATE TABLE public.doomed (x int);
SELECT viewmig.add_index_in_background('public.doomed', ARRAY['x'], name => 'doomed_x_idx', run_after => now() + interval '1 day');
DROP TABLE public.doomed;
-- A queued job (the launcher serves database postgres only, so it stays queued).
SELECT viewmig.enqueue('replay_increment');
SQL
$node->safe_psql('origin', 'SELECT viewmig.prepare_initial()');   # left prepared: a replay in progress
# A row for a schema that is gone (dropped behind viewmig's back): not dumped, so it can never
# claim a schema that gets that OID in the restored database.
$node->safe_psql('origin', q{INSERT INTO viewmig.owned_schemas VALUES ('4000000000'::oid::regnamespace, 'gone', 'archive')});

# What the configuration looks like, as text that does not depend on OIDs.
my $config_sql = q{
SELECT 'event_store: ' || events::text || ' ' || aggregate_id_column FROM viewmig.event_store
UNION ALL SELECT * FROM (SELECT 'projector: ' || projector || ' v' || version || ' ' || status || ' ' || mode || ' live='
                                || live || ' ' || handler::text || ' ' || coalesce(event_types::text, '')
                         FROM viewmig.projector_versions WHERE status <> 'retired' ORDER BY projector, version) p
UNION ALL SELECT * FROM (SELECT 'owned: ' || schema_oid::text || ' ' || schema_name || ' ' || purpose
                         FROM viewmig.owned_schemas WHERE schema_oid::oid IN (SELECT oid FROM pg_namespace) ORDER BY schema_name) o
UNION ALL SELECT * FROM (SELECT 'table ddl: ' || view_schema || '.' || table_name || ' by ' || defined_by::text
                         FROM viewmig.table_definitions ORDER BY table_name) t
UNION ALL SELECT * FROM (SELECT 'version def: ' || version || ' ' || projectors::text FROM viewmig.view_schema_version_definitions ORDER BY 1) d
UNION ALL SELECT 'view schema version: ' || viewmig.current_view_schema_version()
UNION ALL SELECT * FROM (SELECT 'schema migration: ' || id || ' ' || migration_name || ' on ' || table_name::text || ' ' || status
                         || ' ' || run_as::text || ' due later=' || (run_after > now()) || ' parent=' || coalesce(parent_id::text, '-')
                         || ' composite=' || composite
                         FROM viewmig.background_schema_migrations WHERE status NOT IN ('succeeded', 'cancelled')
                           AND table_name::oid IN (SELECT oid FROM pg_class) ORDER BY id) m
};
my $config = $node->safe_psql('origin', $config_sql);
like($config, qr/^projector: blog v3 pending .* live=true blog_projector\(event_records\)/m, 'origin: blog v3 pending');
like($config, qr/^owned: replay_schema replay_schema replay$/m,   'origin: the prepared replay schema is viewmig\'s');
like($config, qr/^owned: archive_schema archive_schema archive$/m, 'origin: the archive schema is viewmig\'s');
like($config, qr/^schema migration: 1 authors_name_idx on view_schema\.authors delayed .* due later=true parent=- composite=false$/m,
	'origin: the delayed schema migration');
like($config, qr/^schema migration: 4 measurements_id_idx on measurements delayed .* composite=true\nschema migration: 5 measurements_id_idx on measurements delayed .* parent=4 composite=false\nschema migration: 6 measurements_2025_id_idx on measurements_2025 delayed .* parent=4 composite=false\nschema migration: 7 measurements_2026_id_idx on measurements_2026 delayed .* parent=4 composite=false$/m,
	'origin: the delayed composite schema migration');
is($node->safe_psql('origin', q{SELECT count(*) FROM viewmig.background_schema_migrations WHERE NOT table_name::oid IN (SELECT oid FROM pg_class)}),
	'1', 'origin: a migration whose table is gone');
is($node->safe_psql('origin', q{SELECT count(*) FROM viewmig.owned_schemas WHERE schema_name = 'gone'}), '1',
	'origin: an owned schema that is gone');
my $origin_blog_retired = $node->safe_psql('origin', q{SELECT count(*) FROM viewmig.projector_versions WHERE status = 'retired'});
cmp_ok($origin_blog_retired, '>', 0, 'origin has a retired projector version');

my $dump = $node->basedir . '/origin.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-d', 'origin', '-f', $dump ], 'pg_dump -Fc origin');
# The roles are global: pg_dumpall --globals-only would bring them; they exist in this cluster.

# Restores into $db with @restore (a command reading $dump or the plain dump), checking that it
# reports no error at all.
sub restore_ok
{
	my ($db, $label, @cmd) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db") unless $db eq 'postgres';
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr);
	ok($ok, "$label: exit status 0") or diag($stderr);
	unlike($stderr // '', qr/ERROR|error/, "$label: no error reported") or diag($stderr);
	return;
}

sub check_restored
{
	my ($db, $label) = @_;
	is($node->safe_psql($db, $config_sql), $config, "$label: the configuration is the same as in origin");
	is( $node->safe_psql($db, q{
SELECT (SELECT count(*) FROM viewmig.replays) || ' replays, ' || (SELECT count(*) FROM viewmig.jobs) || ' jobs, '
       || (SELECT count(*) FROM viewmig.projector_versions WHERE status = 'retired') || ' retired, '
       || (SELECT count(*) FROM viewmig.background_schema_migrations) || ' schema migrations, '
       || (SELECT count(*) FROM viewmig.schema_migration_events) || ' migration events, '
       || (SELECT count(*) FROM viewmig.view_schema_migration_tables) || ' migration tables, '
       || (SELECT count(*) FROM viewmig.owned_schemas WHERE NOT schema_oid::oid IN (SELECT oid FROM pg_namespace)) || ' gone schemas'}),
		'0 replays, 0 jobs, 0 retired, 5 schema migrations, 0 migration events, 0 migration tables, 0 gone schemas',
		"$label: no transient state (nor rows naming objects that are gone)");
	is($node->safe_psql($db, q{SELECT count(*) FROM pg_trigger WHERE tgname = 'viewmig_live_projection'
                               AND tgrelid = 'public.event_records'::regclass}), '1', "$label: the live trigger is restored");
	# Live projection: every live projector sees the new events.
	my $before = $node->safe_psql($db,
		q{SELECT (SELECT count(*) FROM view_schema.authors) || '/' || (SELECT coalesce(sum(n), 0) FROM view_schema.event_counts)
                 || '/' || (SELECT count(*) FROM view_schema.d_log)});
	$node->safe_psql($db, 'SELECT blog_events(101, 5, 2)');
	my $after = $node->safe_psql($db,
		q{SELECT (SELECT count(*) FROM view_schema.authors) || '/' || (SELECT coalesce(sum(n), 0) FROM view_schema.event_counts)
                 || '/' || (SELECT count(*) FROM view_schema.d_log)});
	my ($a0, $c0, $l0) = split m{/}, $before;
	is($after, join('/', $a0 + 5, $c0 + 5 + 5 * 2 * 2 + 5, $l0 + 5 * 2 * 2),
		"$label: inserts into the event table are projected live by the blog, batch and declarative projectors");
	# The id sequence goes on after the restored migrations.
	cmp_ok($node->safe_psql($db, q{SELECT last_value FROM viewmig.background_schema_migrations_id_seq}), '>=', 8,
		"$label: the schema migrations' id sequence was restored");
	return;
}

# ---- 1. pg_restore into the launcher's database. ----
restore_ok('postgres', 'pg_restore', 'pg_restore', '-d', $node->connstr('postgres'), $dump);
check_restored('postgres', 'pg_restore');

# The delayed migration is still delayed, and the launcher runs it once it is due. (Before the
# replay: complete() moves the tables a queued migration names to the archive schema.)
is($node->safe_psql('postgres', q{SELECT status || ' ' || (run_after > now()) FROM viewmig.background_schema_migrations WHERE id = 1}),
	'delayed true', 'the delayed schema migration is still delayed');
wait_for_launcher($node);
$node->safe_psql('postgres', q{UPDATE viewmig.background_schema_migrations SET run_after = now() WHERE id = 1});
sm_is($node, 1, 'succeeded', 'the launcher runs the restored migration once it is due');
is(index_state($node, 'authors_name_idx'), 'valid', 'its index is built');
my $next = $node->safe_psql('postgres',
	q{SELECT viewmig.add_index_in_background('view_schema.posts', ARRAY['title'], name => 'posts_title_plain_idx')});
cmp_ok($next, '>', 8, 'a new schema migration gets an id after the restored ones');
$node->safe_psql('postgres', "SELECT viewmig.cancel_schema_migration($next)");

# A full replay in the restored database (the restored replay schema is viewmig's to re-create).
$node->safe_psql('postgres', $full_replay);
is($node->safe_psql('postgres', q{SELECT state FROM viewmig.replays ORDER BY id DESC LIMIT 1}), 'completed',
	'a full replay completes in the restored database');
is($node->safe_psql('postgres', q{SELECT version || ' ' || status FROM viewmig.projector_versions WHERE projector = 'blog' ORDER BY version}),
	"2 retired\n3 active", 'the pending blog version became active');
tables_match_rebuild($node, 'view_schema', 'blog tables equal a rebuild from scratch after the restore and the replay');
$node->safe_psql('postgres', q{SELECT rebuild_from_scratch('view_schema', 'expected_decl3', ARRAY['d_seen', 'd_log'], 'decl3_reference')});
is($node->safe_psql('postgres', q{SELECT string_agg(table_name || ':' || only_in_a || ':' || only_in_b, ' ')
                                  FROM compare_schemas('view_schema', 'expected_decl3', ARRAY['d_seen', 'd_log'])}),
	'd_seen:0:0 d_log:0:0', 'declarative tables equal a rebuild from scratch');
is($node->safe_psql('postgres', q{SELECT count(*) || ' ' || sum(n) FROM view_schema.event_counts}),
	$node->safe_psql('postgres', q{SELECT count(DISTINCT aggregate_id) || ' ' || count(*) FROM event_records}),
	'the batch projector counted every event once');
# Live projection after the replay.
$node->safe_psql('postgres', 'SELECT blog_events(201, 3, 1)');
tables_match_rebuild($node, 'view_schema', 'blog tables equal a rebuild after more live inserts');

# ---- 2. pg_restore --single-transaction; 3. plain pg_dump | psql. ----
restore_ok('one_tx', 'pg_restore --single-transaction', 'pg_restore', '--single-transaction', '--exit-on-error',
	'-d', $node->connstr('one_tx'), $dump);
check_restored('one_tx', 'pg_restore --single-transaction');
my $plain = $node->basedir . '/origin.sql';
$node->command_ok([ 'pg_dump', '-d', 'origin', '-f', $plain ], 'pg_dump (plain) origin');
restore_ok('plain', 'plain dump | psql', 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('plain'), '-f', $plain);
check_restored('plain', 'plain dump | psql');
$node->safe_psql('plain', $full_replay);
is($node->safe_psql('plain', q{SELECT state FROM viewmig.replays ORDER BY id DESC LIMIT 1}), 'completed',
	'a full replay completes in the database restored from the plain dump');

# ---- 4. A database owner who is not a superuser dumps a database of their own. ----
$node->safe_psql('postgres', q{CREATE ROLE viewmig_tenant LOGIN; CREATE DATABASE tenant OWNER viewmig_tenant});
$node->safe_psql('tenant', 'CREATE EXTENSION viewmig');
$node->safe_psql('tenant', q{
CREATE TABLE public.things (id int NOT NULL);
SELECT viewmig.add_index_in_background('public.things', ARRAY['id'], name => 'things_id_idx', run_after => now() + interval '1 day');
}, extra_params => [ '-U', 'viewmig_tenant' ]);
my $tenant_dump = $node->basedir . '/tenant.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-U', 'viewmig_tenant', '-d', 'tenant', '-f', $tenant_dump ],
	'pg_dump -Fc by the database owner (not a superuser): the configuration and its sequence are readable');
restore_ok('tenant_copy', 'pg_restore of the owner\'s dump', 'pg_restore', '-d', $node->connstr('tenant_copy'), $tenant_dump);
is($node->safe_psql('tenant_copy', q{SELECT migration_name || ' ' || status || ' ' || run_as::text FROM viewmig.background_schema_migrations}),
	'things_id_idx delayed viewmig_tenant', 'the owner\'s delayed migration is restored, to run as the owner');

$node->stop;
done_testing();
