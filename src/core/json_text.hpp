// A flat JSON object written as text, for job event details and NOTIFY payloads built in C++
// (strings escaped per RFC 8259, so error messages with quotes or newlines stay valid JSON).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace viewmig::core {

std::string json_string(std::string_view s);

class JsonObject {
public:
    JsonObject& add(std::string_view key, std::string_view value);
    JsonObject& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
    JsonObject& add(std::string_view key, int64_t value);
    JsonObject& add(std::string_view key, int value) { return add(key, static_cast<int64_t>(value)); }
    JsonObject& add(std::string_view key, uint64_t value);
    JsonObject& add(std::string_view key, bool value);
    JsonObject& add(std::string_view key, double value);
    // `json` is already valid JSON (an object, array, number...).
    JsonObject& add_raw(std::string_view key, std::string_view json);
    std::string str() const { return "{" + body_ + "}"; }

private:
    void key(std::string_view k);
    std::string body_;
};

}  // namespace viewmig::core
