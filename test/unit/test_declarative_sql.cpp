// SQL generated from a declarative projector's Plan (src/core/declarative_sql.hpp): the PL/pgSQL
// row-path handler, the replay scan's value columns, and the engine's reads, updates and deletes
// of shared rows. Every identifier double-quoted, every value CAST to the column's base type,
// every constant a literal. Uses declarative_test_support.hpp's blog schema.
#include "core/declarative_sql.hpp"

#include "declarative_test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace viewmig::core {
namespace {

using namespace decl_test;

std::size_t count(const std::string& text, const std::string& part) {
    std::size_t n = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
    return n;
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE((text).find(part), std::string::npos) << "wanted: " << (part) << "\nin:\n" << (text)

// JSON path sources as the handler reads them.
const std::string kAuthorId = "CAST(CAST((viewmig_event.\"event_json\" #>> ARRAY['author_id']::text[]) AS uuid) AS uuid)";
const std::string kAggregate = "CAST(viewmig_event.\"aggregate_id\" AS uuid)";
const std::string kCreated = "CAST(viewmig_event.\"created_at\" AS timestamp with time zone)";

// ---- quoting ------------------------------------------------------------------------------------

TEST(DeclarativeSql, Identifiers) {
    EXPECT_EQ(sql_ident("posts"), "\"posts\"");
    EXPECT_EQ(sql_ident("Mixed Case"), "\"Mixed Case\"");
    EXPECT_EQ(sql_ident("we\"ird"), "\"we\"\"ird\"");
    EXPECT_EQ(sql_ident("\"\""), "\"\"\"\"\"\"");
    EXPECT_EQ(sql_ident(""), "\"\"");
    EXPECT_EQ(sql_ident("select"), "\"select\"");
}

TEST(DeclarativeSql, Literals) {
    EXPECT_EQ(sql_literal("abc"), "'abc'");
    EXPECT_EQ(sql_literal(""), "''");
    EXPECT_EQ(sql_literal("it's"), "'it''s'");
    EXPECT_EQ(sql_literal("''"), "''''''");
    // A backslash makes it an E'' string, where the backslash is doubled: right whatever
    // standard_conforming_strings says.
    EXPECT_EQ(sql_literal("a\\b"), "E'a\\\\b'");
    EXPECT_EQ(sql_literal("it's a \\ test"), "E'it''s a \\\\ test'");
    EXPECT_EQ(sql_literal("\\'"), "E'\\\\'''");
    EXPECT_EQ(sql_literal("a\nb\"c$d"), "'a\nb\"c$d'");
    EXPECT_EQ(sql_literal("caf\xC3\xA9"), "'caf\xC3\xA9'");
}

// ---- the row-path handler -----------------------------------------------------------------------

class BlogSql : public ::testing::Test {
protected:
    Plan plan = compile_blog(blog_rules());
    std::string handler = handler_sql(plan, "viewmig_h.\"fn\"", "public.events");
};

TEST_F(BlogSql, HandlerIsAPlpgsqlFunctionOfTheEventRow) {
    EXPECT_EQ(handler.rfind(
                  "CREATE OR REPLACE FUNCTION viewmig_h.\"fn\"(viewmig_event public.events) RETURNS void LANGUAGE plpgsql AS "
                  "$viewmig$\nBEGIN\n    CASE viewmig_event.\"event_type\"::text\n",
                  0),
              0u)
        << handler;
    const std::string end = "    ELSE NULL;\n    END CASE;\nEND\n$viewmig$";
    ASSERT_GE(handler.size(), end.size());
    EXPECT_EQ(handler.substr(handler.size() - end.size()), end);
    EXPECT_EQ(count(handler, "$viewmig$"), 2u);
}

TEST_F(BlogSql, HandlerHasOneBranchPerEventTypeInOrder) {
    std::vector<std::size_t> at;
    for (const char* t : {"AuthorRegistered", "AuthorRemoved", "PostDeleted", "PostDrafted", "PostPublished", "PostRetitled",
                          "PostTagged"}) {
        const std::string when = std::string("    WHEN '") + t + "' THEN\n";
        EXPECT_EQ(count(handler, when), 1u) << t;
        at.push_back(handler.find(when));
    }
    EXPECT_TRUE(std::is_sorted(at.begin(), at.end()));
    // Each statement follows a comment naming its rule, in rule order.
    const std::size_t d0 = handler.find("-- PostDrafted[0]\n        INSERT INTO \"posts\"");
    const std::size_t d1 = handler.find("-- PostDrafted[1]\n        UPDATE \"authors\"");
    const std::size_t d2 = handler.find("-- PostDrafted[2]\n        INSERT INTO \"author_stats\"");
    EXPECT_NE(d0, std::string::npos);
    EXPECT_LT(d0, d1);
    EXPECT_LT(d1, d2);
    EXPECT_NE(d2, std::string::npos);
}

TEST_F(BlogSql, HandlerInsert) {
    EXPECT_CONTAINS(handler, "INSERT INTO \"posts\" (\"id\", \"author_id\", \"title\") VALUES (" + kAggregate + ", " + kAuthorId +
                                 ", CAST((viewmig_event.\"event_json\" #>> ARRAY['title']::text[]) AS text));\n");
    // Append-only: the volatile-default column is left out.
    EXPECT_CONTAINS(handler, "INSERT INTO \"post_tags\" (\"post_id\", \"tag\") VALUES (" + kAggregate +
                                 ", CAST((viewmig_event.\"event_json\" #>> ARRAY['tag']::text[]) AS text));\n");
}

TEST_F(BlogSql, HandlerUpdates) {
    EXPECT_CONTAINS(handler, "UPDATE \"authors\" AS r SET \"post_count\" = r.\"post_count\" + CAST(1 AS integer) WHERE r.\"id\" = " +
                                 kAuthorId + ";\n");
    EXPECT_CONTAINS(handler, "UPDATE \"authors\" AS r SET \"post_count\" = r.\"post_count\" - CAST(1 AS integer) WHERE r.\"id\" = " +
                                 kAuthorId + ";\n");
    EXPECT_CONTAINS(handler, "UPDATE \"posts\" AS r SET \"published\" = CAST(true AS boolean), \"published_at\" = " + kCreated +
                                 " WHERE r.\"id\" = " + kAggregate + ";\n");
    EXPECT_CONTAINS(handler, "UPDATE \"posts\" AS r SET \"tag_count\" = r.\"tag_count\" + CAST(1 AS integer) WHERE r.\"id\" = " +
                                 kAggregate + ";\n");
}

TEST_F(BlogSql, HandlerUpsertIsInsertOnConflictDoUpdate) {
    EXPECT_CONTAINS(handler, "INSERT INTO \"author_stats\" AS r (\"author_id\", \"events\", \"last_event_at\") VALUES (" + kAuthorId +
                                 ", CAST(1 AS integer), " + kCreated +
                                 ") ON CONFLICT (\"author_id\") DO UPDATE SET \"events\" = r.\"events\" + CAST(1 AS integer), "
                                 "\"last_event_at\" = greatest(r.\"last_event_at\", " +
                                 kCreated + ");\n");
}

TEST_F(BlogSql, HandlerDelete) {
    EXPECT_CONTAINS(handler, "DELETE FROM \"posts\" AS r WHERE r.\"id\" = " + kAggregate + ";\n");
    EXPECT_CONTAINS(handler, "DELETE FROM \"authors\" AS r WHERE r.\"id\" = " + kAggregate + ";\n");
}

TEST(DeclarativeSql, HandlerLeastSubtractAndUpsertWithoutSet) {
    const Plan plan = compile_blog(R"({"E": [
      {"update": "author_stats", "key": {"author_id": "aggregate_id"}, "set": {"events": {"subtract": "$.n::int"}, "last_event_at": {"least": "created_at"}}},
      {"upsert": "authors", "key": {"id": "$.a::uuid"}, "values": {"name": {"value": "O'Reilly"}}}
    ]})");
    const std::string h = handler_sql(plan, "f", "t");
    EXPECT_CONTAINS(h, "\"events\" = r.\"events\" - CAST(CAST((viewmig_event.\"event_json\" #>> ARRAY['n']::text[]) AS integer) AS integer)");
    EXPECT_CONTAINS(h, "\"last_event_at\" = least(r.\"last_event_at\", " + kCreated + ")");
    EXPECT_CONTAINS(h, "INSERT INTO \"authors\" AS r (\"id\", \"name\") VALUES (CAST(CAST((viewmig_event.\"event_json\" #>> "
                       "ARRAY['a']::text[]) AS uuid) AS uuid), CAST('O''Reilly' AS text)) ON CONFLICT (\"id\") DO UPDATE SET "
                       "\"name\" = CAST('O''Reilly' AS text);\n");
}

TEST(DeclarativeSql, HandlerConstants) {
    const Plan plan = compile_blog(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"},
      "set": {"title": {"value": "a\\b 'q'"}, "tag_count": -7, "published": false, "published_at": null}}]})");
    const std::string h = handler_sql(plan, "f", "t");
    EXPECT_CONTAINS(h, "\"title\" = CAST(E'a\\\\b ''q''' AS text)");
    EXPECT_CONTAINS(h, "\"tag_count\" = CAST(-7 AS integer)");
    EXPECT_CONTAINS(h, "\"published\" = CAST(false AS boolean)");
    EXPECT_CONTAINS(h, "\"published_at\" = CAST(NULL AS timestamp with time zone)");
}

TEST(DeclarativeSql, HandlerCompositeKeys) {
    RuleContext ctx = blog_context();
    TableInfo lines;
    lines.name = "lines";
    lines.columns = {uuid_column("order_id", true), int_column("line", 32, true), text_column("sku")};
    lines.unique_keys = {{"order_id", "line"}};
    ctx.tables = {lines};
    const Plan plan = compile_rules(R"({
      "Added": [{"upsert": "lines", "key": {"line": "$.line::int", "order_id": "aggregate_id"}, "values": {"sku": "$.sku"}}],
      "Removed": [{"delete": "lines", "key": {"order_id": "aggregate_id", "line": "$.line::int"}}]})",
                                    ctx, FakeTypes());
    const std::string h = handler_sql(plan, "f", "t");
    const std::string line = "CAST(CAST((viewmig_event.\"event_json\" #>> ARRAY['line']::text[]) AS integer) AS integer)";
    // The key columns come first, as the rule lists them; ON CONFLICT names the unique key.
    EXPECT_CONTAINS(h, "INSERT INTO \"lines\" AS r (\"line\", \"order_id\", \"sku\") VALUES (" + line + ", " + kAggregate +
                           ", CAST((viewmig_event.\"event_json\" #>> ARRAY['sku']::text[]) AS text)) ON CONFLICT (\"order_id\", "
                           "\"line\") DO UPDATE SET \"sku\" = ");
    EXPECT_CONTAINS(h, "DELETE FROM \"lines\" AS r WHERE r.\"order_id\" = " + kAggregate + " AND r.\"line\" = " + line + ";\n");
}

TEST(DeclarativeSql, HandlerQuotesEveryName) {
    RuleContext ctx = blog_context();
    TableInfo t;
    t.name = "we\"ird";
    t.columns = {uuid_column("Id\"", true), text_column("Note Text")};
    t.unique_keys = {{"Id\""}};
    ctx.tables = {t};
    ctx.event_columns = {{"agg\"id", "uuid"}, {"Type", "text"}, {"data\"x", "jsonb"}};
    ctx.aggregate_id_column = "agg\"id";
    ctx.event_type_column = "Type";
    ctx.json_column = "data\"x";
    const Plan plan = compile_rules(R"({"It's": [{"upsert": "we\"ird", "key": {"Id\"": "agg\"id"},
                                                  "values": {"Note Text": "$.it's.a\\b"}}]})",
                                    ctx, FakeTypes());
    const std::string h = handler_sql(plan, "f", "t");
    EXPECT_CONTAINS(h, "CASE viewmig_event.\"Type\"::text\n");
    EXPECT_CONTAINS(h, "    WHEN 'It''s' THEN\n");
    EXPECT_CONTAINS(h, "INSERT INTO \"we\"\"ird\" AS r (\"Id\"\"\", \"Note Text\") VALUES (CAST(viewmig_event.\"agg\"\"id\" AS uuid), "
                       "CAST((viewmig_event.\"data\"\"x\" #>> ARRAY['it''s', E'a\\\\b']::text[]) AS text)) ON CONFLICT (\"Id\"\"\") "
                       "DO UPDATE SET \"Note Text\" = ");
    const int src = source_index(plan, "$.it's.a\\b");
    EXPECT_EQ(scan_column_sql(plan, src, "ev"), "CASE WHEN ev.\"Type\"::text IN ('It''s') THEN CAST((ev.\"data\"\"x\" #>> "
                                                "ARRAY['it''s', E'a\\\\b']::text[]) AS text)::text END");
}

TEST(DeclarativeSql, HandlerDollarQuoteAvoidsTheBody) {
    const Plan one = compile_blog(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": {"value": "$viewmig$"}}}]})");
    const std::string h1 = handler_sql(one, "f", "t");
    EXPECT_CONTAINS(h1, "LANGUAGE plpgsql AS $viewmig_$\n");
    EXPECT_EQ(h1.substr(h1.size() - 11), "\n$viewmig_$");
    EXPECT_EQ(count(h1, "$viewmig_$"), 2u);
    const Plan two = compile_blog(
        R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": {"value": "$viewmig$ $viewmig_$"}}}]})");
    const std::string h2 = handler_sql(two, "f", "t");
    EXPECT_CONTAINS(h2, "LANGUAGE plpgsql AS $viewmig__$\n");
    EXPECT_EQ(count(h2, "$viewmig__$"), 2u);
    // An event type can hold the tag too.
    const Plan three = compile_blog(R"({"$viewmig$": [{"delete": "posts", "key": {"id": "aggregate_id"}}]})");
    EXPECT_CONTAINS(handler_sql(three, "f", "t"), "AS $viewmig_$\n");
}

TEST(DeclarativeSql, HandlerCommentsCanNotEndEarly) {
    const Plan plan = compile_blog(R"({"E\nDELETE FROM posts; --": [{"delete": "authors", "key": {"id": "aggregate_id"}}],
                                       "F\r\nSELECT 1; --": [{"delete": "authors", "key": {"id": "aggregate_id"}}]})");
    const std::string h = handler_sql(plan, "f", "t");
    // The comment naming rule "<event type>[0]" stays one line: its tail must not start a line of
    // its own. (The line break inside the WHEN '...' string literal is harmless.)
    EXPECT_EQ(h.find("\nDELETE FROM posts; --[0]"), std::string::npos) << h;
    EXPECT_EQ(h.find("\nSELECT 1; --[0]"), std::string::npos) << h;
    EXPECT_EQ(count(h, "DELETE FROM \"authors\""), 2u);
}

// ---- the engine's SQL ---------------------------------------------------------------------------

TEST_F(BlogSql, SourceValues) {
    EXPECT_EQ(source_value_sql(plan, source_index(plan, "aggregate_id"), "e"), "CAST(e.\"aggregate_id\" AS uuid)");
    EXPECT_EQ(source_value_sql(plan, source_index(plan, "$.author_id"), "e"),
              "CAST(CAST((e.\"event_json\" #>> ARRAY['author_id']::text[]) AS uuid) AS uuid)");
    EXPECT_EQ(source_value_sql(plan, source_index(plan, "=1"), "x"), "CAST(1 AS integer)");
    EXPECT_EQ(source_value_sql(plan, source_index(plan, "=true"), "x"), "CAST(true AS boolean)");
}

TEST_F(BlogSql, ScanColumnsAreNullForEventTypesThatDoNotReadThem) {
    EXPECT_EQ(scan_column_sql(plan, source_index(plan, "$.author_id"), "e"),
              "CASE WHEN e.\"event_type\"::text IN ('PostDeleted', 'PostDrafted') THEN CAST(CAST((e.\"event_json\" #>> "
              "ARRAY['author_id']::text[]) AS uuid) AS uuid)::text END");
    EXPECT_EQ(scan_column_sql(plan, source_index(plan, "$.name"), "e"),
              "CASE WHEN e.\"event_type\"::text IN ('AuthorRegistered') THEN CAST((e.\"event_json\" #>> "
              "ARRAY['name']::text[]) AS text)::text END");
    EXPECT_EQ(scan_column_sql(plan, source_index(plan, "=1"), "e"),
              "CASE WHEN e.\"event_type\"::text IN ('PostDeleted', 'PostDrafted', 'PostTagged') THEN CAST(1 AS integer)::text END");
    // Timestamps leave the scan binary (see scan_timestamp_text).
    EXPECT_EQ(scan_column_sql(plan, source_index(plan, "created_at"), "e"),
              "CASE WHEN e.\"event_type\"::text IN ('PostDrafted', 'PostPublished') THEN timestamptz_send("
              "CAST(e.\"created_at\" AS timestamp with time zone)) END");
    // Another alias.
    EXPECT_EQ(scan_column_sql(plan, source_index(plan, "$.tag"), "ev"),
              "CASE WHEN ev.\"event_type\"::text IN ('PostTagged') THEN CAST((ev.\"event_json\" #>> ARRAY['tag']::text[]) AS "
              "text)::text END");
}

TEST_F(BlogSql, EngineForm) {
    const auto& posts = plan.tables[table_index(plan, "posts")].info.columns;
    EXPECT_EQ(engine_form_sql(posts[0], "r"), "r.\"id\"::text");
    EXPECT_EQ(engine_form_sql(posts[3], "r"), "r.\"tag_count\"::text");
    EXPECT_EQ(engine_form_sql(posts[5], "r"), "(extract(epoch FROM r.\"published_at\") * 1000000)::int8::text");
    EXPECT_EQ(from_engine_form_sql(posts[0], "u.c0"), "CAST(u.c0 AS uuid)");
    EXPECT_EQ(from_engine_form_sql(posts[3], "u.c1"), "CAST(u.c1 AS integer)");
    EXPECT_EQ(from_engine_form_sql(posts[5], "u.c2"), "(timestamptz 'epoch' + CAST(u.c2 AS int8) * interval '1 microsecond')");
    ColumnInfo plain = posts[5];
    plain.timestamp_with_zone = false;
    plain.base_type = "timestamp without time zone";
    EXPECT_EQ(from_engine_form_sql(plain, "x"), "(timestamp 'epoch' + CAST(x AS int8) * interval '1 microsecond')");
}

TEST_F(BlogSql, SelectRows) {
    const CompiledTable& authors = plan.tables[table_index(plan, "authors")];
    EXPECT_EQ(select_rows_sql(authors),
              "SELECT r.\"id\"::text, r.\"name\"::text, r.\"post_count\"::text FROM \"authors\" AS r WHERE (r.\"id\") IN "
              "(SELECT CAST(u.c0 AS uuid) FROM unnest($1::text[]) AS u(c0))");
    const CompiledTable& stats = plan.tables[table_index(plan, "author_stats")];
    EXPECT_EQ(select_rows_sql(stats).rfind("SELECT r.\"author_id\"::text, r.\"events\"::text, (extract(epoch FROM "
                                                  "r.\"last_event_at\") * 1000000)::int8::text FROM \"author_stats\" AS r",
                                                  0),
              0u);
}

TEST(DeclarativeSql, SelectRowsByACompositeTimestampKey) {
    CompiledTable t;
    t.info.name = "slots";
    t.info.columns = {text_column("room", true), timestamptz_column("starts", true), text_column("who")};
    t.key_columns = {0, 1};
    EXPECT_EQ(select_rows_sql(t),
              "SELECT r.\"room\"::text, (extract(epoch FROM r.\"starts\") * 1000000)::int8::text, r.\"who\"::text FROM \"slots\" "
              "AS r WHERE (r.\"room\", r.\"starts\") IN (SELECT CAST(u.c0 AS text), (timestamptz 'epoch' + CAST(u.c1 AS int8) * "
              "interval '1 microsecond') FROM unnest($1::text[], $2::text[]) AS u(c0, c1))");
}

TEST_F(BlogSql, UpdateAndDeleteRows) {
    const CompiledTable& authors = plan.tables[table_index(plan, "authors")];
    EXPECT_EQ(update_rows_sql(authors, {0, 1, 2}),
              "UPDATE \"authors\" AS r SET \"name\" = CAST(u.c1 AS text), \"post_count\" = CAST(u.c2 AS integer) FROM "
              "unnest($1::text[], $2::text[], $3::text[]) AS u(c0, c1, c2) WHERE r.\"id\" = CAST(u.c0 AS uuid)");
    EXPECT_EQ(update_rows_sql(authors, {0, 2}),
              "UPDATE \"authors\" AS r SET \"post_count\" = CAST(u.c1 AS integer) FROM unnest($1::text[], $2::text[]) AS "
              "u(c0, c1) WHERE r.\"id\" = CAST(u.c0 AS uuid)");
    EXPECT_EQ(delete_rows_sql(authors, {0}),
              "DELETE FROM \"authors\" AS r USING unnest($1::text[]) AS u(c0) WHERE r.\"id\" = CAST(u.c0 AS uuid)");
    // Updates carry values in the columns' input format (see Changes): a timestamp is CAST from its text.
    const CompiledTable& stats = plan.tables[table_index(plan, "author_stats")];
    EXPECT_EQ(update_rows_sql(stats, {0, 1, 2}),
              "UPDATE \"author_stats\" AS r SET \"events\" = CAST(u.c1 AS integer), \"last_event_at\" = CAST(u.c2 AS timestamp "
              "with time zone) FROM unnest($1::text[], $2::text[], $3::text[]) AS u(c0, c1, c2) WHERE r.\"author_id\" = "
              "CAST(u.c0 AS uuid)");
}

TEST(DeclarativeSql, UpdateAndDeleteRowsByACompositeKey) {
    CompiledTable t;
    t.info.name = "lines";
    t.info.columns = {uuid_column("order_id", true), int_column("line", 32, true), text_column("sku")};
    t.key_columns = {0, 1};
    EXPECT_EQ(update_rows_sql(t, {0, 1, 2}),
              "UPDATE \"lines\" AS r SET \"sku\" = CAST(u.c2 AS text) FROM unnest($1::text[], $2::text[], $3::text[]) AS "
              "u(c0, c1, c2) WHERE r.\"order_id\" = CAST(u.c0 AS uuid) AND r.\"line\" = CAST(u.c1 AS integer)");
    EXPECT_EQ(delete_rows_sql(t, {0, 1}),
              "DELETE FROM \"lines\" AS r USING unnest($1::text[], $2::text[]) AS u(c0, c1) WHERE r.\"order_id\" = CAST(u.c0 "
              "AS uuid) AND r.\"line\" = CAST(u.c1 AS integer)");
}

}  // namespace
}  // namespace viewmig::core

namespace viewmig::core {
TEST(DeclarativeSqlScan, TimestampsLeaveTheScanAsTheirSendBytes) {
    // 2000-01-01 00:00:00 UTC is PostgreSQL's epoch: zero on the wire, 946684800 s after 1970.
    EXPECT_EQ(scan_timestamp_text(std::string(8, '\0')), std::optional<std::string>("946684800000000"));
    // One microsecond before it: all bits set.
    EXPECT_EQ(scan_timestamp_text(std::string(8, '\xff')), std::optional<std::string>("946684799999999"));
    // 2024-01-01 00:00:00.000001 UTC = 757382400000001 us after 2000 = 0x0002B0DE_76B7A001... built big-endian.
    const int64_t v = 757382400000001LL;
    std::string bytes;
    for (int i = 7; i >= 0; --i) bytes += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
    EXPECT_EQ(scan_timestamp_text(bytes), std::optional<std::string>(std::to_string(v + 946684800000000LL)));
    EXPECT_EQ(format_timestamp(v + 946684800000000LL, true), "2024-01-01 00:00:00.000001+00");
    EXPECT_EQ(scan_timestamp_text("short"), std::nullopt);
}
}  // namespace viewmig::core
