// The small JSON reader behind declarative projector rules (src/core/json_value.hpp): RFC 8259
// values, objects in document order, numbers kept as their text, errors as JsonParseError.
#include "core/json_value.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace viewmig::core {
namespace {

using namespace std::string_literals;
using Type = JsonValue::Type;

// The message of the JsonParseError `text` raises, or "" (and a failure) if it parses.
std::string parse_error(std::string_view text) {
    try {
        parse_json(text);
    } catch (const JsonParseError& e) {
        return e.what();
    }
    ADD_FAILURE() << "parsed: " << text;
    return {};
}

std::string parse_string(std::string_view text) {
    const JsonValue v = parse_json(text);
    EXPECT_EQ(v.type, Type::String) << text;
    return v.text;
}

// ---- scalars ------------------------------------------------------------------------------------

TEST(JsonValue, Literals) {
    EXPECT_EQ(parse_json("null").type, Type::Null);
    const JsonValue t = parse_json("true"), f = parse_json("false");
    EXPECT_EQ(t.type, Type::Bool);
    EXPECT_TRUE(t.boolean);
    EXPECT_EQ(f.type, Type::Bool);
    EXPECT_FALSE(f.boolean);
}

TEST(JsonValue, SurroundingWhitespaceIsIgnored) {
    EXPECT_TRUE(parse_json(" \t\r\n true \n").boolean);
    EXPECT_EQ(parse_json("\n[ 1 , 2 ]\t").items.size(), 2u);
    EXPECT_EQ(parse_json("{ \"a\" : 1 }").members.size(), 1u);
}

TEST(JsonValue, NumbersKeepTheirText) {
    for (const char* n : {"0", "-0", "7", "-12", "123456789012345678901234567890", "3.25", "-0.5", "1e10", "1E+2",
                          "2.5e-3", "0.0"}) {
        const JsonValue v = parse_json(n);
        EXPECT_EQ(v.type, Type::Number) << n;
        EXPECT_EQ(v.text, n);
    }
}

TEST(JsonValue, MalformedNumbers) {
    for (const char* n : {"-", "1.", ".5", "+1", "1e", "1e+", "-.5", "1.e3", "--1", "0x10", "1_000", "Infinity", "NaN"})
        EXPECT_THROW(parse_json(n), JsonParseError) << n;
}

TEST(JsonValue, LeadingZerosAreNotJson) {
    for (const char* n : {"01", "-01", "00", "007.5", "[01]"}) EXPECT_THROW(parse_json(n), JsonParseError) << n;
    EXPECT_EQ(parse_json("0.01").text, "0.01");
    EXPECT_EQ(parse_json("-0e5").text, "-0e5");
}

// ---- strings ------------------------------------------------------------------------------------

TEST(JsonValue, PlainStrings) {
    EXPECT_EQ(parse_string(R"("")"), "");
    EXPECT_EQ(parse_string(R"("hello world")"), "hello world");
    EXPECT_EQ(parse_string("\"caf\xC3\xA9\""), "caf\xC3\xA9");  // raw UTF-8 passes through
    EXPECT_EQ(parse_string("\"it's\""), "it's");
}

TEST(JsonValue, SimpleEscapes) {
    EXPECT_EQ(parse_string(R"("\"\\\/\b\f\n\r\t")"), "\"\\/\b\f\n\r\t");
    EXPECT_EQ(parse_string(R"("a\tb\nc")"), "a\tb\nc");
    EXPECT_EQ(parse_string(R"("C:\\temp\\new")"), "C:\\temp\\new");
}

TEST(JsonValue, UnicodeEscapesBecomeUtf8) {
    EXPECT_EQ(parse_string(R"("\u0041")"), "A");
    EXPECT_EQ(parse_string(R"("\u007f")"), "\x7F");
    EXPECT_EQ(parse_string(R"("\u00e9")"), "\xC3\xA9");      // é, two bytes
    EXPECT_EQ(parse_string(R"("\u00E9")"), "\xC3\xA9");      // upper-case hex
    EXPECT_EQ(parse_string(R"("\u07FF")"), "\xDF\xBF");      // last two-byte code point
    EXPECT_EQ(parse_string(R"("\u0800")"), "\xE0\xA0\x80");  // first three-byte code point
    EXPECT_EQ(parse_string(R"("\u20AC")"), "\xE2\x82\xAC");  // €
    EXPECT_EQ(parse_string(R"("\uFFFF")"), "\xEF\xBF\xBF");
    EXPECT_EQ(parse_string(R"("x\u0022y")"), "x\"y");
}

TEST(JsonValue, SurrogatePairsBecomeOneCodePoint) {
    EXPECT_EQ(parse_string(R"("\uD83D\uDE00")"), "\xF0\x9F\x98\x80");  // 😀 U+1F600
    EXPECT_EQ(parse_string(R"("\ud834\udd1e")"), "\xF0\x9D\x84\x9E");  // 𝄞 U+1D11E
    EXPECT_EQ(parse_string(R"("\uD800\uDC00")"), "\xF0\x90\x80\x80");  // U+10000
    EXPECT_EQ(parse_string(R"("\uDBFF\uDFFF")"), "\xF4\x8F\xBF\xBF");  // U+10FFFF
    EXPECT_EQ(parse_string(R"("a\uD83D\uDE00b")"), "a\xF0\x9F\x98\x80" "b");
}

TEST(JsonValue, LoneSurrogatesAreRejected) {
    // A lone surrogate has no UTF-8 form; PostgreSQL's json rejects it too.
    for (const char* s : {R"("\uD83D")", R"("\uD83Dx")", R"("\uDE00")", R"("a\uDC00b")", R"("\uD83D\u0041")",
                          R"("\uD83D\uD83D")", R"("\uD83D\n")"})
        EXPECT_THROW(parse_json(s), JsonParseError) << s;
}

TEST(JsonValue, NulEscapeIsRejected) {
    // \u0000 can not be held by a PostgreSQL text (nor by the C strings SQL text becomes).
    EXPECT_THROW(parse_json(R"("a\u0000b")"), JsonParseError);
}

TEST(JsonValue, MalformedStrings) {
    EXPECT_NE(parse_error(R"("abc)").find("unterminated string"), std::string::npos);
    EXPECT_NE(parse_error(R"("abc\)").find("unterminated string"), std::string::npos);
    EXPECT_NE(parse_error(R"("\x41")").find("unknown escape"), std::string::npos);
    EXPECT_NE(parse_error(R"("\'")").find("unknown escape"), std::string::npos);
    EXPECT_NE(parse_error(R"("\u12")").find("\\u escape"), std::string::npos);
    EXPECT_NE(parse_error(R"("\u12G4")").find("\\u escape"), std::string::npos);
    EXPECT_NE(parse_error("\"a\nb\"").find("control character"), std::string::npos);
    EXPECT_NE(parse_error("\"a\tb\"").find("control character"), std::string::npos);
    EXPECT_NE(parse_error("\"\x01\"").find("control character"), std::string::npos);
    EXPECT_THROW(parse_json("'single'"), JsonParseError);
}

// ---- arrays and objects -------------------------------------------------------------------------

TEST(JsonValue, Arrays) {
    const JsonValue empty = parse_json("[]");
    EXPECT_TRUE(empty.is_array());
    EXPECT_TRUE(empty.items.empty());
    const JsonValue a = parse_json(R"([1, "two", true, null, [3], {"k": 4}])");
    ASSERT_EQ(a.items.size(), 6u);
    EXPECT_EQ(a.items[0].text, "1");
    EXPECT_EQ(a.items[1].text, "two");
    EXPECT_TRUE(a.items[2].boolean);
    EXPECT_EQ(a.items[3].type, Type::Null);
    ASSERT_TRUE(a.items[4].is_array());
    EXPECT_EQ(a.items[4].items.at(0).text, "3");
    ASSERT_TRUE(a.items[5].is_object());
    EXPECT_EQ(a.items[5].find("k")->text, "4");
}

TEST(JsonValue, ObjectsKeepDocumentOrder) {
    const JsonValue o = parse_json(R"({"z": 1, "a": "x", "m": [], "b": {}})");
    ASSERT_TRUE(o.is_object());
    ASSERT_EQ(o.members.size(), 4u);
    EXPECT_EQ(o.members[0].first, "z");
    EXPECT_EQ(o.members[1].first, "a");
    EXPECT_EQ(o.members[2].first, "m");
    EXPECT_EQ(o.members[3].first, "b");
    EXPECT_TRUE(o.members[2].second.is_array());
    EXPECT_TRUE(o.members[3].second.is_object());
    EXPECT_TRUE(parse_json("{}").is_object());
    EXPECT_TRUE(parse_json("{}").members.empty());
}

TEST(JsonValue, FindMembers) {
    const JsonValue o = parse_json(R"({"a": 1, "b\"c": 2, "": 3, "\u00e9": 4})");
    ASSERT_NE(o.find("a"), nullptr);
    EXPECT_EQ(o.find("a")->text, "1");
    ASSERT_NE(o.find("b\"c"), nullptr);  // member names are unescaped
    EXPECT_EQ(o.find("b\"c")->text, "2");
    ASSERT_NE(o.find(""), nullptr);
    EXPECT_EQ(o.find("")->text, "3");
    ASSERT_NE(o.find("\xC3\xA9"), nullptr);
    EXPECT_EQ(o.find("missing"), nullptr);
    EXPECT_EQ(o.find("A"), nullptr);  // case-sensitive
    // Not an object: nothing to find.
    EXPECT_EQ(parse_json("[1]").find("0"), nullptr);
}

TEST(JsonValue, DuplicateMembersAreKeptAndFindReturnsTheFirst) {
    const JsonValue o = parse_json(R"({"a": 1, "a": 2})");
    ASSERT_EQ(o.members.size(), 2u);
    EXPECT_EQ(o.find("a")->text, "1");
}

TEST(JsonValue, DeepNesting) {
    const JsonValue v = parse_json(R"({"a": {"b": {"c": [[[{"d": "deep"}]]]}}})");
    const JsonValue* c = v.find("a")->find("b")->find("c");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->items.at(0).items.at(0).items.at(0).find("d")->text, "deep");

    // Up to 64 levels under the top one are fine; much deeper is refused, not a stack overflow.
    const std::string ok = std::string(65, '[') + std::string(65, ']');
    EXPECT_NO_THROW(parse_json(ok));
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_NE(parse_error(deep).find("nested too deeply"), std::string::npos);
}

TEST(JsonValue, StructuralErrors) {
    EXPECT_NE(parse_error("").find("unexpected end"), std::string::npos);
    EXPECT_NE(parse_error("   ").find("unexpected end"), std::string::npos);
    EXPECT_NE(parse_error("[1, 2").find("expected ']'"), std::string::npos);
    EXPECT_NE(parse_error("[1 2]").find("expected ']'"), std::string::npos);
    EXPECT_NE(parse_error("[1,]").find("unexpected character"), std::string::npos);
    EXPECT_NE(parse_error("[,1]").find("unexpected character"), std::string::npos);
    EXPECT_NE(parse_error(R"({"a" 1})").find("expected ':'"), std::string::npos);
    EXPECT_NE(parse_error(R"({"a": 1,})").find("expected a member name"), std::string::npos);
    EXPECT_NE(parse_error(R"({a: 1})").find("expected a member name"), std::string::npos);
    EXPECT_NE(parse_error(R"({1: 1})").find("expected a member name"), std::string::npos);
    EXPECT_NE(parse_error(R"({"a": 1)").find("expected '}'"), std::string::npos);
    EXPECT_NE(parse_error(R"({"a": })").find("unexpected character"), std::string::npos);
    EXPECT_NE(parse_error("1 2").find("unexpected text after"), std::string::npos);
    EXPECT_NE(parse_error("{} []").find("unexpected text after"), std::string::npos);
    EXPECT_NE(parse_error("nul").find("unexpected character"), std::string::npos);
    EXPECT_NE(parse_error("True").find("unexpected character"), std::string::npos);
    EXPECT_THROW(parse_json("truex"), JsonParseError);
    EXPECT_THROW(parse_json("[nullx]"), JsonParseError);
    EXPECT_THROW(parse_json("\xEF\xBB\xBF{}"), JsonParseError);  // no byte order mark
    EXPECT_THROW(parse_json("{}\f"), JsonParseError);            // form feed is not JSON whitespace
}

TEST(JsonValue, ErrorsNameTheOffset) {
    EXPECT_NE(parse_error("[1, 2 x]").find("at offset 6"), std::string::npos) << parse_error("[1, 2 x]");
    EXPECT_NE(parse_error("  @").find("at offset 2"), std::string::npos);
    EXPECT_NE(parse_error("[]]").find("at offset 2"), std::string::npos);
}

TEST(JsonValue, TypeNames) {
    EXPECT_STREQ(parse_json("null").type_name(), "null");
    EXPECT_STREQ(parse_json("true").type_name(), "boolean");
    EXPECT_STREQ(parse_json("1").type_name(), "number");
    EXPECT_STREQ(parse_json("\"s\"").type_name(), "string");
    EXPECT_STREQ(parse_json("[]").type_name(), "array");
    EXPECT_STREQ(parse_json("{}").type_name(), "object");
    EXPECT_TRUE(parse_json("\"s\"").is_string());
    EXPECT_FALSE(parse_json("1").is_string());
    EXPECT_FALSE(parse_json("[]").is_object());
}

TEST(JsonValue, JsonbTextOutputRoundTrip) {
    // What jsonb's text output looks like: ", " and ": " separators, keys sorted by length.
    const JsonValue v = parse_json(
        R"({"Ev": [{"key": {"id": "aggregate_id"}, "set": {"n": {"add": -1.5e2}}, "update": "t"}], "Other": [{"insert": "u", "values": {"x": null, "y": false}}]})");
    ASSERT_EQ(v.members.size(), 2u);
    const JsonValue& rule = v.find("Ev")->items.at(0);
    EXPECT_EQ(rule.find("update")->text, "t");
    EXPECT_EQ(rule.find("set")->find("n")->find("add")->text, "-1.5e2");
    EXPECT_EQ(v.find("Other")->items.at(0).find("values")->find("x")->type, Type::Null);
}

}  // namespace
}  // namespace viewmig::core
