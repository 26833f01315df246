// Name rules for replay and archive schemas (see schema_rules.hpp).
#include "core/schema_rules.hpp"

namespace viewmig::core {

std::optional<std::string> forbidden_schema_reason(std::string_view candidate, const SchemaRoles& roles) {
    if (candidate.empty()) return "the name is empty";
    if (candidate == roles.view_schema) return "it is the view schema";
    if (candidate == roles.event_schema) return "it holds the event table";
    if (roles.other && candidate == *roles.other) return "the replay and archive schemas must differ";
    if (candidate == "public") return "it is the public schema";
    if (candidate == "viewmig") return "it is viewmig's own schema";
    if (candidate == "information_schema") return "it is a system schema";
    if (candidate.substr(0, 3) == "pg_") return "names starting with pg_ are reserved for system schemas";
    return std::nullopt;
}

}  // namespace viewmig::core
