// JSON text for job events and NOTIFY payloads (src/core/json_text.hpp): strings escaped per
// RFC 8259, flat objects with keys in insertion order, non-finite doubles as null.
#include "core/json_text.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace viewmig::core {
namespace {

using namespace std::string_literals;

// ---- a strict RFC 8259 reader, to check that the output is JSON and decodes to the input ----------

struct Value {
    enum Kind { String, Number, Literal, Object, Array } kind;
    std::string text;  // decoded for strings; the source text otherwise
};

class Reader {
public:
    explicit Reader(std::string_view s) : s_(s) {}

    // The whole text as one value, or nullopt if it is not valid JSON.
    std::optional<Value> document() {
        std::optional<Value> v = value();
        ws();
        if (!v || pos_ != s_.size()) return std::nullopt;
        return v;
    }

    // The members of a JSON object, in order, or nullopt if the text is not one.
    std::optional<std::vector<std::pair<std::string, Value>>> object_members() {
        std::vector<std::pair<std::string, Value>> members;
        ws();
        if (!eat('{')) return std::nullopt;
        ws();
        if (!eat('}')) {
            do {
                ws();
                std::optional<std::string> k = string();
                ws();
                if (!k || !eat(':')) return std::nullopt;
                std::optional<Value> v = value();
                if (!v) return std::nullopt;
                members.emplace_back(*k, *v);
                ws();
            } while (eat(','));
            if (!eat('}')) return std::nullopt;
        }
        ws();
        if (pos_ != s_.size()) return std::nullopt;
        return members;
    }

private:
    bool eat(char c) {
        if (pos_ < s_.size() && s_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    void ws() {
        while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    static bool digit(char c) { return c >= '0' && c <= '9'; }
    bool digits() {
        const size_t start = pos_;
        while (pos_ < s_.size() && digit(s_[pos_])) ++pos_;
        return pos_ > start;
    }

    std::optional<Value> value() {
        ws();
        if (pos_ >= s_.size()) return std::nullopt;
        const size_t start = pos_;
        const char c = s_[pos_];
        if (c == '"') {
            std::optional<std::string> str = string();
            if (!str) return std::nullopt;
            return Value{Value::String, *str};
        }
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            ++pos_;
            ws();
            if (!eat(close)) {
                do {
                    if (c == '{') {
                        ws();
                        if (!string()) return std::nullopt;
                        ws();
                        if (!eat(':')) return std::nullopt;
                    }
                    if (!value()) return std::nullopt;
                    ws();
                } while (eat(','));
                if (!eat(close)) return std::nullopt;
            }
            return Value{c == '{' ? Value::Object : Value::Array, std::string(s_.substr(start, pos_ - start))};
        }
        for (std::string_view lit : {"true", "false", "null"}) {
            if (s_.substr(pos_, lit.size()) == lit) {
                pos_ += lit.size();
                return Value{Value::Literal, std::string(lit)};
            }
        }
        // number = [ minus ] int [ frac ] [ exp ]
        eat('-');
        if (eat('0')) {
        } else if (!digits()) {
            return std::nullopt;
        }
        if (eat('.') && !digits()) return std::nullopt;
        if (eat('e') || eat('E')) {
            if (!eat('+')) eat('-');
            if (!digits()) return std::nullopt;
        }
        return Value{Value::Number, std::string(s_.substr(start, pos_ - start))};
    }

    std::optional<std::string> string() {
        if (!eat('"')) return std::nullopt;
        std::string out;
        while (pos_ < s_.size()) {
            const char c = s_[pos_++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;  // must be escaped
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) return std::nullopt;
            switch (s_[pos_++]) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    if (pos_ + 4 > s_.size()) return std::nullopt;
                    unsigned cp = 0;
                    for (int i = 0; i < 4; ++i) {
                        const char h = s_[pos_++];
                        cp <<= 4;
                        if (digit(h)) cp |= static_cast<unsigned>(h - '0');
                        else if (h >= 'a' && h <= 'f') cp |= static_cast<unsigned>(h - 'a' + 10);
                        else if (h >= 'A' && h <= 'F') cp |= static_cast<unsigned>(h - 'A' + 10);
                        else return std::nullopt;
                    }
                    if (cp >= 0x80) return std::nullopt;  // json_string only escapes ASCII controls
                    out += static_cast<char>(cp);
                    break;
                }
                default: return std::nullopt;
            }
        }
        return std::nullopt;  // unterminated
    }

    std::string_view s_;
    size_t pos_ = 0;
};

// The decoded string of a JSON string literal; fails the test if the text is not one.
std::string decode_string(const std::string& json) {
    std::optional<Value> v = Reader(json).document();
    EXPECT_TRUE(v.has_value()) << "not valid JSON: " << json;
    if (!v) return {};
    EXPECT_EQ(v->kind, Value::String) << json;
    return v->text;
}

std::vector<std::pair<std::string, Value>> members(const std::string& json) {
    auto m = Reader(json).object_members();
    EXPECT_TRUE(m.has_value()) << "not a valid JSON object: " << json;
    return m.value_or(std::vector<std::pair<std::string, Value>>{});
}

// The text written for `value` as the only member of an object.
std::string number_text(double value) {
    const std::string json = JsonObject().add("v", value).str();
    const auto m = members(json);
    if (m.size() != 1) {
        ADD_FAILURE() << json;
        return {};
    }
    return m[0].second.text;
}

// ---- the reader itself ------------------------------------------------------------------------------

TEST(JsonReader, RejectsInvalidJson) {
    for (std::string_view bad : {"", "\"", "\"a", "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "{", "{\"a\"}", "{\"a\":}", "{a:1}",
                                 "{\"a\":1,}", "1.", ".5", "01x", "-", "nul", "[1,]"})
        EXPECT_FALSE(Reader(bad).document().has_value()) << bad;
    EXPECT_TRUE(Reader("{\"a\":[1,{\"b\":null}],\"c\":-0.5e+3}").document().has_value());
}

// ---- json_string -----------------------------------------------------------------------------------

TEST(JsonString, PlainTextIsQuoted) {
    EXPECT_EQ(json_string(""), "\"\"");
    EXPECT_EQ(json_string("abc"), "\"abc\"");
    EXPECT_EQ(json_string("replay_initial 42 / done."), "\"replay_initial 42 / done.\"");
    EXPECT_EQ(json_string("it's"), "\"it's\"");  // single quotes need no escape
}

TEST(JsonString, QuotesAndBackslashesAreEscaped) {
    EXPECT_EQ(json_string("\""), R"("\"")");
    EXPECT_EQ(json_string("\\"), R"("\\")");
    EXPECT_EQ(json_string(R"(relation "blog.posts" does not exist)"), R"("relation \"blog.posts\" does not exist")");
    EXPECT_EQ(json_string(R"(C:\path\to)"), R"("C:\\path\\to")");
    EXPECT_EQ(json_string(R"(\")"), R"("\\\"")");  // an escaped quote in the input stays two characters
}

TEST(JsonString, NewlinesTabsAndReturnsUseShortEscapes) {
    EXPECT_EQ(json_string("line 1\nline 2"), R"("line 1\nline 2")");
    EXPECT_EQ(json_string("a\r\nb"), R"("a\r\nb")");
    EXPECT_EQ(json_string("a\tb"), R"("a\tb")");
}

TEST(JsonString, OtherControlCharactersUseUnicodeEscapes) {
    EXPECT_EQ(json_string("\x01"), R"("\u0001")");
    EXPECT_EQ(json_string("\b"), R"("\u0008")");
    EXPECT_EQ(json_string("\f"), R"("\u000c")");
    EXPECT_EQ(json_string("\x1b[0m"), R"("\u001b[0m")");
    EXPECT_EQ(json_string("\x1f"), R"("\u001f")");
    EXPECT_EQ(json_string("a\0b"s), R"("a\u0000b")");  // an embedded NUL is not the end of the text
}

TEST(JsonString, DelAndNonAsciiBytesPassThrough) {
    EXPECT_EQ(json_string("\x7f"), "\"\x7f\"");
    EXPECT_EQ(json_string("relation «blog» – ü 日本"), "\"relation «blog» – ü 日本\"");
}

TEST(JsonString, EveryByteRoundTrips) {
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    const std::string json = json_string(all);
    for (char c : json) EXPECT_GE(static_cast<unsigned char>(c), 0x20) << "raw control character in output";
    EXPECT_EQ(decode_string(json), all);
}

TEST(JsonString, TypicalErrorMessagesRoundTrip) {
    for (std::string msg : {
             "canceling statement due to lock timeout"s,
             "permission denied for table \"posts\"\nDETAIL:  role \"app\" lacks SELECT\tHINT: GRANT it"s,
             "PL/pgSQL function viewmig.x() line 3 at RAISE\r\n"s,
             "\"\\\"\\\\\""s,
             "\x01\x02\x03 \x1e\x1f"s,
         })
        EXPECT_EQ(decode_string(json_string(msg)), msg);
}

// ---- JsonObject ------------------------------------------------------------------------------------

TEST(JsonObject, EmptyObject) { EXPECT_EQ(JsonObject().str(), "{}"); }

TEST(JsonObject, MembersInInsertionOrderWithoutSpaces) {
    EXPECT_EQ(JsonObject().add("step", "replay_initial").add("value", "42").str(), R"({"step":"replay_initial","value":"42"})");
    EXPECT_EQ(JsonObject().add("b", 1).add("a", 2).str(), R"({"b":1,"a":2})");
}

TEST(JsonObject, StringValuesOfEveryFlavour) {
    const std::string s = "std::string";
    const std::string_view sv = "view";
    const char* cs = "c string";
    EXPECT_EQ(JsonObject().add("a", s).add("b", sv).add("c", cs).add("d", "literal").str(),
              R"({"a":"std::string","b":"view","c":"c string","d":"literal"})");
    EXPECT_EQ(JsonObject().add("e", "").str(), R"({"e":""})");
}

TEST(JsonObject, StringValuesAreEscaped) {
    const std::string msg = "relation \"x\" does not exist\nLINE 1: SELECT \\";
    const std::string json = JsonObject().add("error", msg).add("sqlstate", "42P01").str();
    EXPECT_EQ(json, R"({"error":"relation \"x\" does not exist\nLINE 1: SELECT \\","sqlstate":"42P01"})");
    const auto m = members(json);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[0].first, "error");
    EXPECT_EQ(m[0].second.kind, Value::String);
    EXPECT_EQ(m[0].second.text, msg);
}

TEST(JsonObject, KeysAreEscapedToo) {
    const std::string json = JsonObject().add("we\"ird\nkey\\", 1).str();
    EXPECT_EQ(json, R"({"we\"ird\nkey\\":1})");
    const auto m = members(json);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].first, "we\"ird\nkey\\");
}

TEST(JsonObject, Integers) {
    EXPECT_EQ(JsonObject().add("n", 0).str(), R"({"n":0})");
    EXPECT_EQ(JsonObject().add("n", -7).str(), R"({"n":-7})");
    EXPECT_EQ(JsonObject().add("n", std::numeric_limits<int>::max()).str(), R"({"n":2147483647})");
    EXPECT_EQ(JsonObject().add("n", int64_t{1} << 40).str(), R"({"n":1099511627776})");
    EXPECT_EQ(JsonObject().add("n", std::numeric_limits<int64_t>::min()).str(), R"({"n":-9223372036854775808})");
    EXPECT_EQ(JsonObject().add("n", std::numeric_limits<int64_t>::max()).str(), R"({"n":9223372036854775807})");
    EXPECT_EQ(JsonObject().add("n", std::numeric_limits<uint64_t>::max()).str(), R"({"n":18446744073709551615})");
    EXPECT_EQ(JsonObject().add("n", uint64_t{0}).str(), R"({"n":0})");
}

TEST(JsonObject, Booleans) {
    EXPECT_EQ(JsonObject().add("t", true).add("f", false).str(), R"({"t":true,"f":false})");
}

TEST(JsonObject, StringLiteralsAreNotTakenForBooleans) {
    // A const char* must not decay to bool.
    EXPECT_EQ(JsonObject().add("s", "false").str(), R"({"s":"false"})");
    const char* empty = "";
    EXPECT_EQ(JsonObject().add("s", empty).str(), R"({"s":""})");
}

TEST(JsonObject, DoublesHaveThreeDecimals) {
    EXPECT_EQ(JsonObject().add("x", 1.5).str(), R"({"x":1.500})");
    EXPECT_EQ(JsonObject().add("x", 0.0).str(), R"({"x":0.000})");
    EXPECT_EQ(JsonObject().add("x", -2.25).str(), R"({"x":-2.250})");
    EXPECT_EQ(JsonObject().add("x", 123.4567).str(), R"({"x":123.457})");
    EXPECT_EQ(JsonObject().add("x", 1e-9).str(), R"({"x":0.000})");
    EXPECT_EQ(JsonObject().add("x", 123456789.0).str(), R"({"x":123456789.000})");
    for (double v : {0.0, -0.0, 1.5, -2.25, 1e-9, 123.4567, 1e9, -1e15}) {
        const std::string text = number_text(v);
        EXPECT_NEAR(std::strtod(text.c_str(), nullptr), v, 0.0005) << text;
    }
}

TEST(JsonObject, NonFiniteDoublesAreNull) {
    for (double v : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
        const std::string json = JsonObject().add("x", v).add("y", 1).str();
        EXPECT_EQ(json, R"({"x":null,"y":1})") << v;
        const auto m = members(json);
        ASSERT_EQ(m.size(), 2u);
        EXPECT_EQ(m[0].second.kind, Value::Literal);
    }
}

// Large values switch to exponent notation rather than being cut short.
TEST(JsonObject, LargeFiniteDoublesKeepTheirValue) {
    for (double v : {1e26, 1e27, 1.5e29, 1e31, 1e40, -1e300, std::numeric_limits<double>::max()}) {
        const std::string json = JsonObject().add("x", v).str();
        const auto m = Reader(json).object_members();
        if (!m || m->size() != 1 || (*m)[0].second.kind != Value::Number) {
            ADD_FAILURE() << v << " written as invalid JSON: " << json;
            continue;
        }
        const std::string& text = (*m)[0].second.text;
        EXPECT_NEAR(std::strtod(text.c_str(), nullptr) / v, 1.0, 1e-9) << v << " written as " << text;
    }
}

TEST(JsonObject, RawValuesAreInsertedVerbatim) {
    const std::string json = JsonObject()
                                 .add("step", "replay")
                                 .add_raw("stage", R"({"stage":"replay_increment","increments":2})")
                                 .add_raw("keys", R"(["a","b"])")
                                 .add_raw("none", "null")
                                 .add_raw("n", "-1.5e3")
                                 .str();
    EXPECT_EQ(json,
              R"({"step":"replay","stage":{"stage":"replay_increment","increments":2},"keys":["a","b"],"none":null,"n":-1.5e3})");
    const auto m = members(json);
    ASSERT_EQ(m.size(), 5u);
    EXPECT_EQ(m[1].second.kind, Value::Object);
    EXPECT_EQ(m[2].second.kind, Value::Array);
    EXPECT_EQ(m[3].second.kind, Value::Literal);
    EXPECT_EQ(m[4].second.kind, Value::Number);
}

TEST(JsonObject, NestedObjectsComposeThroughAddRaw) {
    const std::string inner = JsonObject().add("pid", 4242).add("run_as", "app \"owner\"").str();
    const std::string outer = JsonObject().add("attempt", 2).add_raw("worker", inner).str();
    EXPECT_EQ(outer, R"({"attempt":2,"worker":{"pid":4242,"run_as":"app \"owner\""}})");
    const auto m = members(outer);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m[1].second.text, inner);
    const auto in = members(m[1].second.text);
    ASSERT_EQ(in.size(), 2u);
    EXPECT_EQ(in[1].second.text, "app \"owner\"");
}

TEST(JsonObject, AJobFailureEventIsValidJson) {
    // As record_job_failure() builds it.
    JsonObject details;
    details.add("error", "deadlock detected").add("sqlstate", "40P01").add("attempt", 3);
    details.add("detail", "Process 12 waits for ShareLock on transaction 7;\nblocked by process 13.");
    details.add("context", "SQL statement \"SELECT viewmig.replay_increment()\"");
    details.add("retry_in_s", 40);
    const auto m = members(details.str());
    ASSERT_EQ(m.size(), 6u);
    const std::vector<std::string> keys{"error", "sqlstate", "attempt", "detail", "context", "retry_in_s"};
    for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(m[i].first, keys[i]);
    EXPECT_EQ(m[2].second.kind, Value::Number);
    EXPECT_EQ(m[2].second.text, "3");
    EXPECT_EQ(m[3].second.text, "Process 12 waits for ShareLock on transaction 7;\nblocked by process 13.");
    EXPECT_EQ(m[4].second.text, "SQL statement \"SELECT viewmig.replay_increment()\"");
}

TEST(JsonObject, StrCanBeCalledRepeatedlyAndAddingContinues) {
    JsonObject o;
    o.add("a", 1);
    EXPECT_EQ(o.str(), R"({"a":1})");
    EXPECT_EQ(o.str(), R"({"a":1})");
    o.add("b", true);
    EXPECT_EQ(o.str(), R"({"a":1,"b":true})");
}

}  // namespace
}  // namespace viewmig::core
