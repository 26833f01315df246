// Rendering index statements (see index_definition.hpp).
#include "core/index_definition.hpp"

namespace viewmig::core {
namespace {

std::string column_list(const std::vector<std::string>& columns, const QuoteIdent& quote) {
    std::string out;
    for (const std::string& c : columns) out += (out.empty() ? "" : ", ") + quote(c);
    return out;
}

}  // namespace

std::string render_create_index(const IndexSpec& spec, IndexBuild build, const QuoteIdent& quote) {
    std::string sql = spec.unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ";
    if (build == IndexBuild::Concurrently) sql += "CONCURRENTLY ";
    sql += "IF NOT EXISTS " + quote(spec.name) + " ON ";
    if (build == IndexBuild::OnlyParent) sql += "ONLY ";
    sql += quote(spec.schema) + "." + quote(spec.table) + " USING " + quote(spec.method) + " (" +
           column_list(spec.columns, quote) + ")";
    if (!spec.include.empty()) sql += " INCLUDE (" + column_list(spec.include, quote) + ")";
    if (spec.where) sql += " WHERE (" + *spec.where + ")";
    return sql;
}

std::string render_drop_index(const std::string& schema, const std::string& name, const QuoteIdent& quote) {
    return "DROP INDEX CONCURRENTLY IF EXISTS " + quote(schema) + "." + quote(name);
}

}  // namespace viewmig::core
