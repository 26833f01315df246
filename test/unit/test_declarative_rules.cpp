// Declarative projector rules (src/core/declarative_rules.hpp): the rules JSON checked against the
// managed tables (declarative_test_support.hpp's blog schema, with a fake TypeOracle) and compiled
// into a Plan. Every mistake is a RuleError whose `where` names the rule and member at fault.
#include "core/declarative_rules.hpp"

#include "declarative_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace viewmig::core {
namespace {

using namespace decl_test;

struct CaughtError {
    std::string where, message, hint;
};

// The RuleError compiling `rules` raises (over `ctx`), or a failure if it compiles.
CaughtError rule_error(const std::string& rules, const RuleContext& ctx = blog_context()) {
    try {
        compile_rules(rules, ctx, FakeTypes());
    } catch (const RuleError& e) {
        return {e.where, e.what(), e.hint};
    }
    ADD_FAILURE() << "compiled: " << rules;
    return {};
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

#define EXPECT_RULE_ERROR(rules, expected_where, message_part)                              \
    do {                                                                                    \
        const CaughtError e_ = rule_error(rules);                                           \
        EXPECT_EQ(e_.where, expected_where) << e_.message;                                  \
        EXPECT_TRUE(contains(e_.message, message_part)) << e_.message << "\n  wanted: " << (message_part); \
    } while (0)

// A valid PostDrafted insert for rules that test something else.
const std::string kDraft =
    R"({"insert": "posts", "values": {"id": "aggregate_id", "author_id": "$.author_id::uuid", "title": "$.title"}})";

// ---- a valid plan -------------------------------------------------------------------------------

TEST(DeclarativeRules, BlogPlanTableModesAndKeys) {
    const Plan plan = compile_blog(blog_rules());
    ASSERT_EQ(plan.tables.size(), 4u);
    const CompiledTable& posts = plan.tables[table_index(plan, "posts")];
    const CompiledTable& authors = plan.tables[table_index(plan, "authors")];
    const CompiledTable& tags = plan.tables[table_index(plan, "post_tags")];
    const CompiledTable& stats = plan.tables[table_index(plan, "author_stats")];
    EXPECT_EQ(posts.mode, TableMode::Partitioned);
    EXPECT_EQ(authors.mode, TableMode::Shared);
    EXPECT_EQ(tags.mode, TableMode::AppendOnly);
    EXPECT_EQ(stats.mode, TableMode::Shared);
    EXPECT_EQ(posts.key_columns, std::vector<int>{0});
    EXPECT_EQ(authors.key_columns, std::vector<int>{0});
    EXPECT_TRUE(tags.key_columns.empty());
    EXPECT_EQ(stats.key_columns, std::vector<int>{0});
    EXPECT_EQ(plan.aggregate_id_column, "aggregate_id");
    EXPECT_EQ(plan.event_type_column, "event_type");
    EXPECT_EQ(plan.json_column, "event_json");
    // The table infos are carried over unchanged.
    EXPECT_EQ(posts.info.columns.size(), 6u);
    EXPECT_EQ(posts.info.columns[3].default_text, "0");
}

TEST(DeclarativeRules, TableModeNames) {
    EXPECT_STREQ(table_mode_name(TableMode::Partitioned), "partitioned");
    EXPECT_STREQ(table_mode_name(TableMode::AppendOnly), "append-only");
    EXPECT_STREQ(table_mode_name(TableMode::Shared), "shared");
}

TEST(DeclarativeRules, EventTypesAreSortedAndFoundByOpsFor) {
    const Plan plan = compile_blog(blog_rules());
    std::vector<std::string> names;
    for (const auto& et : plan.event_types) names.push_back(et.event_type);
    EXPECT_EQ(names, (std::vector<std::string>{"AuthorRegistered", "AuthorRemoved", "PostDeleted", "PostDrafted",
                                               "PostPublished", "PostRetitled", "PostTagged"}));
    ASSERT_NE(plan.ops_for("PostDrafted"), nullptr);
    EXPECT_EQ(plan.ops_for("PostDrafted")->ops.size(), 3u);
    EXPECT_EQ(plan.ops_for("PostDrafted")->ops[1].where, "PostDrafted[1]");
    EXPECT_EQ(plan.ops_for("Unknown"), nullptr);
    EXPECT_EQ(plan.ops_for(""), nullptr);
    EXPECT_EQ(plan.ops_for("postdrafted"), nullptr);
    EXPECT_EQ(plan.ops_for("PostDraftedX"), nullptr);
    EXPECT_EQ(plan.ops_for("Zzz"), nullptr);
}

TEST(DeclarativeRules, CompiledOps) {
    const Plan plan = compile_blog(blog_rules());
    const int posts = table_index(plan, "posts"), authors = table_index(plan, "authors"),
              stats = table_index(plan, "author_stats");
    const int agg = source_index(plan, "aggregate_id", "uuid"), author = source_index(plan, "$.author_id", "uuid"),
              title = source_index(plan, "$.title"), created = source_index(plan, "created_at"),
              one = source_index(plan, "=1");

    // insert: values as written, key sources from the values.
    const CompiledOp& draft = plan.ops_for("PostDrafted")->ops[0];
    EXPECT_EQ(draft.kind, OpKind::Insert);
    EXPECT_EQ(draft.table, posts);
    ASSERT_EQ(draft.values.size(), 3u);
    EXPECT_EQ(draft.values[0].column, 0);
    EXPECT_EQ(draft.values[0].source, agg);
    EXPECT_EQ(draft.values[1].column, 1);
    EXPECT_EQ(draft.values[1].source, author);
    EXPECT_EQ(draft.values[2].column, 2);
    EXPECT_EQ(draft.values[2].source, title);
    EXPECT_EQ(draft.key_sources, std::vector<int>{agg});
    EXPECT_TRUE(draft.set.empty());

    // increment: an update adding 1 (a constant source).
    const CompiledOp& inc = plan.ops_for("PostDrafted")->ops[1];
    EXPECT_EQ(inc.kind, OpKind::Update);
    EXPECT_EQ(inc.table, authors);
    EXPECT_EQ(inc.key_sources, std::vector<int>{author});
    ASSERT_EQ(inc.set.size(), 1u);
    EXPECT_EQ(inc.set[0].column, 2);
    EXPECT_EQ(inc.set[0].action, Action::Add);
    EXPECT_EQ(inc.set[0].source, one);

    // upsert: the key columns join the values in front; set as written.
    const CompiledOp& up = plan.ops_for("PostDrafted")->ops[2];
    EXPECT_EQ(up.kind, OpKind::Upsert);
    EXPECT_EQ(up.table, stats);
    ASSERT_EQ(up.values.size(), 3u);
    EXPECT_EQ(up.values[0].column, 0);
    EXPECT_EQ(up.values[0].source, author);
    EXPECT_EQ(up.values[1].column, 1);
    EXPECT_EQ(up.values[1].source, one);
    EXPECT_EQ(up.values[2].column, 2);
    EXPECT_EQ(up.values[2].source, created);
    ASSERT_EQ(up.set.size(), 2u);
    EXPECT_EQ(up.set[0].action, Action::Add);
    EXPECT_EQ(up.set[0].source, one);
    EXPECT_EQ(up.set[1].action, Action::Greatest);
    EXPECT_EQ(up.set[1].column, 2);
    EXPECT_EQ(up.set[1].source, created);

    // decrement: an update subtracting 1; delete: just the key.
    const EventTypeOps* deleted = plan.ops_for("PostDeleted");
    ASSERT_NE(deleted, nullptr);
    EXPECT_EQ(deleted->ops[0].kind, OpKind::Delete);
    EXPECT_EQ(deleted->ops[0].key_sources, std::vector<int>{agg});
    EXPECT_TRUE(deleted->ops[0].values.empty());
    EXPECT_TRUE(deleted->ops[0].set.empty());
    EXPECT_EQ(deleted->ops[1].kind, OpKind::Update);
    ASSERT_EQ(deleted->ops[1].set.size(), 1u);
    EXPECT_EQ(deleted->ops[1].set[0].action, Action::Subtract);
    EXPECT_EQ(deleted->ops[1].set[0].source, one);

    // append-only insert: no key sources.
    const CompiledOp& tag = plan.ops_for("PostTagged")->ops[0];
    EXPECT_EQ(tag.kind, OpKind::Insert);
    EXPECT_TRUE(tag.key_sources.empty());
    EXPECT_EQ(tag.values.size(), 2u);
}

TEST(DeclarativeRules, SourcesAreSharedAcrossRulesAndEventTypes) {
    const Plan plan = compile_blog(blog_rules());
    const SourceExpr& agg = plan.sources[source_index(plan, "aggregate_id", "uuid")];
    EXPECT_EQ(agg.source.kind, Source::Kind::EventColumn);
    EXPECT_EQ(agg.source.column, "aggregate_id");
    EXPECT_EQ(agg.source.type, "uuid");
    EXPECT_EQ(agg.kind, ValueKind::Text);
    EXPECT_EQ(agg.event_types, (std::vector<std::string>{"AuthorRegistered", "AuthorRemoved", "PostDeleted", "PostDrafted",
                                                         "PostPublished", "PostRetitled", "PostTagged"}));
    const SourceExpr& author = plan.sources[source_index(plan, "$.author_id")];
    EXPECT_EQ(author.source.kind, Source::Kind::JsonPath);
    EXPECT_EQ(author.source.path, std::vector<std::string>{"author_id"});
    EXPECT_EQ(author.source.cast, "uuid");
    EXPECT_EQ(author.source.type, "uuid");
    EXPECT_EQ(author.event_types, (std::vector<std::string>{"PostDeleted", "PostDrafted"}));
    // $.title into posts.title, read by PostDrafted and PostRetitled.
    const SourceExpr& title = plan.sources[source_index(plan, "$.title")];
    EXPECT_EQ(title.source.type, "text");
    EXPECT_TRUE(title.source.cast.empty());
    EXPECT_EQ(title.event_types, (std::vector<std::string>{"PostDrafted", "PostRetitled"}));
    // created_at into timestamptz columns: engine kind Timestamp.
    const SourceExpr& created = plan.sources[source_index(plan, "created_at")];
    EXPECT_EQ(created.kind, ValueKind::Timestamp);
    EXPECT_TRUE(created.timestamp_with_zone);
    EXPECT_EQ(created.base_type, "timestamp with time zone");
    EXPECT_EQ(created.event_types, (std::vector<std::string>{"PostDrafted", "PostPublished"}));
    // The constant 1 into integer columns.
    const SourceExpr& one = plan.sources[source_index(plan, "=1")];
    EXPECT_EQ(one.kind, ValueKind::Integer);
    EXPECT_EQ(one.base_type, "integer");
    EXPECT_EQ(one.event_types, (std::vector<std::string>{"PostDeleted", "PostDrafted", "PostTagged"}));
    // Each (source, base type) pair appears once.
    for (std::size_t i = 0; i < plan.sources.size(); ++i)
        for (std::size_t j = i + 1; j < plan.sources.size(); ++j)
            EXPECT_FALSE(source_name(plan.sources[i].source) == source_name(plan.sources[j].source) &&
                         plan.sources[i].source.cast == plan.sources[j].source.cast &&
                         plan.sources[i].base_type == plan.sources[j].base_type)
                << source_name(plan.sources[i].source);
}

TEST(DeclarativeRules, OneSourcePerColumnBaseType) {
    // aggregate_id into a uuid column and into a text column: two scan columns.
    const Plan plan = compile_blog(R"({"E": [{"insert": "posts", "values": {"id": "aggregate_id", "author_id": "aggregate_id",
                                                                          "title": "aggregate_id::text"}}]})");
    EXPECT_EQ(source_index(plan, "aggregate_id", "uuid"), 0);
    const SourceExpr& text = plan.sources[source_index(plan, "aggregate_id", "text")];
    EXPECT_EQ(text.source.cast, "text");
    EXPECT_EQ(plan.sources.size(), 2u);
    EXPECT_EQ(plan.ops_for("E")->ops[0].values[1].source, 0);
}

TEST(DeclarativeRules, Constants) {
    const Plan plan = compile_blog(R"({"E": [
      {"insert": "posts", "values": {"id": "aggregate_id", "author_id": "aggregate_id", "title": {"value": "it's"},
                                     "tag_count": 42, "published": true, "published_at": null}},
      {"upsert": "author_stats", "key": {"author_id": "aggregate_id"}, "values": {"events": 12345678901, "last_event_at": {"value": null}},
       "set": {"events": -7}}
    ]})");
    const SourceExpr& title = plan.sources[source_index(plan, "=it's")];
    EXPECT_EQ(title.source.kind, Source::Kind::Constant);
    EXPECT_TRUE(title.source.constant_is_string);
    EXPECT_EQ(title.source.type, "unknown");
    const SourceExpr& n = plan.sources[source_index(plan, "=42")];
    EXPECT_FALSE(n.source.constant_is_string);
    EXPECT_EQ(n.source.type, "integer");
    EXPECT_EQ(plan.sources[source_index(plan, "=12345678901")].source.type, "bigint");
    EXPECT_EQ(plan.sources[source_index(plan, "=-7")].source.type, "integer");
    const SourceExpr& b = plan.sources[source_index(plan, "=true")];
    EXPECT_EQ(b.source.type, "boolean");
    EXPECT_EQ(b.source.constant, "true");
    // Both nulls are timestamptz NULLs here: one source.
    const SourceExpr& null = plan.sources[source_index(plan, "=null")];
    EXPECT_FALSE(null.source.constant.has_value());
    EXPECT_EQ(null.source.type, "unknown");
    EXPECT_EQ(null.base_type, "timestamp with time zone");
    // A non-integral number is numeric (assignable to an integer column, as in PostgreSQL).
    const Plan numeric = compile_blog(
        R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"tag_count": 2.5e1}}]})");
    EXPECT_EQ(numeric.sources[source_index(numeric, "=2.5e1")].source.type, "numeric");
}

TEST(DeclarativeRules, JsonPathsAndCasts) {
    const Plan plan = compile_blog(R"({"E": [{"update": "posts", "key": {"id": "$.post.id::uuid"},
      "set": {"title": "$.a.b.c", "tag_count": "$.counts.tags::int", "published_at": "$.at::timestamptz",
              "author_id": "$.author::uuid"}}]})");
    const SourceExpr& id = plan.sources[source_index(plan, "$.post.id")];
    EXPECT_EQ(id.source.path, (std::vector<std::string>{"post", "id"}));
    EXPECT_EQ(plan.sources[source_index(plan, "$.a.b.c")].source.path, (std::vector<std::string>{"a", "b", "c"}));
    const SourceExpr& tags = plan.sources[source_index(plan, "$.counts.tags")];
    EXPECT_EQ(tags.source.cast, "integer");
    EXPECT_EQ(tags.kind, ValueKind::Integer);
    EXPECT_EQ(plan.sources[source_index(plan, "$.at")].source.cast, "timestamp with time zone");
    // Keyed by a JSON path, not the aggregate: shared.
    EXPECT_EQ(plan.tables[0].mode, TableMode::Shared);
    // An event column with an explicit cast it can take.
    const Plan cast = compile_blog(
        R"({"E": [{"update": "author_stats", "key": {"author_id": "aggregate_id"}, "set": {"events": "sequence_number::int"}}]})");
    EXPECT_EQ(cast.sources[source_index(cast, "sequence_number")].source.cast, "integer");
}

TEST(DeclarativeRules, UpsertSetDefaultsToItsValues) {
    const Plan plan = compile_blog(R"({"E": [{"upsert": "authors", "key": {"id": "aggregate_id"}, "values": {"name": "$.name"}}]})");
    const CompiledOp& op = plan.ops_for("E")->ops[0];
    ASSERT_EQ(op.values.size(), 2u);
    EXPECT_EQ(op.values[0].column, 0);  // the key, first
    EXPECT_EQ(op.values[1].column, 1);
    ASSERT_EQ(op.set.size(), 1u);  // the values without the key
    EXPECT_EQ(op.set[0].column, 1);
    EXPECT_EQ(op.set[0].action, Action::Set);
    EXPECT_EQ(op.set[0].source, op.values[1].source);
    EXPECT_EQ(plan.tables[1].mode, TableMode::Partitioned);
}

TEST(DeclarativeRules, IncrementByAndAssignmentActions) {
    const Plan plan = compile_blog(R"({"E": [
      {"increment": "authors", "key": {"id": "aggregate_id"}, "column": "post_count", "by": "$.n::int"},
      {"decrement": "authors", "key": {"id": "aggregate_id"}, "column": "post_count", "by": 3},
      {"update": "author_stats", "key": {"author_id": "aggregate_id"},
       "set": {"events": {"subtract": 2}, "last_event_at": {"least": "created_at"}}},
      {"update": "posts", "key": {"id": "aggregate_id"}, "set": {"tag_count": {"greatest": "$.tags::int"}}}
    ]})");
    const auto& ops = plan.ops_for("E")->ops;
    EXPECT_EQ(ops[0].set[0].action, Action::Add);
    EXPECT_EQ(ops[0].set[0].source, source_index(plan, "$.n"));
    EXPECT_EQ(ops[1].set[0].action, Action::Subtract);
    EXPECT_EQ(ops[1].set[0].source, source_index(plan, "=3"));
    EXPECT_EQ(ops[2].set[0].action, Action::Subtract);
    EXPECT_EQ(ops[2].set[1].action, Action::Least);
    EXPECT_EQ(ops[3].set[0].action, Action::Greatest);
}

TEST(DeclarativeRules, InsertOnlyTablesAreKeyedByAUniqueKeyEveryInsertFills) {
    // Filled with the aggregate id: partitioned.
    Plan plan = compile_blog(R"({"A": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.name"}}],
                                 "B": [{"insert": "authors", "values": {"id": "aggregate_id", "name": {"value": "x"}}}]})");
    EXPECT_EQ(plan.tables[1].mode, TableMode::Partitioned);
    EXPECT_EQ(plan.tables[1].key_columns, std::vector<int>{0});
    EXPECT_EQ(plan.ops_for("B")->ops[0].key_sources, std::vector<int>{source_index(plan, "aggregate_id")});
    // Filled from the JSON: shared (a duplicate may come from another aggregate).
    plan = compile_blog(R"({"A": [{"insert": "authors", "values": {"id": "$.id::uuid", "name": "$.name"}}]})");
    EXPECT_EQ(plan.tables[1].mode, TableMode::Shared);
    EXPECT_EQ(plan.tables[1].key_columns, std::vector<int>{0});
    // One filled from the aggregate, one not: shared.
    plan = compile_blog(R"({"A": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.name"}}],
                            "B": [{"insert": "authors", "values": {"id": "$.id::uuid", "name": "$.name"}}]})");
    EXPECT_EQ(plan.tables[1].mode, TableMode::Shared);
    // The key left to its (volatile) default: append-only.
    plan = compile_blog(R"({"A": [{"insert": "post_tags", "values": {"post_id": "aggregate_id", "tag": "$.tag"}}],
                            "B": [{"insert": "post_tags", "values": {"line": "$.line::int", "tag": "$.tag"}}]})");
    EXPECT_EQ(plan.tables[2].mode, TableMode::AppendOnly);
    EXPECT_TRUE(plan.tables[2].key_columns.empty());
    // ... but keyed when every insert sets it.
    plan = compile_blog(R"({"B": [{"insert": "post_tags", "values": {"line": "$.line::int", "tag": "$.tag"}}]})");
    EXPECT_EQ(plan.tables[2].key_columns, std::vector<int>{0});
    EXPECT_EQ(plan.tables[2].mode, TableMode::Shared);
}

TEST(DeclarativeRules, PartitionedOnlyWhenEveryRuleFindsRowsByTheAggregate) {
    // The blog's posts rules, plus one finding a post by a JSON path.
    const Plan plan = compile_blog(
        R"({"A": [)" + kDraft + R"(], "B": [{"update": "posts", "key": {"id": "$.post_id::uuid"}, "set": {"title": "$.t"}}]})");
    EXPECT_EQ(plan.tables[0].mode, TableMode::Shared);
    // A cast aggregate id does not count as the aggregate id.
    const Plan cast = compile_blog(R"({"A": [{"delete": "posts", "key": {"id": "aggregate_id::uuid"}}]})");
    EXPECT_EQ(cast.tables[0].mode, TableMode::Shared);
    // Composite keys: partitioned as long as the aggregate id is one of the key's values.
    RuleContext ctx = blog_context();
    TableInfo lines;
    lines.name = "lines";
    lines.columns = {uuid_column("order_id", true), int_column("line", 32, true), text_column("sku")};
    lines.unique_keys = {{"order_id", "line"}};
    ctx.tables.push_back(lines);
    const Plan composite = compile_rules(
        R"({"A": [{"upsert": "lines", "key": {"line": "$.line::int", "order_id": "aggregate_id"}, "values": {"sku": "$.sku"}}]})",
        ctx, FakeTypes());
    EXPECT_EQ(composite.tables[4].mode, TableMode::Partitioned);
    EXPECT_EQ(composite.tables[4].key_columns, (std::vector<int>{0, 1}));
    // key_sources follow key_columns, not the order the rule wrote them in.
    const CompiledOp& op = composite.ops_for("A")->ops[0];
    EXPECT_EQ(op.key_sources, (std::vector<int>{source_index(composite, "aggregate_id"), source_index(composite, "$.line")}));
}

TEST(DeclarativeRules, TablesNoRuleTouchesAreLeftAlone) {
    const Plan plan = compile_blog(R"({"A": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.name"}}]})");
    EXPECT_TRUE(plan.tables[0].key_columns.empty());
    EXPECT_TRUE(plan.tables[3].key_columns.empty());
}

// ---- errors pointing at the rule ----------------------------------------------------------------

TEST(DeclarativeRules, RulesMustBeAnObjectOfNonEmptyArrays) {
    EXPECT_RULE_ERROR("[]", "rules", "must be a JSON object, not array");
    EXPECT_RULE_ERROR("{}", "rules", "at least one event type");
    EXPECT_RULE_ERROR(R"({"PostDrafted": {}})", "PostDrafted", "non-empty JSON array");
    EXPECT_RULE_ERROR(R"({"PostDrafted": []})", "PostDrafted", "non-empty JSON array");
    EXPECT_RULE_ERROR(R"({"PostDrafted": ["insert"]})", "PostDrafted[0]", "a rule must be a JSON object");
    EXPECT_THROW(compile_blog("{"), JsonParseError);
}

TEST(DeclarativeRules, UnknownTable) {
    const CaughtError e = rule_error(R"({"PostDrafted": [{"insert": "postz", "values": {"id": "aggregate_id"}}]})");
    EXPECT_EQ(e.where, "PostDrafted[0].insert");
    EXPECT_TRUE(contains(e.message, "table \"postz\" is not a managed table")) << e.message;
    EXPECT_EQ(e.hint, "Managed tables: posts, authors, post_tags, author_stats.");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": 7, "key": {"id": "aggregate_id"}}]})", "E[0].delete", "table must be given as a string");
}

TEST(DeclarativeRules, UnknownColumn) {
    const CaughtError e = rule_error(
        R"({"PostDrafted": [{"insert": "posts", "values": {"id": "aggregate_id", "titel": "$.title"}}]})");
    EXPECT_EQ(e.where, "PostDrafted[0].values.titel");
    EXPECT_TRUE(contains(e.message, "table \"posts\" has no column \"titel\"")) << e.message;
    EXPECT_EQ(e.hint, "Its columns: id, author_id, title, tag_count, published, published_at.");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": {"uuid": "aggregate_id"}}]})", "E[0].key.uuid", "no column \"uuid\"");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"nope": 1}}]})", "E[0].set.nope",
                      "no column \"nope\"");
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "authors", "key": {"id": "aggregate_id"}, "column": "posts"}]})", "E[0].column",
                      "no column \"posts\"");
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "authors", "key": {"id": "aggregate_id"}, "column": 1}]})", "E[0].column",
                      "must be given as a string");
}

TEST(DeclarativeRules, UnknownEventColumn) {
    const CaughtError e = rule_error(
        R"({"PostDrafted": [{"insert": "posts", "values": {"id": "aggregate_id", "author_id": "$.a::uuid", "title": "headline"}}]})");
    EXPECT_EQ(e.where, "PostDrafted[0].values.title");
    EXPECT_TRUE(contains(e.message, "the event table has no column \"headline\"")) << e.message;
    EXPECT_TRUE(contains(e.hint, "Event columns: aggregate_id, sequence_number, event_type, created_at, event_json")) << e.hint;
    EXPECT_TRUE(contains(e.hint, "{\"value\": \"headline\"}")) << e.hint;
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": {"id": "aggregate::uuid"}}]})", "E[0].key.id",
                      "no column \"aggregate\"");
}

TEST(DeclarativeRules, TypeMismatchAsTheOracleSaysSo) {
    // A JSON path is text; text does not go into uuid without a cast.
    const CaughtError e = rule_error(
        R"({"PostDrafted": [{"insert": "posts", "values": {"id": "aggregate_id", "author_id": "$.author_id", "title": "$.t"}}]})");
    EXPECT_EQ(e.where, "PostDrafted[0].values.author_id");
    EXPECT_TRUE(contains(e.message, "a value of type text can not be stored in column \"author_id\" of table \"posts\" (uuid)"))
        << e.message;
    EXPECT_EQ(e.hint, "Cast the path: \"$.author_id::uuid\".");
    // integer -> boolean, event column uuid -> integer, a number constant -> uuid.
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"published": "$.flag::int"}}]})",
                      "E[0].set.published", "a value of type integer can not be stored");
    const CaughtError col = rule_error(
        R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"tag_count": "aggregate_id"}}]})");
    EXPECT_EQ(col.where, "E[0].set.tag_count");
    EXPECT_EQ(col.hint, "Cast it: \"...::integer\".");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": {"id": 5}}]})", "E[0].key.id", "a value of type integer");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": {"id": true}}]})", "E[0].key.id", "a value of type boolean");
    // An event column cast the oracle refuses.
    EXPECT_RULE_ERROR(
        R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"published": "sequence_number::boolean"}}]})",
        "E[0].set.published", "event column \"sequence_number\" of type bigint can not be cast to boolean");
    // A cast to a type that does not exist.
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.t::nosuchtype"}}]})",
                      "E[0].set.title", "type \"nosuchtype\" does not exist");
    // Untyped constants ('unknown') and NULL go anywhere.
    EXPECT_NO_THROW(compile_blog(
        R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"author_id": {"value": "0b4e..."}, "published_at": null}}]})"));
}

TEST(DeclarativeRules, AddAndSubtractNeedAnIntegerColumn) {
    const CaughtError e =
        rule_error(R"({"PostRetitled": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": {"add": 1}}}]})");
    EXPECT_EQ(e.where, "PostRetitled[0].set.title");
    EXPECT_TRUE(contains(e.message, "column \"title\" of table \"posts\" is text; add and subtract need an integer column"))
        << e.message;
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"published_at": {"subtract": 1}}}]})",
                      "E[0].set.published_at", "add and subtract need an integer column");
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "posts", "key": {"id": "aggregate_id"}, "column": "title"}]})", "E[0].by",
                      "add and subtract need an integer column");
    EXPECT_RULE_ERROR(R"({"E": [{"decrement": "posts", "key": {"id": "aggregate_id"}, "column": "published", "by": 2}]})",
                      "E[0].by", "add and subtract need an integer column");
}

TEST(DeclarativeRules, GreatestAndLeastNeedAnIntegerOrTimestampColumn) {
    const CaughtError e = rule_error(
        R"({"PostRetitled": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": {"greatest": "$.title"}}}]})");
    EXPECT_EQ(e.where, "PostRetitled[0].set.title");
    EXPECT_TRUE(contains(e.message, "greatest and least need an integer or timestamp column")) << e.message;
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"published": {"least": true}}}]})",
                      "E[0].set.published", "greatest and least need");
}

TEST(DeclarativeRules, MalformedAssignments) {
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"tag_count": {"multiply": 2}}}]})",
                      "E[0].set.tag_count", "an assignment is a value or");
    EXPECT_RULE_ERROR(
        R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"tag_count": {"add": 1, "subtract": 1}}}]})",
        "E[0].set.tag_count", "an assignment is a value or");
    // Actions belong in set, not in values or key.
    EXPECT_RULE_ERROR(R"({"E": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.n", "post_count": {"add": 1}}}]})",
                      "E[0].values.post_count", "a constant is written {\"value\": ...}");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": {"value": [1]}}}]})",
                      "E[0].set.title", "a constant must be a scalar");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": {"value": "a", "x": 1}}}]})",
                      "E[0].set.title", "a constant is written");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {}}]})", "E[0].set",
                      "must be a non-empty JSON object");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": "aggregate_id"}]})", "E[0].key", "must be a non-empty JSON object");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.a", "title": "$.b"}}]})",
                      "E[0].set.title", "assigned twice");
}

TEST(DeclarativeRules, AnArrayIsNoSource) {
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": ["$.t"]}}]})",
                      "E[0].set.title", "");
    EXPECT_RULE_ERROR(R"({"E": [{"insert": "authors", "values": {"id": "aggregate_id", "name": []}}]})", "E[0].values.name", "");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": {"id": ["aggregate_id"]}}]})", "E[0].key.id", "");
}

TEST(DeclarativeRules, JsonPathMistakes) {
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$"}}]})", "E[0].set.title",
                      "a JSON path is written");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$title"}}]})",
                      "E[0].set.title", "a JSON path is written");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.a..b"}}]})",
                      "E[0].set.title", "empty key in the JSON path");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.a."}}]})",
                      "E[0].set.title", "empty key in the JSON path");
    RuleContext ctx = blog_context();
    ctx.json_column.clear();
    const CaughtError e = rule_error(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.t"}}]})", ctx);
    EXPECT_EQ(e.where, "E[0].set.title");
    EXPECT_TRUE(contains(e.message, "no JSON column")) << e.message;
    EXPECT_TRUE(contains(e.hint, "json_column")) << e.hint;
}

TEST(DeclarativeRules, KeyMustBeAUniqueKey) {
    const CaughtError e = rule_error(
        R"({"PostDrafted": [)" + kDraft + R"(], "PostRetitled": [{"update": "posts", "key": {"author_id": "$.a::uuid"}, "set": {"title": "$.t"}}]})");
    EXPECT_EQ(e.where, "PostRetitled[0].key");
    EXPECT_TRUE(contains(e.message, "(author_id) is not the primary key or a unique key of NOT NULL columns of table \"posts\""))
        << e.message;
    // A superset of the key is no key either.
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": {"id": "aggregate_id", "title": "$.t"}}]})", "E[0].key",
                      "(id, title) is not the primary key");
}

TEST(DeclarativeRules, OneKeyPerTable) {
    const CaughtError e = rule_error(R"({"A": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.t"}}],
                                         "B": [{"delete": "posts", "key": {"author_id": "$.a::uuid"}}]})");
    EXPECT_EQ(e.where, "B[0].key");
    EXPECT_TRUE(contains(e.message, "rules find rows of table \"posts\" by different columns (here and in A[0])")) << e.message;
    // The same columns in another order are the same key.
    EXPECT_NO_THROW(compile_blog(R"({"A": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.t"}}],
                                     "B": [{"delete": "posts", "key": {"id": "$.id::uuid"}}]})"));
}

TEST(DeclarativeRules, NotNullColumnsWithoutDefaultMustBeSet) {
    const CaughtError e =
        rule_error(R"({"PostDrafted": [{"insert": "posts", "values": {"id": "aggregate_id", "author_id": "$.a::uuid"}}]})");
    EXPECT_EQ(e.where, "PostDrafted[0].values");
    EXPECT_TRUE(contains(e.message, "column \"title\" of table \"posts\" is NOT NULL and has no default")) << e.message;
    // Upserts too (their key counts as set).
    EXPECT_RULE_ERROR(R"({"E": [{"upsert": "authors", "key": {"id": "aggregate_id"}, "values": {"post_count": 1}}]})",
                      "E[0].values", "column \"name\" of table \"authors\" is NOT NULL");
    // Columns with a default (constant or volatile) may be left out.
    EXPECT_NO_THROW(compile_blog(R"({"E": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.n"}}],
                                     "F": [{"insert": "post_tags", "values": {"tag": "$.t"}}]})"));
    // Append-only inserts are checked as well.
    RuleContext ctx = blog_context();
    ctx.tables[2].columns[2].not_null = true;  // post_tags.tag
    const CaughtError tag = rule_error(R"({"E": [{"insert": "post_tags", "values": {"post_id": "aggregate_id"}}]})", ctx);
    EXPECT_EQ(tag.where, "E[0].values");
    EXPECT_TRUE(contains(tag.message, "\"tag\"")) << tag.message;
}

TEST(DeclarativeRules, InsertsMustSetTheKeyOtherRulesUse) {
    const CaughtError e = rule_error(R"({"A": [{"insert": "post_tags", "values": {"post_id": "aggregate_id", "tag": "$.t"}}],
                                         "B": [{"delete": "post_tags", "key": {"line": "$.line::int"}}]})");
    EXPECT_EQ(e.where, "A[0].values");
    EXPECT_TRUE(contains(e.message, "must set its key column \"line\"")) << e.message;
    EXPECT_EQ(e.hint, "Other rules find its rows by (line).");
}

TEST(DeclarativeRules, UnexpectedMember) {
    const CaughtError e = rule_error(R"({"PostDrafted": [{"insert": "posts", "values": {"id": "aggregate_id"}, "key": {"id": "aggregate_id"}}]})");
    EXPECT_EQ(e.where, "PostDrafted[0].key");
    EXPECT_TRUE(contains(e.message, "unexpected member \"key\" in a insert rule")) << e.message;
    EXPECT_EQ(e.hint, "Members of a insert rule: insert, values.");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "x"}}]})", "E[0].set",
                      "unexpected member \"set\" in a delete rule");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "values": {"title": "$.t"}}]})",
                      "E[0].values", "unexpected member \"values\" in a update rule");
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "authors", "key": {"id": "aggregate_id"}, "column": "post_count", "step": 2}]})",
                      "E[0].step", "unexpected member \"step\"");
    EXPECT_RULE_ERROR(R"({"E": [{"upsert": "authors", "key": {"id": "aggregate_id"}, "values": {"name": "$.n"}, "Set": {}}]})",
                      "E[0].Set", "unexpected member");
}

TEST(DeclarativeRules, ExactlyOneOperationPerRule) {
    EXPECT_RULE_ERROR(R"({"PostDrafted": [{"insert": "posts", "delete": "posts", "values": {"id": "aggregate_id"}}]})",
                      "PostDrafted[0]", "a rule has exactly one of insert, update");
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "authors", "decrement": "authors"}]})", "E[0]", "exactly one of");
    const CaughtError none = rule_error(R"({"E": [)" + kDraft + R"(, {"values": {"id": "aggregate_id"}}]})");
    EXPECT_EQ(none.where, "E[1]");
    EXPECT_TRUE(contains(none.message, "a rule needs one of insert")) << none.message;
    EXPECT_FALSE(none.hint.empty());
}

TEST(DeclarativeRules, RequiredMembers) {
    EXPECT_RULE_ERROR(R"({"E": [{"insert": "posts"}]})", "E[0]", "a insert rule needs \"values\"");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}}]})", "E[0]", "a update rule needs \"set\"");
    EXPECT_RULE_ERROR(R"({"E": [{"update": "posts", "set": {"title": "$.t"}}]})", "E[0]", "a update rule needs \"key\"");
    EXPECT_RULE_ERROR(R"({"E": [{"delete": "posts"}]})", "E[0]", "a delete rule needs \"key\"");
    EXPECT_RULE_ERROR(R"({"E": [{"upsert": "authors", "key": {"id": "aggregate_id"}}]})", "E[0]", "needs \"values\"");
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "authors", "key": {"id": "aggregate_id"}}]})", "E[0]", "needs \"column\"");
}

TEST(DeclarativeRules, KeyColumnsBelongInKeyOnly) {
    EXPECT_RULE_ERROR(R"({"PostRetitled": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"id": "$.new::uuid"}}]})",
                      "PostRetitled[0].set", "key column \"id\" can not be changed by an update");
    EXPECT_RULE_ERROR(
        R"({"E": [{"upsert": "authors", "key": {"id": "aggregate_id"}, "values": {"id": "aggregate_id", "name": "$.n"}}]})",
        "E[0].values", "key column \"id\" belongs in \"key\" only");
    EXPECT_RULE_ERROR(
        R"({"E": [{"upsert": "authors", "key": {"id": "aggregate_id"}, "values": {"name": "$.n"}, "set": {"id": "$.x::uuid"}}]})",
        "E[0].set", "key column \"id\" can not be changed by an upsert");
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "author_stats", "key": {"author_id": "aggregate_id"}, "column": "author_id"}]})",
                      "E[0].by", "");  // uuid is not an integer: refused before the key check
    EXPECT_RULE_ERROR(R"({"E": [{"increment": "post_tags", "key": {"line": "$.l::int"}, "column": "line"}]})", "E[0].set",
                      "key column \"line\" can not be changed by an increment");
}

TEST(DeclarativeRules, GeneratedColumnsCanNotBeWritten) {
    RuleContext ctx = blog_context();
    ColumnInfo slug = text_column("slug");
    slug.generated = true;
    ctx.tables[0].columns.push_back(slug);
    const CaughtError e = rule_error(
        R"({"E": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"slug": "$.s"}}]})", ctx);
    EXPECT_EQ(e.where, "E[0].set.slug");
    EXPECT_TRUE(contains(e.message, "generated column")) << e.message;
}

TEST(DeclarativeRules, ErrorsNameTheRuleIndexWithinItsEventType) {
    const CaughtError e = rule_error(R"({"PostDrafted": [)" + kDraft + R"(,
        {"increment": "authors", "key": {"id": "$.author_id::uuid"}, "column": "post_count"},
        {"update": "authors", "key": {"id": "$.author_id::uuid"}, "set": {"nam": "$.n"}}]})");
    EXPECT_EQ(e.where, "PostDrafted[2].set.nam");
}

}  // namespace
}  // namespace viewmig::core
