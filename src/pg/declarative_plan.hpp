// A declarative projector's rules compiled against the catalog: the managed tables' columns,
// types, defaults and keys and the event table's columns are read here and handed to the pure C++
// compiler (core/declarative_rules.hpp), with PostgreSQL answering the type questions.
#pragma once

#include "core/declarative_rules.hpp"
#include "pg/catalog.hpp"

#include <string>
#include <vector>

namespace viewmig::pg {

// Compiles `rules` (jsonb text) for tables `tables` of `schema`; a rule mistake is a UserError
// naming the rule. Read the view schema's tables: the replay schema's copies may lack their keys
// while the engine bulk-loads them.
core::Plan compile_declarative_plan(const EventStore& es, const std::string& rules, const std::string& schema,
                                    const std::vector<std::string>& tables, const std::string& json_column);

// The plan of a registered declarative projector version.
core::Plan compile_declarative_plan(const EventStore& es, const ProjectorVersion& p);

}  // namespace viewmig::pg
