// SQL text of a declarative projector's two paths (see declarative_sql.hpp). Every identifier is
// double-quoted and every constant a literal: rules can not inject SQL.
#include "core/declarative_sql.hpp"

#include <charconv>

#include <algorithm>

namespace viewmig::core {

std::string sql_ident(std::string_view name) {
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

std::string sql_literal(std::string_view value) {
    const bool backslash = value.find('\\') != std::string_view::npos;
    std::string out = backslash ? "E'" : "'";
    for (char c : value) {
        if (c == '\'') out += "''";
        else if (c == '\\') out += "\\\\";
        else out += c;
    }
    return out + "'";
}

namespace {

// The handler's parameter: a name no managed table's column is likely to have (PL/pgSQL refuses
// a statement where a variable and a column share a name).
constexpr const char* kEvent = "viewmig_event";

std::string raw_source_sql(const Plan& plan, const Source& s, const std::string& alias) {
    std::string v;
    switch (s.kind) {
        case Source::Kind::EventColumn: v = alias + "." + sql_ident(s.column); break;
        case Source::Kind::JsonPath: {
            std::string path;
            for (const auto& p : s.path) path += (path.empty() ? "" : ", ") + sql_literal(p);
            v = "(" + alias + "." + sql_ident(plan.json_column) + " #>> ARRAY[" + path + "]::text[])";
            break;
        }
        case Source::Kind::Constant:
            if (!s.constant) v = "NULL";
            else if (s.constant_is_string) v = sql_literal(*s.constant);
            else v = *s.constant;  // a JSON number or true/false: valid SQL as written
            break;
    }
    return s.cast.empty() ? v : "CAST(" + v + " AS " + s.cast + ")";
}

std::string event_type_list(const std::vector<std::string>& types) {
    std::string out;
    for (const auto& t : types) out += (out.empty() ? "" : ", ") + sql_literal(t);
    return out;
}

std::string assignment_sql(const Plan& plan, const CompiledOp& op, const Assignment& a, const std::string& row_alias) {
    const ColumnInfo& col = plan.tables[op.table].info.columns[a.column];
    const std::string v = source_value_sql(plan, a.source, kEvent);
    const std::string current = row_alias + "." + sql_ident(col.name);
    switch (a.action) {
        case Action::Set: return sql_ident(col.name) + " = " + v;
        case Action::Add: return sql_ident(col.name) + " = " + current + " + " + v;
        case Action::Subtract: return sql_ident(col.name) + " = " + current + " - " + v;
        case Action::Greatest: return sql_ident(col.name) + " = greatest(" + current + ", " + v + ")";
        case Action::Least: return sql_ident(col.name) + " = least(" + current + ", " + v + ")";
    }
    return {};
}

std::string key_condition(const Plan& plan, const CompiledOp& op, const std::string& row_alias) {
    const CompiledTable& t = plan.tables[op.table];
    std::string out;
    for (std::size_t i = 0; i < t.key_columns.size(); ++i)
        out += (i ? " AND " : "") + row_alias + "." + sql_ident(t.info.columns[t.key_columns[i]].name) + " = " +
               source_value_sql(plan, op.key_sources[i], kEvent);
    return out;
}

std::string statement_sql(const Plan& plan, const CompiledOp& op) {
    const CompiledTable& t = plan.tables[op.table];
    const std::string table = sql_ident(t.info.name);
    auto joined = [&](const std::vector<Assignment>& list, auto&& f) {
        std::string out;
        for (const auto& a : list) out += (out.empty() ? "" : ", ") + f(a);
        return out;
    };
    auto insert_sql = [&](const std::string& alias) {
        return "INSERT INTO " + table + (alias.empty() ? "" : " AS " + alias) + " (" +
               joined(op.values, [&](const Assignment& a) { return sql_ident(t.info.columns[a.column].name); }) + ") VALUES (" +
               joined(op.values, [&](const Assignment& a) { return source_value_sql(plan, a.source, kEvent); }) + ")";
    };
    auto set_sql = [&] { return joined(op.set, [&](const Assignment& a) { return assignment_sql(plan, op, a, "r"); }); };
    switch (op.kind) {
        case OpKind::Insert: return insert_sql("");
        case OpKind::Update: return "UPDATE " + table + " AS r SET " + set_sql() + " WHERE " + key_condition(plan, op, "r");
        case OpKind::Delete: return "DELETE FROM " + table + " AS r WHERE " + key_condition(plan, op, "r");
        case OpKind::Upsert: {
            std::string keys;
            for (int c : t.key_columns) keys += (keys.empty() ? "" : ", ") + sql_ident(t.info.columns[c].name);
            return insert_sql("r") + " ON CONFLICT (" + keys + ") DO UPDATE SET " + set_sql();
        }
    }
    return {};
}

}  // namespace

std::string source_value_sql(const Plan& plan, int source, const std::string& alias) {
    const SourceExpr& s = plan.sources[source];
    return "CAST(" + raw_source_sql(plan, s.source, alias) + " AS " + s.base_type + ")";
}

std::string scan_column_sql(const Plan& plan, int source, const std::string& alias) {
    const SourceExpr& s = plan.sources[source];
    const std::string v = source_value_sql(plan, source, alias);
    // Timestamps leave the scan binary (timestamp[tz]_send: 8 bytes, microseconds since 2000),
    // four times cheaper than the numeric arithmetic of extract(epoch); see scan_timestamp_text().
    const std::string engine = s.kind == ValueKind::Timestamp
                                   ? std::string(s.timestamp_with_zone ? "timestamptz_send(" : "timestamp_send(") + v + ")"
                                   : v + "::text";
    return "CASE WHEN " + alias + "." + sql_ident(plan.event_type_column) + "::text IN (" + event_type_list(s.event_types) +
           ") THEN " + engine + " END";
}

int scan_timestamp_chars(std::string_view bytes, char (&out)[24]) {
    if (bytes.size() != 8) return -1;
    uint64_t v = 0;
    for (unsigned char c : bytes) v = (v << 8) | c;
    constexpr int64_t kPostgresEpochMicros = 946684800LL * 1000000;  // 2000-01-01 in Unix microseconds
    return static_cast<int>(std::to_chars(out, out + sizeof out, static_cast<int64_t>(v) + kPostgresEpochMicros).ptr - out);
}

std::optional<std::string> scan_timestamp_text(std::string_view bytes) {
    char buf[24];
    const int n = scan_timestamp_chars(bytes, buf);
    if (n < 0) return std::nullopt;
    return std::string(buf, n);
}

std::string engine_form_sql(const ColumnInfo& col, const std::string& alias) {
    const std::string v = alias + "." + sql_ident(col.name);
    return col.kind == ValueKind::Timestamp ? "(extract(epoch FROM " + v + ") * 1000000)::int8::text" : v + "::text";
}

std::string from_engine_form_sql(const ColumnInfo& col, const std::string& expr) {
    if (col.kind == ValueKind::Timestamp)
        return std::string("(") + (col.timestamp_with_zone ? "timestamptz" : "timestamp") + " 'epoch' + CAST(" + expr +
               " AS int8) * interval '1 microsecond')";
    return "CAST(" + expr + " AS " + col.base_type + ")";
}

std::string handler_sql(const Plan& plan, const std::string& function_name, const std::string& event_row_type) {
    std::string body = "BEGIN\n    CASE " + std::string(kEvent) + "." + sql_ident(plan.event_type_column) + "::text\n";
    for (const auto& et : plan.event_types) {
        body += "    WHEN " + sql_literal(et.event_type) + " THEN\n";
        for (const auto& op : et.ops) {
            // The rule's name comes from the rules: a line break in it would end the comment.
            std::string where = op.where;
            for (char& c : where)
                if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
            body += "        -- " + where + "\n        " + statement_sql(plan, op) + ";\n";
        }
    }
    body += "    ELSE NULL;\n    END CASE;\nEND";
    std::string tag = "$viewmig$";
    while (body.find(tag) != std::string::npos) tag.insert(tag.size() - 1, "_");
    return "CREATE OR REPLACE FUNCTION " + function_name + "(" + kEvent + " " + event_row_type +
           ") RETURNS void LANGUAGE plpgsql AS " + tag + "\n" + body + "\n" + tag;
}

namespace {

std::string unnest_of(std::size_t n) {
    std::string args, names;
    for (std::size_t i = 0; i < n; ++i) {
        args += (i ? ", " : "") + std::string("$") + std::to_string(i + 1) + "::text[]";
        names += (i ? ", " : "") + std::string("c") + std::to_string(i);
    }
    return "unnest(" + args + ") AS u(" + names + ")";
}

}  // namespace

std::string select_rows_sql(const CompiledTable& t) {
    std::string cols, keys, values;
    for (const auto& c : t.info.columns) cols += (cols.empty() ? "" : ", ") + engine_form_sql(c, "r");
    for (std::size_t i = 0; i < t.key_columns.size(); ++i) {
        const ColumnInfo& c = t.info.columns[t.key_columns[i]];
        keys += (i ? ", " : "") + std::string("r.") + sql_ident(c.name);
        values += (i ? ", " : "") + from_engine_form_sql(c, "u.c" + std::to_string(i));
    }
    return "SELECT " + cols + " FROM " + sql_ident(t.info.name) + " AS r WHERE (" + keys + ") IN (SELECT " + values +
           " FROM " + unnest_of(t.key_columns.size()) + ")";
}

std::string update_rows_sql(const CompiledTable& t, const std::vector<int>& columns) {
    std::string set, where;
    for (std::size_t i = 0; i < columns.size(); ++i) {
        const ColumnInfo& c = t.info.columns[columns[i]];
        const std::string v = "CAST(u.c" + std::to_string(i) + " AS " + c.base_type + ")";
        if (i < t.key_columns.size())
            where += (where.empty() ? "" : " AND ") + std::string("r.") + sql_ident(c.name) + " = " + v;
        else
            set += (set.empty() ? "" : ", ") + sql_ident(c.name) + " = " + v;
    }
    return "UPDATE " + sql_ident(t.info.name) + " AS r SET " + set + " FROM " + unnest_of(columns.size()) + " WHERE " + where;
}

std::string delete_rows_sql(const CompiledTable& t, const std::vector<int>& columns) {
    std::string where;
    for (std::size_t i = 0; i < columns.size(); ++i) {
        const ColumnInfo& c = t.info.columns[columns[i]];
        where += (i ? " AND " : "") + std::string("r.") + sql_ident(c.name) + " = CAST(u.c" + std::to_string(i) + " AS " +
                 c.base_type + ")";
    }
    return "DELETE FROM " + sql_ident(t.info.name) + " AS r USING " + unnest_of(columns.size()) + " WHERE " + where;
}

}  // namespace viewmig::core
