// What register_projector() and register_declarative_projector() share: the checks of managed
// tables and options, and recording a definition as a projector version (active, or pending when
// another version is active; the same definition again is the same version).
#pragma once

#include "pg/catalog.hpp"
#include "pg/spi.hpp"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace viewmig::pg {

// Returns the view schema and the table names (in the given order).
std::pair<std::string, std::vector<std::string>> check_managed_tables(const EventStore& es, const SqlParam& tables);
void check_against_other_projectors(const std::string& projector, const std::string& view_schema,
                                    const std::vector<std::string>& tables);
void check_patterns(const SqlParam& patterns, const SqlParam& event_types);

struct ProjectorDefinition {
    std::string name;
    SqlParam handler;  // regprocedure
    std::string view_schema;
    std::vector<std::string> tables;
    SqlParam indexes, event_types;
    bool live = false;
    std::string mode;
    std::optional<std::string> rules, json_column;
};

// The role a projector belongs to: the role that registered it first, or the caller for a new one.
Oid projector_owner(const std::string& projector);

// Returns the version number; installs the live-projection trigger for live projectors.
int record_projector_version(const ProjectorDefinition& d, const EventStore& es);

}  // namespace viewmig::pg
