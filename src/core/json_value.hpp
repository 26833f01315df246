// A parsed JSON document, for reading declarative projector rules in pure C++ (the rules arrive
// as jsonb's text output). Objects keep their members in document order; numbers keep their
// text, so an integer constant reaches SQL exactly as written.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace viewmig::core {

struct JsonValue {
    enum class Type { Null, Bool, Number, String, Array, Object };
    Type type = Type::Null;
    bool boolean = false;
    std::string text;  // a string's value or a number's literal
    std::vector<JsonValue> items;
    std::vector<std::pair<std::string, JsonValue>> members;

    bool is_object() const { return type == Type::Object; }
    bool is_array() const { return type == Type::Array; }
    bool is_string() const { return type == Type::String; }
    // The member's value, or nullptr.
    const JsonValue* find(std::string_view key) const;
    // "object", "array", "string", ... for error messages.
    const char* type_name() const;
};

struct JsonParseError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws JsonParseError on malformed input.
JsonValue parse_json(std::string_view text);

}  // namespace viewmig::core
