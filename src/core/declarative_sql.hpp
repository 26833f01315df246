// The SQL both replay paths of a declarative projector run, generated from its Plan:
//  - the row path: a PL/pgSQL handler with one statement per rule (used for increments, live
//    projection, view-schema migrations, and as the engine's reference in the equality tests);
//  - the engine path: the scan's value columns, the reads of cached shared rows and the
//    UPDATE/DELETE of changed ones.
// Both cast every value the same way, CAST(CAST(source AS rule cast) AS column base type), and
// leave the column's typmod to assignment (row path) or to its input function (COPY), which agree.
#pragma once

#include "core/declarative_rules.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace viewmig::core {

std::string sql_ident(std::string_view name);     // always double-quoted
std::string sql_literal(std::string_view value);  // '...' (E'...' when it holds a backslash)

// The value of a plan source for a column, over the event row `alias`.
std::string source_value_sql(const Plan& plan, int source, const std::string& alias);
// The scan column of a plan source in the engine's form (see declarative_engine.hpp), NULL for
// events of types that do not use it.
std::string scan_column_sql(const Plan& plan, int source, const std::string& alias);
// A timestamp scan column's 8 bytes (big-endian microseconds since 2000-01-01, as
// timestamp[tz]_send gives them) in the engine's form; nullopt if it is not 8 bytes.
std::optional<std::string> scan_timestamp_text(std::string_view bytes);
// The same into `out`, without allocating: the text's length, or -1 (not 8 bytes).
int scan_timestamp_chars(std::string_view bytes, char (&out)[24]);
// A column of `alias` in the engine's form, and the SQL value of engine-form text `expr` for it.
std::string engine_form_sql(const ColumnInfo& col, const std::string& alias);
std::string from_engine_form_sql(const ColumnInfo& col, const std::string& expr);

// CREATE OR REPLACE FUNCTION `function_name`(viewmig_event `event_row_type`) RETURNS void: the rules as SQL.
std::string handler_sql(const Plan& plan, const std::string& function_name, const std::string& event_row_type);

// Rows of a table by key: $1..$k are text arrays of key values in the engine's form.
std::string select_rows_sql(const CompiledTable& table);
// UPDATE (key columns first, then the rest) and DELETE (key columns) from text arrays $1..$n.
std::string update_rows_sql(const CompiledTable& table, const std::vector<int>& columns);
std::string delete_rows_sql(const CompiledTable& table, const std::vector<int>& columns);

}  // namespace viewmig::core
