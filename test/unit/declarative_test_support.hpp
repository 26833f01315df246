// Shared fixtures of the declarative projector unit tests (test_declarative_*.cpp): a fake
// TypeOracle, a small blog schema as a RuleContext, and helpers to find a plan source and to build
// engine events. Header only; CMake globs test/unit/*.cpp, so this file is not a test of its own.
#pragma once

#include "core/declarative_engine.hpp"
#include "core/declarative_rules.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace viewmig::core::decl_test {

// A stand-in for PostgreSQL's type answers, deliberately small:
//  resolve_type: int/int4/integer -> integer, int2/smallint -> smallint, int8/bigint -> bigint,
//    uuid, text, varchar -> character varying, numeric, bool/boolean -> boolean,
//    timestamptz -> timestamp with time zone, timestamp -> timestamp without time zone;
//    anything else is unknown.
//  can_assign(from, to): the same type; "unknown" (an untyped literal) to anything; anything to
//    text or character varying (PostgreSQL's I/O conversion casts to string types); between the
//    integer types and from them to numeric; numeric to the integer types; timestamp <->
//    timestamptz. Nothing else (so text -> uuid, uuid -> integer and integer -> boolean fail).
class FakeTypes : public TypeOracle {
public:
    std::optional<std::string> resolve_type(const std::string& name) const override {
        static const std::map<std::string, std::string> kTypes = {
            {"int", "integer"},
            {"int4", "integer"},
            {"integer", "integer"},
            {"int2", "smallint"},
            {"smallint", "smallint"},
            {"int8", "bigint"},
            {"bigint", "bigint"},
            {"uuid", "uuid"},
            {"text", "text"},
            {"varchar", "character varying"},
            {"numeric", "numeric"},
            {"bool", "boolean"},
            {"boolean", "boolean"},
            {"timestamptz", "timestamp with time zone"},
            {"timestamp with time zone", "timestamp with time zone"},
            {"timestamp", "timestamp without time zone"},
        };
        auto it = kTypes.find(name);
        if (it == kTypes.end()) return std::nullopt;
        return it->second;
    }
    bool can_assign(const std::string& from, const std::string& to) const override {
        if (from == to || from == "unknown") return true;
        static const std::set<std::string> kIntegers = {"smallint", "integer", "bigint"};
        if (kIntegers.count(from) && (kIntegers.count(to) || to == "numeric")) return true;
        if (from == "numeric" && kIntegers.count(to)) return true;
        if (to == "text" || to == "character varying") return true;
        const std::set<std::string> stamps = {"timestamp with time zone", "timestamp without time zone"};
        if (stamps.count(from) && stamps.count(to)) return true;
        return false;
    }
};

// ---- columns ------------------------------------------------------------------------------------

inline ColumnInfo text_column(const std::string& name, bool not_null = false) {
    ColumnInfo c;
    c.name = name;
    c.type = c.base_type = "text";
    c.not_null = not_null;
    return c;
}

inline ColumnInfo uuid_column(const std::string& name, bool not_null = false) {
    ColumnInfo c = text_column(name, not_null);
    c.type = c.base_type = "uuid";
    return c;
}

inline ColumnInfo bool_column(const std::string& name, bool not_null = false) {
    ColumnInfo c = text_column(name, not_null);
    c.type = c.base_type = "boolean";
    return c;
}

inline ColumnInfo int_column(const std::string& name, int bits = 32, bool not_null = false) {
    ColumnInfo c;
    c.name = name;
    c.type = c.base_type = bits == 16 ? "smallint" : bits == 32 ? "integer" : "bigint";
    c.kind = ValueKind::Integer;
    c.integer_bits = bits;
    c.not_null = not_null;
    return c;
}

inline ColumnInfo timestamptz_column(const std::string& name, bool not_null = false) {
    ColumnInfo c;
    c.name = name;
    c.type = c.base_type = "timestamp with time zone";
    c.kind = ValueKind::Timestamp;
    c.timestamp_with_zone = true;
    c.not_null = not_null;
    return c;
}

// A constant default, given in the engine's form (as the pg layer evaluates it).
inline ColumnInfo with_default(ColumnInfo c, std::optional<std::string> engine_form) {
    c.has_default = true;
    c.default_text = std::move(engine_form);
    return c;
}

// A default PostgreSQL evaluates per row: nextval(), identity, now(), random()...
inline ColumnInfo with_volatile_default(ColumnInfo c) {
    c.has_default = true;
    c.volatile_default = true;
    return c;
}

// ---- the blog schema ----------------------------------------------------------------------------

// posts(id uuid PK, author_id uuid NOT NULL, title text NOT NULL, tag_count integer NOT NULL
//       DEFAULT '0', published boolean DEFAULT false, published_at timestamptz)
// authors(id uuid PK, name text NOT NULL, post_count integer NOT NULL DEFAULT 0)
// post_tags(line integer PK DEFAULT nextval(...), post_id uuid, tag text)
// author_stats(author_id uuid PK, events integer, last_event_at timestamptz)
// Event table: aggregate_id uuid, sequence_number bigint, event_type text, created_at timestamptz,
// event_json jsonb.
inline RuleContext blog_context() {
    RuleContext ctx;
    TableInfo posts;
    posts.name = "posts";
    posts.columns = {uuid_column("id", true),
                     uuid_column("author_id", true),
                     text_column("title", true),
                     with_default(int_column("tag_count", 32, true), "0"),
                     with_default(bool_column("published"), "false"),
                     timestamptz_column("published_at")};
    posts.unique_keys = {{"id"}};

    TableInfo authors;
    authors.name = "authors";
    authors.columns = {uuid_column("id", true), text_column("name", true), with_default(int_column("post_count", 32, true), "0")};
    authors.unique_keys = {{"id"}};

    TableInfo post_tags;
    post_tags.name = "post_tags";
    post_tags.columns = {with_volatile_default(int_column("line", 32, true)), uuid_column("post_id"), text_column("tag")};
    post_tags.unique_keys = {{"line"}};

    TableInfo author_stats;
    author_stats.name = "author_stats";
    author_stats.columns = {uuid_column("author_id", true), int_column("events"), timestamptz_column("last_event_at")};
    author_stats.unique_keys = {{"author_id"}};

    ctx.tables = {posts, authors, post_tags, author_stats};
    ctx.event_columns = {{"aggregate_id", "uuid"},
                         {"sequence_number", "bigint"},
                         {"event_type", "text"},
                         {"created_at", "timestamp with time zone"},
                         {"event_json", "jsonb"}};
    ctx.aggregate_id_column = "aggregate_id";
    ctx.event_type_column = "event_type";
    ctx.json_column = "event_json";
    return ctx;
}

// The blog's rules: posts are partitioned (always found by the event's aggregate_id), authors and
// author_stats shared (found by the post event's $.author_id), post_tags append-only.
inline const char* blog_rules() {
    return R"({
  "AuthorRegistered": [{"insert": "authors", "values": {"id": "aggregate_id", "name": "$.name"}}],
  "AuthorRemoved": [{"delete": "authors", "key": {"id": "aggregate_id"}}],
  "PostDrafted": [
    {"insert": "posts", "values": {"id": "aggregate_id", "author_id": "$.author_id::uuid", "title": "$.title"}},
    {"increment": "authors", "key": {"id": "$.author_id::uuid"}, "column": "post_count"},
    {"upsert": "author_stats", "key": {"author_id": "$.author_id::uuid"},
     "values": {"events": 1, "last_event_at": "created_at"},
     "set": {"events": {"add": 1}, "last_event_at": {"greatest": "created_at"}}}
  ],
  "PostTagged": [
    {"insert": "post_tags", "values": {"post_id": "aggregate_id", "tag": "$.tag"}},
    {"update": "posts", "key": {"id": "aggregate_id"}, "set": {"tag_count": {"add": 1}}}
  ],
  "PostRetitled": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"title": "$.title"}}],
  "PostPublished": [{"update": "posts", "key": {"id": "aggregate_id"}, "set": {"published": true, "published_at": "created_at"}}],
  "PostDeleted": [
    {"delete": "posts", "key": {"id": "aggregate_id"}},
    {"decrement": "authors", "key": {"id": "$.author_id::uuid"}, "column": "post_count"}
  ]
})";
}

inline Plan compile_blog(std::string_view rules) { return compile_rules(rules, blog_context(), FakeTypes()); }

inline int table_index(const Plan& plan, const std::string& name) {
    for (std::size_t i = 0; i < plan.tables.size(); ++i)
        if (plan.tables[i].info.name == name) return static_cast<int>(i);
    ADD_FAILURE() << "no table " << name;
    return -1;
}

inline int column_index(const Plan& plan, const std::string& table, const std::string& column) {
    const auto& cols = plan.tables[table_index(plan, table)].info.columns;
    for (std::size_t i = 0; i < cols.size(); ++i)
        if (cols[i].name == column) return static_cast<int>(i);
    ADD_FAILURE() << "no column " << table << "." << column;
    return -1;
}

// How a source is named in these tests: an event column by its name, a JSON path as "$.a.b"
// (without its cast), a constant as "=" followed by its text ("=1", "=true", "=null").
inline std::string source_name(const Source& s) {
    switch (s.kind) {
        case Source::Kind::EventColumn: return s.column;
        case Source::Kind::JsonPath: {
            std::string out = "$";
            for (const auto& p : s.path) out += "." + p;
            return out;
        }
        case Source::Kind::Constant: return "=" + s.constant.value_or("null");
    }
    return "?";
}

// The index in plan.sources of the source named `name` (see source_name) for a column of
// `base_type` (any, if empty); -1 (and a test failure) if there is not exactly one.
inline int source_index(const Plan& plan, const std::string& name, const std::string& base_type = {}) {
    int found = -1, count = 0;
    for (std::size_t i = 0; i < plan.sources.size(); ++i) {
        if (source_name(plan.sources[i].source) != name) continue;
        if (!base_type.empty() && plan.sources[i].base_type != base_type) continue;
        found = static_cast<int>(i);
        ++count;
    }
    if (count != 1) {
        ADD_FAILURE() << count << " sources named " << name << " (" << base_type << ")";
        return -1;
    }
    return found;
}

// One event as the replay scan hands it to the engine: a value per plan source, NULL for sources
// the event's type does not use. `fields` maps event column names and "$.paths" to their
// engine-form values (uuids and text as text, integers and timestamps as decimal text, timestamps
// in microseconds since 1970); constants are filled in from the plan.
struct TestEvent {
    std::string type;
    std::vector<std::optional<std::string>> values;
    // The values as the engine reads them: views of `values`, rebuilt on every call (a copied
    // TestEvent must not hand out views of the original).
    EventInput input() const {
        views.clear();
        for (const auto& v : values) views.push_back(v ? Value(*v) : std::nullopt);
        return EventInput{type, views.data()};
    }
    mutable std::vector<Value> views;
};

inline TestEvent make_event(const Plan& plan, const std::string& type,
                            const std::map<std::string, std::optional<std::string>>& fields) {
    TestEvent e{type, std::vector<std::optional<std::string>>(plan.sources.size())};
    for (std::size_t i = 0; i < plan.sources.size(); ++i) {
        const SourceExpr& s = plan.sources[i];
        if (std::find(s.event_types.begin(), s.event_types.end(), type) == s.event_types.end()) continue;
        if (s.source.kind == Source::Kind::Constant) {
            e.values[i] = s.source.constant;
            continue;
        }
        auto it = fields.find(source_name(s.source));
        if (it != fields.end()) e.values[i] = it->second;
    }
    return e;
}

}  // namespace viewmig::core::decl_test
