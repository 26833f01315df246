// The statements a background index migration runs, rendered from a structured description so
// that every identifier is quoted by one function and the same description always gives the
// same text (enqueuing the same index twice is recognised by its definition). Pure C++.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace viewmig::core {

using QuoteIdent = std::function<std::string(const std::string&)>;

struct IndexSpec {
    std::string schema, table, name;  // unquoted
    std::vector<std::string> columns;
    std::vector<std::string> include;
    bool unique = false;
    std::string method = "btree";
    std::optional<std::string> where;  // an SQL expression, used verbatim inside parentheses
};

enum class IndexBuild { Concurrently, OnlyParent, Plain };

// CREATE [UNIQUE] INDEX [CONCURRENTLY] IF NOT EXISTS name ON [ONLY] schema.table USING method
// (cols) [INCLUDE (...)] [WHERE (...)]
std::string render_create_index(const IndexSpec& spec, IndexBuild build, const QuoteIdent& quote);

// DROP INDEX CONCURRENTLY IF EXISTS schema.name
std::string render_drop_index(const std::string& schema, const std::string& name, const QuoteIdent& quote);

}  // namespace viewmig::core
