// Which schema names viewmig may create, fill and later DROP as replay or archive schema.
// Dropping the wrong schema is the one mistake an online rebuild must never make, so the rules
// live in one place and are unit-tested. The catalog part ("exists, but viewmig did not create
// it") is checked by the caller; this file holds the rules that need only names.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace viewmig::core {

struct SchemaRoles {
    std::string view_schema;
    std::string event_schema;
    std::optional<std::string> other;  // the archive schema when checking the replay schema, and vice versa
};

// Why `candidate` can not be used as a replay/archive schema, or nullopt when it can.
std::optional<std::string> forbidden_schema_reason(std::string_view candidate, const SchemaRoles& roles);

}  // namespace viewmig::core
