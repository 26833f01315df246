// The declarative projector engine (src/core/declarative_engine.hpp): a compiled Plan applied to
// events in memory, with the row path's semantics (NULL + n is NULL, greatest/least ignore NULLs,
// an UPDATE or DELETE of a missing row does nothing, a duplicate INSERT fails), and the changes
// handed over as COPY text and row sets. Uses declarative_test_support.hpp's blog schema.
#include "core/declarative_engine.hpp"

#include "declarative_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <ctime>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace viewmig::core {
namespace {

using namespace decl_test;
using Fields = std::map<std::string, std::optional<std::string>>;
using Code = ProjectionError::Code;

const std::string A1 = "00000000-0000-0000-0000-0000000000a1";
const std::string A2 = "00000000-0000-0000-0000-0000000000a2";
const std::string P1 = "00000000-0000-0000-0000-0000000000b1";
const std::string P2 = "00000000-0000-0000-0000-0000000000b2";
const std::string P3 = "00000000-0000-0000-0000-0000000000b3";

constexpr int64_t T0 = 1709210096789000;  // 2024-02-29 12:34:56.789 UTC
const std::string T0s = "2024-02-29 12:34:56.789+00";
constexpr int64_t T1 = T0 + 3600000000;   // an hour later
const std::string T1s = "2024-02-29 13:34:56.789+00";

std::vector<std::string> lines_of(const std::string& data) {
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < data.size()) {
        const std::size_t nl = data.find('\n', start);
        EXPECT_NE(nl, std::string::npos) << "COPY data must end with a newline: " << data;
        if (nl == std::string::npos) break;
        out.push_back(data.substr(start, nl - start));
        start = nl + 1;
    }
    return out;
}

// Every COPY line for `table`, sorted (rows come out in hash order).
std::vector<std::string> copy_lines(const Changes& ch, int table) {
    std::vector<std::string> out;
    uint64_t rows = 0;
    for (const auto& c : ch.copies) {
        if (c.table != table) continue;
        const auto l = lines_of(c.data);
        out.insert(out.end(), l.begin(), l.end());
        rows += c.rows;
    }
    EXPECT_EQ(rows, out.size());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<const CopyChunk*> chunks_of(const Changes& ch, int table) {
    std::vector<const CopyChunk*> out;
    for (const auto& c : ch.copies)
        if (c.table == table) out.push_back(&c);
    return out;
}

const RowSet* rowset_of(const std::vector<RowSet>& sets, int table) {
    const RowSet* found = nullptr;
    for (const auto& s : sets) {
        if (s.table != table) continue;
        EXPECT_EQ(found, nullptr) << "two row sets for table " << table;
        found = &s;
    }
    return found;
}

template <class F>
Code projection_error(F&& f, std::string* message = nullptr, std::string* detail = nullptr) {
    try {
        f();
    } catch (const ProjectionError& e) {
        if (message) *message = e.what();
        if (detail) *detail = e.detail;
        return e.code;
    }
    ADD_FAILURE() << "no ProjectionError";
    return Code::Unsupported;
}

std::string tsv(std::initializer_list<std::string> fields) {
    std::string out;
    for (const auto& f : fields) out += (out.empty() ? "" : "\t") + f;
    return out;
}

class BlogEngine : public ::testing::Test {
protected:
    Plan plan = compile_blog(blog_rules());
    int posts = table_index(plan, "posts"), authors = table_index(plan, "authors"), tags = table_index(plan, "post_tags"),
        stats = table_index(plan, "author_stats");

    TestEvent event(const std::string& type, const Fields& f) const { return make_event(plan, type, f); }
    TestEvent registered(const std::string& a, std::optional<std::string> name) const {
        return event("AuthorRegistered", {{"aggregate_id", a}, {"$.name", std::move(name)}});
    }
    TestEvent removed(const std::string& a) const { return event("AuthorRemoved", {{"aggregate_id", a}}); }
    TestEvent drafted(const std::string& p, std::optional<std::string> a, std::optional<std::string> title,
                      int64_t at = T0) const {
        return event("PostDrafted", {{"aggregate_id", p},
                                     {"$.author_id", std::move(a)},
                                     {"$.title", std::move(title)},
                                     {"created_at", std::to_string(at)}});
    }
    TestEvent tagged(const std::string& p, std::optional<std::string> tag) const {
        return event("PostTagged", {{"aggregate_id", p}, {"$.tag", std::move(tag)}});
    }
    TestEvent retitled(const std::string& p, std::optional<std::string> title) const {
        return event("PostRetitled", {{"aggregate_id", p}, {"$.title", std::move(title)}});
    }
    TestEvent published(const std::string& p, int64_t at) const {
        return event("PostPublished", {{"aggregate_id", p}, {"created_at", std::to_string(at)}});
    }
    TestEvent deleted(const std::string& p, const std::string& a) const {
        return event("PostDeleted", {{"aggregate_id", p}, {"$.author_id", a}});
    }
    static void apply(Engine& e, const TestEvent& ev) { e.apply(ev.input()); }
};

// ---- inserts, updates, upserts, deletes ---------------------------------------------------------

TEST_F(BlogEngine, InsertFillsConstantDefaultsAndNulls) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "Hello"));
    const Changes ch = e.take_changes();
    const auto chunks = chunks_of(ch, posts);
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0]->columns, (std::vector<int>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(chunks[0]->rows, 1u);
    // tag_count's default 0, published's default false, published_at NULL.
    EXPECT_EQ(chunks[0]->data, tsv({P1, A1, "Hello", "0", "false", "\\N"}) + "\n");
    // The increment of an author the (complete) table does not hold does nothing; the upsert inserts.
    EXPECT_TRUE(copy_lines(ch, authors).empty());
    EXPECT_EQ(copy_lines(ch, stats), std::vector<std::string>{tsv({A1, "1", T0s})});
    EXPECT_TRUE(ch.updates.empty());
    EXPECT_TRUE(ch.deletes.empty());
}

TEST_F(BlogEngine, UpdatesAddAndSetWithinABatch) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "Hello"));
    apply(e, tagged(P1, "c++"));
    apply(e, tagged(P1, "sql"));
    apply(e, retitled(P1, "Hello again"));
    apply(e, published(P1, T1));
    const Changes ch = e.take_changes();
    // A row new in this batch goes out once, with its final values, as COPY.
    EXPECT_EQ(copy_lines(ch, posts), std::vector<std::string>{tsv({P1, A1, "Hello again", "2", "true", T1s})});
    EXPECT_EQ(copy_lines(ch, tags), (std::vector<std::string>{tsv({P1, "c++"}), tsv({P1, "sql"})}));
    EXPECT_TRUE(ch.updates.empty());
}

TEST_F(BlogEngine, UpsertInsertsThenAppliesItsSet) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "one", T1));
    apply(e, drafted(P2, A1, "two", T0));  // older: greatest keeps T1
    apply(e, drafted(P3, A2, "three", T0));
    const Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, stats), (std::vector<std::string>{tsv({A1, "2", T1s}), tsv({A2, "1", T0s})}));
    EXPECT_EQ(copy_lines(ch, posts).size(), 3u);
}

TEST_F(BlogEngine, DeleteOfANewRowLeavesNothing) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "Hello"));
    apply(e, drafted(P2, A1, "Other"));
    apply(e, deleted(P1, A1));
    const Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, posts), std::vector<std::string>{tsv({P2, A1, "Other", "0", "false", "\\N"})});
    EXPECT_TRUE(ch.deletes.empty());
}

TEST_F(BlogEngine, DeleteThenReinsert) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "first"));
    apply(e, tagged(P1, "x"));
    apply(e, deleted(P1, A1));
    apply(e, tagged(P1, "y"));  // the post is gone: its update does nothing (the tag row is appended)
    apply(e, drafted(P1, A2, "second"));
    const Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, posts), std::vector<std::string>{tsv({P1, A2, "second", "0", "false", "\\N"})});
    EXPECT_EQ(copy_lines(ch, tags).size(), 2u);
    EXPECT_TRUE(ch.updates.empty());
    EXPECT_TRUE(ch.deletes.empty());
}

TEST_F(BlogEngine, UpdateOrDeleteOfAMissingRowDoesNothing) {
    Engine e(plan, true);
    apply(e, retitled(P1, "nobody"));
    apply(e, published(P1, T0));
    apply(e, deleted(P1, A1));   // also decrements a missing author
    apply(e, retitled(P2, std::nullopt));  // not even the NOT NULL check runs: no row
    const Changes ch = e.take_changes();
    EXPECT_TRUE(ch.empty());
    EXPECT_EQ(e.rows_cached(), 0u);
}

TEST_F(BlogEngine, RulesFindNoRowByANullKey) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "Hello"));
    apply(e, retitled(P1, "kept"));
    // UPDATE ... WHERE id = NULL and DELETE ... WHERE id = NULL match nothing.
    apply(e, event("PostRetitled", {{"aggregate_id", std::nullopt}, {"$.title", "lost"}}));
    apply(e, event("PostDeleted", {{"aggregate_id", std::nullopt}, {"$.author_id", std::nullopt}}));
    EXPECT_EQ(copy_lines(e.take_changes(), posts), std::vector<std::string>{tsv({P1, A1, "kept", "0", "false", "\\N"})});
}

TEST_F(BlogEngine, EventsOfOtherTypesAreIgnored) {
    Engine e(plan, true);
    TestEvent other = drafted(P1, A1, "x");
    other.type = "SomethingElse";
    apply(e, other);
    other.type = "postdrafted";
    apply(e, other);
    EXPECT_TRUE(e.take_changes().empty());
}

TEST_F(BlogEngine, ApplyingUnsharedThenSharedTablesGivesTheSameRows) {
    const std::vector<TestEvent> events = {registered(A1, "Ann"), drafted(P1, A1, "one", T0), tagged(P1, "x"),
                                           drafted(P2, A1, "two", T1), deleted(P1, A1), retitled(P2, "two!"),
                                           registered(A2, "Bea"), drafted(P3, A2, "three", T0)};
    Engine all(plan, true), split(plan, true);
    for (const auto& ev : events) apply(all, ev);
    for (const auto& ev : events) split.apply(ev.input(), Engine::Tables::Unshared);
    // Only partitioned and append-only tables so far.
    EXPECT_EQ(split.rows_cached(), 3u);  // posts P2, P3 and the tag row
    for (const auto& ev : events) split.apply(ev.input(), Engine::Tables::Shared);
    const Changes a = all.take_changes(), b = split.take_changes();
    for (int t : {posts, authors, tags, stats}) EXPECT_EQ(copy_lines(a, t), copy_lines(b, t)) << t;
    EXPECT_EQ(copy_lines(b, authors), (std::vector<std::string>{tsv({A1, "Ann", "1"}), tsv({A2, "Bea", "1"})}));
    EXPECT_TRUE(b.updates.empty());
    EXPECT_TRUE(b.deletes.empty());
}

TEST_F(BlogEngine, UnsharedTablesNeedNoLoadedRows) {
    Engine e(plan, false);
    const TestEvent ev = drafted(P1, A1, "one");
    EXPECT_NO_THROW(e.apply(ev.input(), Engine::Tables::Unshared));
    EXPECT_THROW(e.apply(ev.input(), Engine::Tables::Shared), std::logic_error);
    e.known_absent(authors, {A1});
    e.known_absent(stats, {A1});
    e.apply(ev.input(), Engine::Tables::Shared);
    const Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, posts).size(), 1u);
    EXPECT_EQ(copy_lines(ch, stats), std::vector<std::string>{tsv({A1, "1", T0s})});
}

// ---- NULL, greatest and least, overflow ---------------------------------------------------------

class Counters : public ::testing::Test {
protected:
    // author_stats(author_id uuid PK, events integer, last_event_at timestamptz), assigned from $.n.
    Plan plan = compile_blog(R"({
      "Init": [{"upsert": "author_stats", "key": {"author_id": "aggregate_id"},
                "values": {"events": "$.n::int", "last_event_at": "created_at"}}],
      "Add": [{"update": "author_stats", "key": {"author_id": "aggregate_id"}, "set": {"events": {"add": "$.n::int"}}}],
      "Sub": [{"update": "author_stats", "key": {"author_id": "aggregate_id"}, "set": {"events": {"subtract": "$.n::int"}}}],
      "Max": [{"update": "author_stats", "key": {"author_id": "aggregate_id"},
               "set": {"events": {"greatest": "$.n::int"}, "last_event_at": {"greatest": "created_at"}}}],
      "Min": [{"update": "author_stats", "key": {"author_id": "aggregate_id"},
               "set": {"events": {"least": "$.n::int"}, "last_event_at": {"least": "created_at"}}}]
    })");

    // (type, n, created_at) events for one author; the resulting row as a COPY line.
    struct Step {
        std::string type;
        std::optional<std::string> n, at;
    };
    std::string run(const std::vector<Step>& steps) {
        Engine e(plan, true);
        for (const auto& s : steps)
            e.apply(make_event(plan, s.type, {{"aggregate_id", A1}, {"$.n", s.n}, {"created_at", s.at}}).input());
        const auto lines = copy_lines(e.take_changes(), 3);
        EXPECT_EQ(lines.size(), 1u);
        return lines.empty() ? "" : lines[0];
    }
};

TEST_F(Counters, AddAndSubtract) {
    EXPECT_EQ(run({{"Init", "5", {}}, {"Add", "3", {}}, {"Sub", "10", {}}}), tsv({A1, "-2", "\\N"}));
    EXPECT_EQ(run({{"Init", "0", {}}, {"Add", "-4", {}}, {"Sub", "-1", {}}}), tsv({A1, "-3", "\\N"}));
}

TEST_F(Counters, AddingNullGivesNull) {
    // NULL + n and n + NULL are NULL, and stay NULL.
    EXPECT_EQ(run({{"Init", "5", {}}, {"Add", std::nullopt, {}}}), tsv({A1, "\\N", "\\N"}));
    EXPECT_EQ(run({{"Init", "5", {}}, {"Sub", std::nullopt, {}}, {"Add", "1", {}}}), tsv({A1, "\\N", "\\N"}));
    EXPECT_EQ(run({{"Init", std::nullopt, {}}, {"Add", "1", {}}, {"Sub", "1", {}}}), tsv({A1, "\\N", "\\N"}));
}

TEST_F(Counters, GreatestAndLeastIgnoreNulls) {
    EXPECT_EQ(run({{"Init", std::nullopt, {}}, {"Max", std::nullopt, {}}}), tsv({A1, "\\N", "\\N"}));
    EXPECT_EQ(run({{"Init", std::nullopt, {}}, {"Max", "4", {}}}), tsv({A1, "4", "\\N"}));
    EXPECT_EQ(run({{"Init", "4", {}}, {"Max", std::nullopt, {}}, {"Max", "2", {}}}), tsv({A1, "4", "\\N"}));
    EXPECT_EQ(run({{"Init", "4", {}}, {"Max", "9", {}}}), tsv({A1, "9", "\\N"}));
    EXPECT_EQ(run({{"Init", "4", {}}, {"Min", std::nullopt, {}}, {"Min", "7", {}}}), tsv({A1, "4", "\\N"}));
    EXPECT_EQ(run({{"Init", std::nullopt, {}}, {"Min", "-3", {}}, {"Min", "1", {}}}), tsv({A1, "-3", "\\N"}));
}

TEST_F(Counters, GreatestAndLeastOfTimestamps) {
    const std::string t0 = std::to_string(T0), t1 = std::to_string(T1);
    EXPECT_EQ(run({{"Init", "1", std::nullopt}, {"Max", "1", t0}}), tsv({A1, "1", T0s}));
    EXPECT_EQ(run({{"Init", "1", t0}, {"Max", "1", t1}, {"Max", "1", t0}}), tsv({A1, "1", T1s}));
    EXPECT_EQ(run({{"Init", "1", t1}, {"Max", "1", std::nullopt}}), tsv({A1, "1", T1s}));
    EXPECT_EQ(run({{"Init", "1", t1}, {"Min", "1", t0}, {"Min", "1", std::nullopt}}), tsv({A1, "1", T0s}));
    // Before 1970: negative microseconds compare as they should.
    EXPECT_EQ(run({{"Init", "1", "-1"}, {"Min", "1", "1"}}), tsv({A1, "1", "1969-12-31 23:59:59.999999+00"}));
}

TEST_F(Counters, IntegerOverflowIsOutOfRange) {
    std::string message, detail;
    EXPECT_EQ(projection_error([&] { run({{"Init", "2147483647", {}}, {"Add", "1", {}}}); }, &message, &detail),
              Code::OutOfRange);
    EXPECT_EQ(message, "integer out of range");
    EXPECT_EQ(detail, "Rule Add[0], column \"events\".");
    EXPECT_EQ(projection_error([&] { run({{"Init", "-2147483648", {}}, {"Sub", "1", {}}}); }), Code::OutOfRange);
    EXPECT_EQ(projection_error([&] { run({{"Init", "-2", {}}, {"Sub", "2147483647", {}}}); }), Code::OutOfRange);
    EXPECT_EQ(run({{"Init", "2147483646", {}}, {"Add", "1", {}}}), tsv({A1, "2147483647", "\\N"}));
    EXPECT_EQ(run({{"Init", "-2147483647", {}}, {"Sub", "1", {}}}), tsv({A1, "-2147483648", "\\N"}));
}

TEST_F(Counters, MalformedIntegersFromTheScanAreRefused) {
    EXPECT_EQ(projection_error([&] { run({{"Init", "12abc", {}}}); }), Code::OutOfRange);
    EXPECT_EQ(projection_error([&] { run({{"Init", "", {}}}); }), Code::OutOfRange);
    EXPECT_EQ(projection_error([&] { run({{"Init", "99999999999999999999", {}}}); }), Code::OutOfRange);
}

TEST(DeclarativeEngine, SmallintAndBigintOverflow) {
    RuleContext ctx = blog_context();
    TableInfo counters;
    counters.name = "counters";
    counters.columns = {uuid_column("id", true), with_default(int_column("small", 16, true), "0"), int_column("big", 64)};
    counters.unique_keys = {{"id"}};
    ctx.tables = {counters};
    const Plan plan = compile_rules(R"({
      "Init": [{"insert": "counters", "values": {"id": "aggregate_id", "small": "$.s::int", "big": "$.b::bigint"}}],
      "Add": [{"update": "counters", "key": {"id": "aggregate_id"}, "set": {"small": {"add": "$.s::int"}, "big": {"add": "$.b::bigint"}}}],
      "Sub": [{"update": "counters", "key": {"id": "aggregate_id"}, "set": {"small": {"subtract": "$.s::int"}, "big": {"subtract": "$.b::bigint"}}}]
    })", ctx, FakeTypes());
    auto run = [&](std::vector<std::array<std::string, 3>> steps) {
        Engine e(plan, true);
        for (const auto& [type, s, b] : steps) e.apply(make_event(plan, type, {{"aggregate_id", A1}, {"$.s", s}, {"$.b", b}}).input());
        const auto lines = copy_lines(e.take_changes(), 0);
        return lines.empty() ? std::string() : lines[0];
    };
    const std::string max64 = std::to_string(std::numeric_limits<int64_t>::max());
    const std::string min64 = std::to_string(std::numeric_limits<int64_t>::min());
    EXPECT_EQ(run({{"Init", "32766", max64}, {"Add", "1", "0"}}), tsv({A1, "32767", max64}));
    EXPECT_EQ(run({{"Init", "-32767", min64}, {"Sub", "1", "0"}}), tsv({A1, "-32768", min64}));
    std::string message;
    EXPECT_EQ(projection_error([&] { run({{"Init", "32767", "0"}, {"Add", "1", "0"}}); }, &message), Code::OutOfRange);
    EXPECT_EQ(message, "smallint out of range");
    EXPECT_EQ(projection_error([&] { run({{"Init", "-32768", "0"}, {"Sub", "1", "0"}}); }), Code::OutOfRange);
    EXPECT_EQ(projection_error([&] { run({{"Init", "0", max64}, {"Add", "0", "1"}}); }, &message), Code::OutOfRange);
    EXPECT_EQ(message, "bigint out of range");
    EXPECT_EQ(projection_error([&] { run({{"Init", "0", min64}, {"Sub", "0", "1"}}); }), Code::OutOfRange);
    EXPECT_EQ(projection_error([&] { run({{"Init", "0", "-1"}, {"Sub", "0", max64}, {"Sub", "0", "1"}}); }), Code::OutOfRange);
}

// ---- constraint errors --------------------------------------------------------------------------

TEST_F(BlogEngine, DuplicateInsertIsAUniqueViolation) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "one"));
    std::string message, detail;
    EXPECT_EQ(projection_error([&] { apply(e, drafted(P1, A1, "two")); }, &message, &detail), Code::UniqueViolation);
    EXPECT_EQ(message, "duplicate key value in table \"posts\"");
    EXPECT_EQ(detail, "Key (id)=(" + P1 + ") already exists. Rule PostDrafted[0].");
}

TEST_F(BlogEngine, DuplicateInsertOfAFlushedSharedRow) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    EXPECT_EQ(projection_error([&] { apply(e, registered(A1, "Ann")); }), Code::UniqueViolation);
    Engine f(plan, true);
    apply(f, registered(A1, "Ann"));
    f.take_changes();  // now in the table: still a duplicate
    std::string detail;
    EXPECT_EQ(projection_error([&] { apply(f, registered(A1, "Bea")); }, nullptr, &detail), Code::UniqueViolation);
    EXPECT_EQ(detail, "Key (id)=(" + A1 + ") already exists. Rule AuthorRegistered[0].");
}

TEST_F(BlogEngine, NotNullViolations) {
    Engine e(plan, true);
    std::string message, detail;
    // An insert leaving a NOT NULL column NULL.
    EXPECT_EQ(projection_error([&] { apply(e, drafted(P1, A1, std::nullopt)); }, &message, &detail), Code::NotNullViolation);
    EXPECT_EQ(message, "null value in column \"title\" of relation \"posts\" violates not-null constraint");
    EXPECT_EQ(detail, "Rule PostDrafted[0].");
    EXPECT_EQ(projection_error([&] { apply(e, drafted(P1, std::nullopt, "t")); }, &message), Code::NotNullViolation);
    EXPECT_EQ(message, "null value in column \"author_id\" of relation \"posts\" violates not-null constraint");
}

TEST_F(BlogEngine, NotNullViolationsOfKeysAndUpdates) {
    {
        Engine e(plan, true);
        std::string message;
        EXPECT_EQ(projection_error([&] { apply(e, event("AuthorRegistered", {{"aggregate_id", std::nullopt}, {"$.name", "x"}})); },
                                   &message),
                  Code::NotNullViolation);
        EXPECT_EQ(message, "null value in column \"id\" of relation \"authors\" violates not-null constraint");
    }
    {
        Engine e(plan, true);
        apply(e, drafted(P1, A1, "t"));
        std::string detail;
        EXPECT_EQ(projection_error([&] { apply(e, retitled(P1, std::nullopt)); }, nullptr, &detail), Code::NotNullViolation);
        EXPECT_EQ(detail, "Rule PostRetitled[0].");
    }
}

TEST_F(BlogEngine, NullAddedToANotNullCounterIsANotNullViolation) {
    const Plan p = compile_blog(R"({"R": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.name"}}],
                                    "Bump": [{"increment": "authors", "key": {"id": "aggregate_id"}, "column": "post_count", "by": "$.n::int"}]})");
    Engine e(p, true);
    e.apply(make_event(p, "R", {{"aggregate_id", A1}, {"$.name", "Ann"}}).input());
    e.apply(make_event(p, "Bump", {{"aggregate_id", A1}, {"$.n", "2"}}).input());
    EXPECT_EQ(projection_error([&] { e.apply(make_event(p, "Bump", {{"aggregate_id", A1}, {"$.n", std::nullopt}}).input()); }),
              Code::NotNullViolation);
}

TEST_F(BlogEngine, UpsertWithANullKeyIsANotNullViolation) {
    const Plan p = compile_blog(R"({"S": [{"upsert": "author_stats", "key": {"author_id": "$.a::uuid"}, "values": {"events": 1}}]})");
    Engine e(p, true);
    std::string message;
    EXPECT_EQ(projection_error([&] { e.apply(make_event(p, "S", {{"$.a", std::nullopt}}).input()); }, &message),
              Code::NotNullViolation);
    EXPECT_EQ(message, "null value in column \"author_id\" of relation \"author_stats\" violates not-null constraint");
    EXPECT_TRUE(e.take_changes().empty());
}

// ---- COPY text ----------------------------------------------------------------------------------

TEST(DeclarativeEngine, AppendCopyText) {
    std::string out;
    append_copy_text(out, "plain 'quoted' \"double\" caf\xC3\xA9");
    EXPECT_EQ(out, "plain 'quoted' \"double\" caf\xC3\xA9");
    out = "x";
    append_copy_text(out, "a\tb\nc\\d\re");
    EXPECT_EQ(out, "xa\\tb\\nc\\\\d\\re");
    out.clear();
    append_copy_text(out, "\\N");  // the text \N, not NULL
    EXPECT_EQ(out, "\\\\N");
    out.clear();
    append_copy_text(out, "\\.");  // not the end-of-data marker
    EXPECT_EQ(out, "\\\\.");
    out.clear();
    append_copy_text(out, "");
    EXPECT_EQ(out, "");
}

TEST_F(BlogEngine, CopyTextEscapesTabsNewlinesAndBackslashes) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "tab\there\nnew line\\back\rslash"));
    apply(e, tagged(P1, "\\N"));
    apply(e, tagged(P1, std::nullopt));
    const Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, posts),
              std::vector<std::string>{tsv({P1, A1, "tab\\there\\nnew line\\\\back\\rslash", "2", "false", "\\N"})});
    EXPECT_EQ(copy_lines(ch, tags), (std::vector<std::string>{tsv({P1, "\\N"}), tsv({P1, "\\\\N"})}));
}

TEST_F(BlogEngine, ColumnsWithAVolatileDefaultAreLeftOutOfTheCopy) {
    Engine e(plan, true);
    apply(e, tagged(P1, "a"));
    apply(e, tagged(P2, "b"));
    const Changes ch = e.take_changes();
    const auto chunks = chunks_of(ch, tags);
    ASSERT_EQ(chunks.size(), 1u);
    EXPECT_EQ(chunks[0]->columns, (std::vector<int>{1, 2}));  // no "line": PostgreSQL's nextval() fills it
    EXPECT_EQ(chunks[0]->rows, 2u);
    EXPECT_EQ(chunks[0]->data, tsv({P1, "a"}) + "\n" + tsv({P2, "b"}) + "\n");  // append-only: in event order
}

TEST(DeclarativeEngine, RowsSettingAVolatileDefaultColumnGoToTheirOwnCopy) {
    const Plan plan = compile_blog(R"({"A": [{"insert": "post_tags", "values": {"post_id": "aggregate_id", "tag": "$.tag"}}],
                                       "B": [{"insert": "post_tags", "values": {"line": "$.line::int", "tag": "$.tag"}}]})");
    ASSERT_EQ(plan.tables[2].mode, TableMode::AppendOnly);
    Engine e(plan, true);
    e.apply(make_event(plan, "A", {{"aggregate_id", P1}, {"$.tag", "a"}}).input());
    e.apply(make_event(plan, "B", {{"$.line", "7"}, {"$.tag", "b"}}).input());
    e.apply(make_event(plan, "A", {{"aggregate_id", P2}, {"$.tag", "c"}}).input());
    const Changes ch = e.take_changes();
    const auto chunks = chunks_of(ch, 2);
    ASSERT_EQ(chunks.size(), 2u);
    EXPECT_EQ(chunks[0]->columns, (std::vector<int>{1, 2}));
    EXPECT_EQ(chunks[0]->data, tsv({P1, "a"}) + "\n" + tsv({P2, "c"}) + "\n");
    EXPECT_EQ(chunks[1]->columns, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(chunks[1]->data, tsv({"7", "\\N", "b"}) + "\n");
}

// ---- batches: partitioned rows are forgotten, shared rows stay --------------------------------

TEST_F(BlogEngine, PartitionedRowsAreForgottenAfterTakeChanges) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "Hello"));
    apply(e, tagged(P1, "x"));
    EXPECT_EQ(e.rows_cached(), 3u);  // the post, the tag row, the author's stats
    Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, posts).size(), 1u);
    EXPECT_EQ(e.rows_cached(), 1u);  // only the shared author_stats row
    EXPECT_TRUE(e.take_changes().empty());
    // The post's aggregate is done: a later event for it finds no row (the runner's contract).
    apply(e, retitled(P1, "later"));
    EXPECT_TRUE(e.take_changes().empty());
}

TEST_F(BlogEngine, SharedRowsStayCachedAndLaterChangesAreUpdates) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, authors), std::vector<std::string>{tsv({A1, "Ann", "0"})});
    EXPECT_EQ(e.rows_cached(), 1u);

    apply(e, drafted(P1, A1, "one", T0));
    ch = e.take_changes();
    const RowSet* u = rowset_of(ch.updates, authors);
    ASSERT_NE(u, nullptr);
    EXPECT_EQ(u->columns, (std::vector<int>{0, 1, 2}));  // key first, then the others
    EXPECT_EQ(u->rows, (std::vector<TextRow>{{A1, "Ann", "1"}}));
    EXPECT_EQ(copy_lines(ch, stats), std::vector<std::string>{tsv({A1, "1", T0s})});
    EXPECT_EQ(rowset_of(ch.updates, stats), nullptr);
    EXPECT_TRUE(copy_lines(ch, authors).empty());

    apply(e, drafted(P2, A1, "two", T1));
    apply(e, drafted(P3, A1, "three", T0));
    ch = e.take_changes();
    ASSERT_NE(rowset_of(ch.updates, authors), nullptr);
    EXPECT_EQ(rowset_of(ch.updates, authors)->rows, (std::vector<TextRow>{{A1, "Ann", "3"}}));
    const RowSet* s = rowset_of(ch.updates, stats);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->columns, (std::vector<int>{0, 1, 2}));
    // Outbound values are in the columns' input format: the timestamp as text, not microseconds.
    EXPECT_EQ(s->rows, (std::vector<TextRow>{{A1, "3", T1s}}));
    ASSERT_EQ(ch.copies.size(), 1u);  // the two new posts
    EXPECT_EQ(ch.copies[0].table, posts);
}

TEST_F(BlogEngine, UnchangedSharedRowsAreNotWrittenAgain) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    e.take_changes();
    apply(e, retitled(P1, "no such post"));
    EXPECT_TRUE(e.take_changes().empty());
    EXPECT_EQ(e.rows_cached(), 1u);
}

TEST_F(BlogEngine, DeleteOfAFlushedSharedRowIsADelete) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    apply(e, registered(A2, "Bea"));
    e.take_changes();
    apply(e, removed(A1));
    apply(e, removed(A1));  // already gone: nothing more
    Changes ch = e.take_changes();
    const RowSet* d = rowset_of(ch.deletes, authors);
    ASSERT_NE(d, nullptr);
    EXPECT_EQ(d->columns, std::vector<int>{0});
    EXPECT_EQ(d->rows, (std::vector<TextRow>{{A1}}));
    EXPECT_TRUE(ch.updates.empty());
    EXPECT_TRUE(ch.copies.empty());
    // It is known to be absent now: increments do nothing, a new registration is a new row.
    apply(e, drafted(P1, A1, "t"));
    apply(e, registered(A1, "Ann II"));
    ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, authors), std::vector<std::string>{tsv({A1, "Ann II", "0"})});
    EXPECT_TRUE(ch.deletes.empty());
    EXPECT_EQ(rowset_of(ch.updates, authors), nullptr);
}

TEST_F(BlogEngine, DeleteAndReinsertOfAFlushedSharedRowIsAnUpdate) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    apply(e, drafted(P1, A1, "t"));
    e.take_changes();
    apply(e, removed(A1));
    apply(e, registered(A1, "Bea"));
    const Changes ch = e.take_changes();
    EXPECT_TRUE(ch.deletes.empty());
    EXPECT_TRUE(copy_lines(ch, authors).empty());
    ASSERT_NE(rowset_of(ch.updates, authors), nullptr);
    // Every column as a fresh insert leaves it: post_count back to its default.
    EXPECT_EQ(rowset_of(ch.updates, authors)->rows, (std::vector<TextRow>{{A1, "Bea", "0"}}));
}

TEST_F(BlogEngine, InsertDeleteInsertOfANewSharedRow) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    apply(e, removed(A1));
    apply(e, registered(A1, "Bea"));
    const Changes ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, authors), std::vector<std::string>{tsv({A1, "Bea", "0"})});
    EXPECT_TRUE(ch.deletes.empty());
    EXPECT_TRUE(ch.updates.empty());
}

// ---- shared tables the cache does not hold completely ---------------------------------------------

TEST_F(BlogEngine, MissingKeysKnownRowsAndKnownAbsence) {
    Engine e(plan, false);
    const std::vector<TestEvent> events = {drafted(P1, A1, "one", T0), drafted(P2, A1, "two", T1), registered(A2, "Bea"),
                                           drafted(P3, A2, "three", T0), tagged(P1, "x")};
    std::vector<EventInput> inputs;
    for (const auto& ev : events) inputs.push_back(ev.input());
    auto missing = e.missing_keys(inputs);
    ASSERT_EQ(missing.size(), 4u);
    EXPECT_TRUE(missing[posts].empty());  // partitioned: complete by construction
    EXPECT_TRUE(missing[tags].empty());
    EXPECT_EQ(missing[authors], (std::vector<TextRow>{{A1}, {A2}}));  // each key once, in first-use order
    EXPECT_EQ(missing[stats], (std::vector<TextRow>{{A1}, {A2}}));

    // Rows read come in the engine's form: integers and timestamps (microseconds) as decimal text.
    e.known_row(authors, {A1, "Ann", "3"});
    e.known_absent(authors, {A2});
    e.known_row(stats, {A1, "7", std::to_string(T0 - 1)});
    e.known_absent(stats, {A2});
    missing = e.missing_keys(inputs);
    for (const auto& m : missing) EXPECT_TRUE(m.empty());

    for (const auto& ev : events) apply(e, ev);
    const Changes ch = e.take_changes();
    ASSERT_NE(rowset_of(ch.updates, authors), nullptr);
    EXPECT_EQ(rowset_of(ch.updates, authors)->rows, (std::vector<TextRow>{{A1, "Ann", "5"}}));
    EXPECT_EQ(copy_lines(ch, authors), std::vector<std::string>{tsv({A2, "Bea", "1"})});
    ASSERT_NE(rowset_of(ch.updates, stats), nullptr);
    EXPECT_EQ(rowset_of(ch.updates, stats)->rows, (std::vector<TextRow>{{A1, "9", T1s}}));
    EXPECT_EQ(copy_lines(ch, stats), std::vector<std::string>{tsv({A2, "1", T0s})});
    EXPECT_EQ(copy_lines(ch, posts).size(), 3u);
    // What was loaded or learnt stays known.
    EXPECT_TRUE(e.missing_keys(inputs)[authors].empty());
}

TEST_F(BlogEngine, MissingKeysSkipNullKeysAndOtherEventTypes) {
    Engine e(plan, false);
    const TestEvent a = drafted(P1, std::nullopt, "t"), b = event("Unknown", {{"aggregate_id", A1}}), c = removed(A2);
    const auto missing = e.missing_keys({a.input(), b.input(), c.input()});
    EXPECT_EQ(missing[authors], (std::vector<TextRow>{{A2}}));
    EXPECT_TRUE(missing[stats].empty());
}

TEST_F(BlogEngine, MissingKeysAreNoneWhenSharedTablesAreComplete) {
    Engine e(plan, true);
    const TestEvent a = drafted(P1, A1, "t");
    for (const auto& m : e.missing_keys({a.input()})) EXPECT_TRUE(m.empty());
}

TEST_F(BlogEngine, ApplyingBeforeTheRowsAreLoadedIsALogicError) {
    Engine e(plan, false);
    EXPECT_THROW(apply(e, registered(A1, "Ann")), std::logic_error);
}

TEST_F(BlogEngine, DeletingANewRowOfAnIncompleteTableRemembersItsAbsence) {
    Engine e(plan, false);
    e.known_absent(authors, {A1});
    apply(e, registered(A1, "Ann"));
    apply(e, removed(A1));
    const TestEvent again = registered(A1, "Bea");
    EXPECT_TRUE(e.missing_keys({again.input()})[authors].empty());
    Changes ch = e.take_changes();
    EXPECT_TRUE(ch.empty());
    apply(e, again);
    ch = e.take_changes();
    EXPECT_EQ(copy_lines(ch, authors), std::vector<std::string>{tsv({A1, "Bea", "0"})});
}

TEST_F(BlogEngine, KnownAbsentRowsTakeNoUpdates) {
    Engine e(plan, false);
    e.known_absent(authors, {A1});
    e.known_absent(stats, {A1});
    apply(e, drafted(P1, A1, "t"));
    apply(e, deleted(P1, A1));
    const Changes ch = e.take_changes();
    EXPECT_TRUE(ch.deletes.empty());
    EXPECT_EQ(rowset_of(ch.updates, authors), nullptr);
    EXPECT_EQ(copy_lines(ch, stats).size(), 1u);  // the upsert inserted
    EXPECT_TRUE(copy_lines(ch, posts).empty());   // drafted and deleted
}

TEST_F(BlogEngine, EvictSharedForgetsTheCache) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    e.take_changes();
    EXPECT_EQ(e.rows_cached(), 1u);
    EXPECT_GT(e.memory_bytes(), 0u);
    e.evict_shared();
    EXPECT_EQ(e.rows_cached(), 0u);
    EXPECT_EQ(e.memory_bytes(), 0u);
    // The table is no longer complete: its rows are read again.
    const TestEvent ev = drafted(P1, A1, "t");
    EXPECT_EQ(e.missing_keys({ev.input()})[authors], (std::vector<TextRow>{{A1}}));
    EXPECT_THROW(apply(e, ev), std::logic_error);
}

TEST_F(BlogEngine, ForgetDropsEverything) {
    Engine e(plan, true);
    apply(e, registered(A1, "Ann"));
    apply(e, drafted(P1, A1, "t"));
    apply(e, tagged(P1, "x"));
    e.forget();
    EXPECT_EQ(e.rows_cached(), 0u);
    EXPECT_EQ(e.memory_bytes(), 0u);
    EXPECT_TRUE(e.take_changes().empty());
    const TestEvent ev = registered(A2, "Bea");
    EXPECT_EQ(e.missing_keys({ev.input()})[authors], (std::vector<TextRow>{{A2}}));
}

// ---- memory -------------------------------------------------------------------------------------

TEST_F(BlogEngine, MemoryGrowsAndShrinks) {
    Engine e(plan, true);
    EXPECT_EQ(e.memory_bytes(), 0u);
    apply(e, registered(A1, "Ann"));
    const std::size_t one = e.memory_bytes();
    EXPECT_GT(one, 0u);
    apply(e, registered(A2, std::string(1000, 'x')));
    const std::size_t two = e.memory_bytes();
    EXPECT_GT(two, one + 1000);  // counts the long name
    apply(e, removed(A2));       // a new row of a complete table: dropped, its bytes garbage for now
    EXPECT_EQ(e.memory_bytes(), two);
    EXPECT_EQ(e.rows_cached(), 1u);
    apply(e, tagged(P1, std::string(500, 'y')));  // append-only rows count too
    EXPECT_GT(e.memory_bytes(), two + 500);
    apply(e, drafted(P1, A1, "t"));
    const std::size_t before_take = e.memory_bytes();
    e.take_changes();  // partitioned and append-only rows are gone, shared ones stay
    EXPECT_LT(e.memory_bytes(), before_take);
    // authors was mostly garbage (A2's long name): compacted to what an engine that never saw A2
    // holds (give or take the capacity of a pending list).
    Engine g(plan, true);
    apply(g, registered(A1, "Ann"));
    apply(g, tagged(P1, std::string(500, 'y')));
    apply(g, drafted(P1, A1, "t"));
    g.take_changes();
    EXPECT_LT(e.memory_bytes(), g.memory_bytes() + 64);
    EXPECT_GT(e.memory_bytes(), 0u);
    e.evict_shared();
    // Left: the slot arrays the partitioned tables keep for the next batch.
    EXPECT_LT(e.memory_bytes(), 4096u);
}

TEST_F(BlogEngine, MemoryFollowsUpdates) {
    Engine e(plan, true);
    apply(e, drafted(P1, A1, "short"));
    const std::size_t small = e.memory_bytes();
    apply(e, retitled(P1, std::string(4000, 'z')));
    EXPECT_GE(e.memory_bytes(), small + 4000);
    apply(e, deleted(P1, A1));
    // After the batch's changes are taken only the shared rows the draft upserted are left.
    Engine f(plan, true);
    apply(f, drafted(P2, A1, "t"));
    apply(f, deleted(P2, A1));
    e.take_changes();
    f.take_changes();
    EXPECT_EQ(e.memory_bytes(), f.memory_bytes());
}

TEST(DeclarativeEngine, CompactionKeepsSharedRowsAndPendingChanges) {
    // Renames leave the old names behind in the arena; compaction (when most bytes are garbage)
    // copies the live rows, and a pending change made before it is still written after it.
    const Plan plan = compile_rules(R"({"AuthorRegistered": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.name"}}],
        "AuthorRenamed": [{"update": "authors", "key": {"id": "aggregate_id"}, "set": {"name": "$.name"}}],
        "PostDrafted": [{"increment": "authors", "key": {"id": "$.author_id::uuid"}, "column": "post_count"}]})",
                                    blog_context(), FakeTypes());
    const std::string a1 = "00000000-0000-4000-8000-000000000001", a2 = "00000000-0000-4000-8000-000000000002";
    Engine e(plan, true);
    e.apply(make_event(plan, "AuthorRegistered", {{"aggregate_id", a1}, {"$.name", "Ann"}}).input());
    e.apply(make_event(plan, "AuthorRegistered", {{"aggregate_id", a2}, {"$.name", "Bea"}}).input());
    e.take_changes();
    for (int i = 0; i < 50; ++i)
        e.apply(make_event(plan, "AuthorRenamed", {{"aggregate_id", a1}, {"$.name", std::string(100, static_cast<char>('a' + i % 26))}}).input());
    const std::size_t before = e.memory_bytes();
    e.take_changes(false);  // deferred: shared changes stay pending, the arena is compacted
    EXPECT_LT(e.memory_bytes(), before / 2);
    EXPECT_EQ(e.rows_cached(), 2u);
    const Changes ch = e.take_changes();
    ASSERT_EQ(ch.updates.size(), 1u);
    ASSERT_EQ(ch.updates[0].rows.size(), 1u);
    EXPECT_EQ(ch.updates[0].rows[0][0], a1);
    EXPECT_EQ(ch.updates[0].rows[0][1], std::string(100, static_cast<char>('a' + 49 % 26)));
}

TEST_F(BlogEngine, KnownRowsReplaceTheirCachedRow) {
    Engine e(plan, false);
    e.known_row(authors, {A1, "Ann", "3"});
    EXPECT_GT(e.memory_bytes(), 0u);
    e.known_absent(authors, {A2});
    e.known_row(authors, {A1, "Ann", "4"});  // reported again: replaces, not adds
    e.known_absent(authors, {A2});
    EXPECT_EQ(e.rows_cached(), 2u);
    e.known_absent(stats, {A1});
    apply(e, drafted(P1, A1, "t"));  // post_count 4 + 1
    const Changes ch = e.take_changes();
    bool seen = false;
    for (const RowSet& u : ch.updates)
        if (u.table == authors) {
            ASSERT_EQ(u.rows.size(), 1u);
            for (std::size_t i = 0; i < u.columns.size(); ++i)
                if (u.columns[i] == column_index(plan, "authors", "post_count")) {
                    EXPECT_EQ(u.rows[0][i], "5");
                    seen = true;
                }
        }
    EXPECT_TRUE(seen);
}

// ---- volatile defaults in cached rows ---------------------------------------------------------------

class Tickets : public ::testing::Test {
protected:
    // tickets(code text PK, opened_at timestamptz NOT NULL DEFAULT now(), hits integer NOT NULL DEFAULT 0,
    //         seq bigint DEFAULT nextval(...)), shared: found by $.code.
    static RuleContext context() {
        RuleContext ctx = blog_context();
        TableInfo t;
        t.name = "tickets";
        t.columns = {text_column("code", true), with_volatile_default(timestamptz_column("opened_at", true)),
                     with_default(int_column("hits", 32, true), "0"), with_volatile_default(int_column("seq", 64))};
        t.unique_keys = {{"code"}};
        ctx.tables = {t};
        return ctx;
    }
    Plan plan = compile_rules(R"({
      "Opened": [{"insert": "tickets", "values": {"code": "$.code"}}],
      "Viewed": [{"increment": "tickets", "key": {"code": "$.code"}, "column": "hits"}],
      "Bumped": [{"increment": "tickets", "key": {"code": "$.code"}, "column": "seq"}],
      "Closed": [{"delete": "tickets", "key": {"code": "$.code"}}]
    })", context(), FakeTypes());
    void apply(Engine& e, const std::string& type, const std::string& code) {
        e.apply(make_event(plan, type, {{"$.code", code}}).input());
    }
};

TEST_F(Tickets, ANewRowLeavesItsVolatileDefaultsToPostgreSQL) {
    ASSERT_EQ(plan.tables[0].mode, TableMode::Shared);
    Engine e(plan, true);
    apply(e, "Opened", "T-1");
    apply(e, "Viewed", "T-1");
    const Changes ch = e.take_changes();
    ASSERT_EQ(ch.copies.size(), 1u);
    EXPECT_EQ(ch.copies[0].columns, (std::vector<int>{0, 2}));
    EXPECT_EQ(ch.copies[0].data, "T-1\t1\n");
}

TEST_F(Tickets, ArithmeticOnAnUnwrittenVolatileDefaultIsUnsupported) {
    Engine e(plan, true);
    apply(e, "Opened", "T-1");
    std::string detail;
    EXPECT_EQ(projection_error([&] { apply(e, "Bumped", "T-1"); }, nullptr, &detail), Code::Unsupported);
    EXPECT_NE(detail.find("Rule Bumped[0]"), std::string::npos) << detail;
}

TEST_F(Tickets, LaterUpdatesOfAFlushedRowDoNotWriteItsVolatileDefaultsAsNull) {
    Engine e(plan, true);
    apply(e, "Opened", "T-1");
    e.take_changes();  // COPY without opened_at and seq: PostgreSQL fills them
    apply(e, "Viewed", "T-1");
    const Changes ch = e.take_changes();
    ASSERT_EQ(ch.updates.size(), 1u);
    const RowSet& u = ch.updates[0];
    bool hits = false;
    for (std::size_t i = 0; i < u.columns.size(); ++i) {
        const ColumnInfo& col = plan.tables[0].info.columns[u.columns[i]];
        if (col.name == "hits") {
            hits = true;
            EXPECT_EQ(u.rows.at(0)[i], "1");
        }
        // The row path's UPDATE leaves opened_at and seq alone; the engine must not set them to NULL.
        if (col.volatile_default) {
            EXPECT_TRUE(u.rows.at(0)[i].has_value()) << col.name << " would be set to NULL";
        }
    }
    EXPECT_TRUE(hits);
}

TEST(DeclarativeEngine, ReinsertingAKeyOnlySharedRowUpdatesNothing) {
    RuleContext ctx = blog_context();
    TableInfo t;
    t.name = "labels";
    t.columns = {text_column("label", true)};
    t.unique_keys = {{"label"}};
    ctx.tables = {t};
    const Plan plan = compile_rules(R"({"Added": [{"insert": "labels", "values": {"label": "$.l"}}],
                                        "Dropped": [{"delete": "labels", "key": {"label": "$.l"}}]})",
                                    ctx, FakeTypes());
    Engine e(plan, true);
    e.apply(make_event(plan, "Added", {{"$.l", "x"}}).input());
    e.take_changes();
    e.apply(make_event(plan, "Dropped", {{"$.l", "x"}}).input());
    e.apply(make_event(plan, "Added", {{"$.l", "x"}}).input());
    const Changes ch = e.take_changes();
    for (const RowSet& u : ch.updates) EXPECT_GT(u.columns.size(), plan.tables[0].key_columns.size());
}

// ---- timestamps -----------------------------------------------------------------------------------

TEST(DeclarativeEngine, FormatTimestamp) {
    EXPECT_EQ(format_timestamp(0, false), "1970-01-01 00:00:00");
    EXPECT_EQ(format_timestamp(0, true), "1970-01-01 00:00:00+00");
    EXPECT_EQ(format_timestamp(T0, true), T0s);
    EXPECT_EQ(format_timestamp(946684800000000, false), "2000-01-01 00:00:00");
    EXPECT_EQ(format_timestamp(253402300799999999, false), "9999-12-31 23:59:59.999999");
    EXPECT_EQ(format_timestamp(253402300800000000, false), "10000-01-01 00:00:00");
}

TEST(DeclarativeEngine, FormatTimestampBefore1970) {
    EXPECT_EQ(format_timestamp(-1, false), "1969-12-31 23:59:59.999999");
    EXPECT_EQ(format_timestamp(-1, true), "1969-12-31 23:59:59.999999+00");
    EXPECT_EQ(format_timestamp(-86400000000, false), "1969-12-31 00:00:00");
    EXPECT_EQ(format_timestamp(-86400000001, false), "1969-12-30 23:59:59.999999");
    EXPECT_EQ(format_timestamp(-2208988800000000, false), "1900-01-01 00:00:00");
}

TEST(DeclarativeEngine, FormatTimestampTrimsFractionalZeros) {
    EXPECT_EQ(format_timestamp(1500000, false), "1970-01-01 00:00:01.5");
    EXPECT_EQ(format_timestamp(1000, false), "1970-01-01 00:00:00.001");
    EXPECT_EQ(format_timestamp(10, false), "1970-01-01 00:00:00.00001");
    EXPECT_EQ(format_timestamp(1, false), "1970-01-01 00:00:00.000001");
    EXPECT_EQ(format_timestamp(120000, true), "1970-01-01 00:00:00.12+00");
    EXPECT_EQ(format_timestamp(-500000, false), "1969-12-31 23:59:59.5");
}

TEST(DeclarativeEngine, FormatTimestampBC) {
    EXPECT_EQ(format_timestamp(-62135596800000000, false), "0001-01-01 00:00:00");  // AD 1
    EXPECT_EQ(format_timestamp(-62135596800000001, false), "0001-12-31 23:59:59.999999 BC");
    EXPECT_EQ(format_timestamp(-62167219200000000, false), "0001-01-01 00:00:00 BC");
    EXPECT_EQ(format_timestamp(-62167219200000000, true), "0001-01-01 00:00:00+00 BC");  // PostgreSQL puts BC last
    EXPECT_EQ(format_timestamp(-62162121600000000, false), "0001-02-29 00:00:00 BC");     // 1 BC is a leap year
    EXPECT_EQ(format_timestamp(-62167219200000000 - 86400000000, false), "0002-12-31 00:00:00 BC");
    EXPECT_EQ(format_timestamp(-210866803200000000, false), "4714-11-24 00:00:00 BC");  // PostgreSQL's earliest
}

TEST(DeclarativeEngine, FormatTimestampAgreesWithGmtime) {
    // Every 37 hours and 13 seconds over 1902..2037, against the C library's calendar.
    for (int64_t secs = -2100000000; secs < 2100000000; secs += 37 * 3600 + 13) {
        const std::time_t t = static_cast<std::time_t>(secs);
        std::tm tm{};
        ASSERT_NE(gmtime_r(&t, &tm), nullptr);
        char buf[40];
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
        ASSERT_EQ(format_timestamp(secs * 1000000, false), buf) << secs;
    }
}

}  // namespace
}  // namespace viewmig::core
