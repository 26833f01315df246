// Rule parsing, checking and compilation (see declarative_rules.hpp). Every check names the rule
// (EventType[index]) and the member it is about, so a DBA can find the mistake in the JSON.
#include "core/declarative_rules.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace viewmig::core {

const EventTypeOps* Plan::ops_for(std::string_view event_type) const {
    auto it = std::lower_bound(event_types.begin(), event_types.end(), event_type,
                               [](const EventTypeOps& o, std::string_view t) { return o.event_type < t; });
    return it != event_types.end() && it->event_type == event_type ? &*it : nullptr;
}

const char* table_mode_name(TableMode m) {
    switch (m) {
        case TableMode::Partitioned: return "partitioned";
        case TableMode::AppendOnly: return "append-only";
        case TableMode::Shared: return "shared";
    }
    return "?";
}

namespace {

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
}

class Compiler {
public:
    Compiler(const RuleContext& ctx, const TypeOracle& types) : ctx_(ctx), types_(types) {}

    Plan run(const JsonValue& rules) {
        if (!rules.is_object()) throw RuleError("rules", std::string("rules must be a JSON object, not ") + rules.type_name(),
                                               "{\"EventType\": [{\"insert\": \"table\", \"values\": {...}}], ...}");
        if (rules.members.empty()) throw RuleError("rules", "rules must name at least one event type");
        plan_.aggregate_id_column = ctx_.aggregate_id_column;
        plan_.event_type_column = ctx_.event_type_column;
        plan_.json_column = ctx_.json_column;
        for (const auto& t : ctx_.tables) plan_.tables.push_back(CompiledTable{t, {}, TableMode::Shared});
        for (const auto& [event_type, list] : rules.members) {
            if (!list.is_array() || list.items.empty())
                throw RuleError(event_type, "the rules of an event type must be a non-empty JSON array",
                                "\"" + event_type + "\": [{\"insert\": ...}, ...]");
            EventTypeOps ops{event_type, {}};
            for (std::size_t i = 0; i < list.items.size(); ++i) {
                event_type_ = event_type;
                ops.ops.push_back(rule(list.items[i], event_type + "[" + std::to_string(i) + "]"));
            }
            plan_.event_types.push_back(std::move(ops));
        }
        std::sort(plan_.event_types.begin(), plan_.event_types.end(),
                  [](const EventTypeOps& a, const EventTypeOps& b) { return a.event_type < b.event_type; });
        decide_keys();
        for (auto& s : plan_.sources) std::sort(s.event_types.begin(), s.event_types.end());
        return std::move(plan_);
    }

private:
    int table_index(const JsonValue& v, const std::string& where) {
        if (!v.is_string()) throw RuleError(where, "the table must be given as a string");
        for (std::size_t i = 0; i < plan_.tables.size(); ++i)
            if (plan_.tables[i].info.name == v.text) return static_cast<int>(i);
        std::vector<std::string> names;
        for (const auto& t : plan_.tables) names.push_back(t.info.name);
        throw RuleError(where, "table \"" + v.text + "\" is not a managed table of this projector",
                        "Managed tables: " + join(names) + ".");
    }

    int column_index(int table, const std::string& name, const std::string& where) {
        const auto& cols = plan_.tables[table].info.columns;
        for (std::size_t i = 0; i < cols.size(); ++i) {
            if (cols[i].name != name) continue;
            if (cols[i].generated)
                throw RuleError(where, "column \"" + name + "\" of table \"" + plan_.tables[table].info.name +
                                           "\" is a generated column and can not be written");
            return static_cast<int>(i);
        }
        std::vector<std::string> names;
        for (const auto& c : cols) names.push_back(c.name);
        throw RuleError(where, "table \"" + plan_.tables[table].info.name + "\" has no column \"" + name + "\"",
                        "Its columns: " + join(names) + ".");
    }

    Source parse_source(const JsonValue& v, const std::string& where) {
        Source s;
        const JsonValue* literal = &v;
        if (v.is_object()) {
            const JsonValue* value = v.find("value");
            if (!value || v.members.size() != 1)
                throw RuleError(where, "a constant is written {\"value\": ...}",
                                "Values: \"$.path\", \"event_column\", a number, true/false, null or {\"value\": \"text\"}.");
            literal = value;
            if (literal->is_object() || literal->is_array()) throw RuleError(where, "a constant must be a scalar");
        } else if (v.is_array()) {
            throw RuleError(where, "a value can not be an array",
                            "Values: \"$.path\", \"event_column\", a number, true/false, null or {\"value\": \"text\"}.");
        } else if (v.is_string()) {
            std::string text = v.text, cast;
            const auto colons = text.rfind("::");
            if (colons != std::string::npos) {
                cast = text.substr(colons + 2);
                text = text.substr(0, colons);
                auto resolved = types_.resolve_type(cast);
                if (!resolved) throw RuleError(where, "type \"" + cast + "\" does not exist");
                s.cast = *resolved;
            }
            if (text.rfind("$", 0) == 0) {
                if (ctx_.json_column.empty())
                    throw RuleError(where, "the event table has no JSON column for the path \"" + text + "\"",
                                    "Pass json_column => 'the jsonb column' to register_declarative_projector.");
                if (text == "$" || text.rfind("$.", 0) != 0)
                    throw RuleError(where, "a JSON path is written \"$.key\" or \"$.key.subkey\", not \"" + text + "\"");
                s.kind = Source::Kind::JsonPath;
                std::size_t start = 2;
                while (true) {
                    const auto dot = text.find('.', start);
                    const std::string part = text.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
                    if (part.empty()) throw RuleError(where, "empty key in the JSON path \"" + text + "\"");
                    s.path.push_back(part);
                    if (dot == std::string::npos) break;
                    start = dot + 1;
                }
                s.type = s.cast.empty() ? "text" : s.cast;
                return s;
            }
            for (const auto& c : ctx_.event_columns) {
                if (c.name != text) continue;
                s.kind = Source::Kind::EventColumn;
                s.column = text;
                s.type = s.cast.empty() ? c.type : s.cast;
                if (!s.cast.empty() && !types_.can_assign(c.type, s.cast))
                    throw RuleError(where, "event column \"" + text + "\" of type " + c.type + " can not be cast to " + s.cast);
                return s;
            }
            std::vector<std::string> names;
            for (const auto& c : ctx_.event_columns) names.push_back(c.name);
            throw RuleError(where, "the event table has no column \"" + text + "\"",
                            "Event columns: " + join(names) + "; a JSON path starts with \"$.\"; a text constant is "
                            "written {\"value\": \"" + text + "\"}.");
        }
        s.kind = Source::Kind::Constant;
        switch (literal->type) {
            case JsonValue::Type::Null: s.type = "unknown"; break;
            case JsonValue::Type::Bool: s.constant = literal->boolean ? "true" : "false"; s.type = "boolean"; break;
            case JsonValue::Type::String: s.constant = literal->text; s.constant_is_string = true; s.type = "unknown"; break;
            case JsonValue::Type::Number: {
                s.constant = literal->text;
                const bool integral = literal->text.find_first_of(".eE") == std::string::npos;
                s.type = !integral ? "numeric" : literal->text.size() <= 9 ? "integer" : "bigint";
                break;
            }
            default: break;
        }
        return s;
    }

    static bool same_source(const Source& a, const Source& b) {
        return a.kind == b.kind && a.column == b.column && a.path == b.path && a.constant == b.constant &&
               a.constant_is_string == b.constant_is_string && a.cast == b.cast;
    }

    // Checks the source fits the column and returns its scan column.
    int source_for(const JsonValue& v, int table, int column, Action action, const std::string& where) {
        Source s = parse_source(v, where);
        const ColumnInfo& col = plan_.tables[table].info.columns[column];
        const std::string& table_name = plan_.tables[table].info.name;
        if ((action == Action::Add || action == Action::Subtract) && col.kind != ValueKind::Integer)
            throw RuleError(where, "column \"" + col.name + "\" of table \"" + table_name + "\" is " + col.type +
                                       "; add and subtract need an integer column (smallint, integer or bigint)");
        if ((action == Action::Greatest || action == Action::Least) && col.kind == ValueKind::Text)
            throw RuleError(where, "column \"" + col.name + "\" of table \"" + table_name + "\" is " + col.type +
                                       "; greatest and least need an integer or timestamp column");
        if (s.type != "unknown" && !types_.can_assign(s.type, col.base_type))
            throw RuleError(where, "a value of type " + s.type + " can not be stored in column \"" + col.name + "\" of table \"" +
                                       table_name + "\" (" + col.type + ")",
                            s.kind == Source::Kind::JsonPath ? "Cast the path: \"$." + s.path.back() + "::" + col.base_type + "\"."
                                                             : "Cast it: \"...::" + col.base_type + "\".");
        for (std::size_t i = 0; i < plan_.sources.size(); ++i) {
            SourceExpr& e = plan_.sources[i];
            if (same_source(e.source, s) && e.base_type == col.base_type) {
                if (std::find(e.event_types.begin(), e.event_types.end(), event_type_) == e.event_types.end())
                    e.event_types.push_back(event_type_);
                return static_cast<int>(i);
            }
        }
        plan_.sources.push_back(SourceExpr{s, col.base_type, col.kind, col.timestamp_with_zone, {event_type_}});
        return static_cast<int>(plan_.sources.size() - 1);
    }

    std::vector<std::pair<int, int>> columns_of(const JsonValue* obj, int table, const std::string& where, bool assignments,
                                                std::vector<Action>* actions) {
        if (!obj->is_object() || obj->members.empty())
            throw RuleError(where, "must be a non-empty JSON object of column names");
        std::vector<std::pair<int, int>> out;
        for (const auto& [name, v] : obj->members) {
            const std::string at = where + "." + name;
            const int col = column_index(table, name, at);
            Action action = Action::Set;
            const JsonValue* source = &v;
            if (assignments && v.is_object() && !v.find("value")) {
                static const std::pair<const char*, Action> kActions[] = {
                    {"add", Action::Add}, {"subtract", Action::Subtract}, {"greatest", Action::Greatest}, {"least", Action::Least}};
                bool found = false;
                for (const auto& [word, a] : kActions) {
                    if (const JsonValue* x = v.find(word); x && v.members.size() == 1) {
                        action = a;
                        source = x;
                        found = true;
                    }
                }
                if (!found)
                    throw RuleError(at, "an assignment is a value or {\"add\"|\"subtract\"|\"greatest\"|\"least\": value}");
            }
            for (const auto& [c, s] : out)
                if (c == col) throw RuleError(at, "column \"" + name + "\" is assigned twice");
            out.emplace_back(col, source_for(*source, table, col, action, at));
            if (actions) actions->push_back(action);
        }
        return out;
    }

    CompiledOp rule(const JsonValue& r, const std::string& where) {
        if (!r.is_object()) throw RuleError(where, "a rule must be a JSON object");
        static const std::pair<const char*, int> kOps[] = {{"insert", 0}, {"update", 1}, {"upsert", 2},
                                                           {"delete", 3}, {"increment", 4}, {"decrement", 5}};
        int op = -1;
        const JsonValue* table_value = nullptr;
        for (const auto& [word, o] : kOps) {
            if (const JsonValue* t = r.find(word)) {
                if (op >= 0) throw RuleError(where, "a rule has exactly one of insert, update, upsert, delete, increment, decrement");
                op = o;
                table_value = t;
            }
        }
        if (op < 0)
            throw RuleError(where, "a rule needs one of insert, update, upsert, delete, increment, decrement",
                            "{\"insert\": \"table\", \"values\": {\"id\": \"aggregate_id\", \"title\": \"$.title\"}}");
        static const std::set<std::string> kAllowed[] = {{"insert", "values"},
                                                         {"update", "key", "set"},
                                                         {"upsert", "key", "values", "set"},
                                                         {"delete", "key"},
                                                         {"increment", "key", "column", "by"},
                                                         {"decrement", "key", "column", "by"}};
        for (const auto& [name, v] : r.members)
            if (!kAllowed[op].count(name))
                throw RuleError(where + "." + name, "unexpected member \"" + name + "\" in a " + kOps[op].first + " rule",
                                "Members of a " + std::string(kOps[op].first) + " rule: " +
                                    join(std::vector<std::string>(kAllowed[op].begin(), kAllowed[op].end())) + ".");
        CompiledOp c;
        c.where = where;
        c.table = table_index(*table_value, where + "." + kOps[op].first);
        auto required = [&](const char* member) -> const JsonValue* {
            const JsonValue* v = r.find(member);
            if (!v) throw RuleError(where, std::string("a ") + kOps[op].first + " rule needs \"" + member + "\"");
            return v;
        };
        std::vector<std::pair<int, int>> key;
        if (op != 0) key = columns_of(required("key"), c.table, where + ".key", false, nullptr);
        auto to_assignments = [](const std::vector<std::pair<int, int>>& cols, const std::vector<Action>* actions) {
            std::vector<Assignment> out;
            for (std::size_t i = 0; i < cols.size(); ++i)
                out.push_back(Assignment{cols[i].first, actions ? (*actions)[i] : Action::Set, cols[i].second});
            return out;
        };
        switch (op) {
            case 0:
                c.kind = OpKind::Insert;
                c.values = to_assignments(columns_of(required("values"), c.table, where + ".values", false, nullptr), nullptr);
                break;
            case 1: {
                c.kind = OpKind::Update;
                std::vector<Action> actions;
                c.set = to_assignments(columns_of(required("set"), c.table, where + ".set", true, &actions), &actions);
                break;
            }
            case 2: {
                c.kind = OpKind::Upsert;
                c.values = to_assignments(columns_of(required("values"), c.table, where + ".values", false, nullptr), nullptr);
                if (const JsonValue* set = r.find("set")) {
                    std::vector<Action> actions;
                    c.set = to_assignments(columns_of(set, c.table, where + ".set", true, &actions), &actions);
                } else {
                    c.set = c.values;
                }
                break;
            }
            case 3: c.kind = OpKind::Delete; break;
            default: {
                c.kind = OpKind::Update;
                const JsonValue* column = required("column");
                if (!column->is_string()) throw RuleError(where + ".column", "the column must be given as a string");
                const int col = column_index(c.table, column->text, where + ".column");
                JsonValue one;
                one.type = JsonValue::Type::Number;
                one.text = "1";
                const JsonValue* by = r.find("by") ? r.find("by") : &one;
                c.set.push_back(Assignment{col, op == 4 ? Action::Add : Action::Subtract,
                                           source_for(*by, c.table, col, Action::Add, where + ".by")});
            }
        }
        for (const auto& [kc, ks] : key) {
            for (const auto& a : c.values)
                if (a.column == kc)
                    throw RuleError(where + ".values", "key column \"" + plan_.tables[c.table].info.columns[kc].name +
                                                           "\" belongs in \"key\" only");
            for (const auto& a : c.set)
                if (a.column == kc)
                    throw RuleError(where + ".set", "key column \"" + plan_.tables[c.table].info.columns[kc].name +
                                                        "\" can not be changed by an " + kOps[op].first);
        }
        pending_[where] = std::move(key);
        return c;
    }

    bool is_aggregate_id(int source) const {
        const Source& s = plan_.sources[source].source;
        return s.kind == Source::Kind::EventColumn && s.column == ctx_.aggregate_id_column && s.cast.empty();
    }

    // Each table gets one key: the columns its update/upsert/delete rules find rows by (one unique
    // key for all of them), or for insert-only tables the first unique key every insert fills.
    void decide_keys() {
        std::vector<CompiledOp*> ops;
        for (auto& et : plan_.event_types)
            for (auto& op : et.ops) ops.push_back(&op);
        auto key_of = [&](const CompiledOp* op) -> const std::vector<std::pair<int, int>>& { return pending_.at(op->where); };

        for (std::size_t t = 0; t < plan_.tables.size(); ++t) {
            CompiledTable& table = plan_.tables[t];
            const auto& cols = table.info.columns;
            std::optional<std::set<int>> key;
            std::string key_where;
            bool any = false;
            for (auto* op : ops) {
                if (op->table != static_cast<int>(t)) continue;
                any = true;
                if (op->kind == OpKind::Insert) continue;
                std::set<int> k;
                for (const auto& [c, s] : key_of(op)) k.insert(c);
                if (key && *key != k)
                    throw RuleError(op->where + ".key", "rules find rows of table \"" + table.info.name +
                                                            "\" by different columns (here and in " + key_where + ")",
                                    "Use the same key columns in every rule of a table.");
                key = k;
                key_where = op->where;
            }
            if (!any) continue;
            auto names_of = [&](const std::set<int>& k) {
                std::vector<std::string> n;
                for (int c : k) n.push_back(cols[c].name);
                return n;
            };
            auto unique_index_of = [&](const std::set<int>& k) -> int {
                for (std::size_t u = 0; u < table.info.unique_keys.size(); ++u) {
                    std::set<int> uk;
                    for (const auto& name : table.info.unique_keys[u])
                        for (std::size_t c = 0; c < cols.size(); ++c)
                            if (cols[c].name == name) uk.insert(static_cast<int>(c));
                    if (uk == k) return static_cast<int>(u);
                }
                return -1;
            };
            if (key) {
                if (unique_index_of(*key) < 0)
                    throw RuleError(key_where + ".key", "(" + join(names_of(*key)) + ") is not the primary key or a unique key "
                                                        "of NOT NULL columns of table \"" + table.info.name + "\"",
                                    "Rules find rows by a key that identifies one row.");
            } else {
                // Insert-only: keyed by the first unique key that every insert fills, if any.
                for (const auto& uk_names : table.info.unique_keys) {
                    std::set<int> uk;
                    for (const auto& name : uk_names)
                        for (std::size_t c = 0; c < cols.size(); ++c)
                            if (cols[c].name == name) uk.insert(static_cast<int>(c));
                    bool all = true;
                    for (auto* op : ops) {
                        if (op->table != static_cast<int>(t)) continue;
                        std::set<int> given;
                        for (const auto& a : op->values) given.insert(a.column);
                        for (int c : uk) all = all && given.count(c);
                    }
                    if (all) {
                        key = uk;
                        break;
                    }
                }
            }
            if (key) table.key_columns.assign(key->begin(), key->end());
            bool partitioned = key.has_value();
            for (auto* op : ops) {
                if (op->table != static_cast<int>(t)) continue;
                std::vector<std::pair<int, int>> op_key;
                if (op->kind == OpKind::Insert) {
                    for (int c : table.key_columns) {
                        bool found = false;
                        for (const auto& a : op->values)
                            if (a.column == c) op_key.emplace_back(c, a.source), found = true;
                        if (!found)
                            throw RuleError(op->where + ".values", "an insert into table \"" + table.info.name +
                                                                       "\" must set its key column \"" + cols[c].name + "\"",
                                            "Other rules find its rows by (" + join(names_of(*key)) + ").");
                    }
                } else {
                    op_key = key_of(op);
                    // Upserts insert key and values together.
                    if (op->kind == OpKind::Upsert) {
                        std::vector<Assignment> values;
                        for (const auto& [c, s] : op_key) values.push_back(Assignment{c, Action::Set, s});
                        values.insert(values.end(), op->values.begin(), op->values.end());
                        op->values = std::move(values);
                    }
                }
                op->key_sources.clear();
                for (int c : table.key_columns)
                    for (const auto& [kc, ks] : op_key)
                        if (kc == c) op->key_sources.push_back(ks);
                bool has_aggregate = false;
                for (int s : op->key_sources) has_aggregate = has_aggregate || is_aggregate_id(s);
                partitioned = partitioned && has_aggregate;
                if (op->kind == OpKind::Insert || op->kind == OpKind::Upsert) {
                    std::set<int> given;
                    for (const auto& a : op->values) given.insert(a.column);
                    for (std::size_t c = 0; c < cols.size(); ++c)
                        if (cols[c].not_null && !cols[c].has_default && !cols[c].generated && !given.count(static_cast<int>(c)))
                            throw RuleError(op->where + ".values", "column \"" + cols[c].name + "\" of table \"" + table.info.name +
                                                                       "\" is NOT NULL and has no default, but this rule does not set it");
                }
            }
            table.mode = !key ? TableMode::AppendOnly : partitioned ? TableMode::Partitioned : TableMode::Shared;
        }
    }

    const RuleContext& ctx_;
    const TypeOracle& types_;
    Plan plan_;
    std::string event_type_;
    std::map<std::string, std::vector<std::pair<int, int>>> pending_;  // each rule's key columns, by `where`
};

}  // namespace

Plan compile_rules(std::string_view rules_json, const RuleContext& ctx, const TypeOracle& types) {
    const JsonValue rules = parse_json(rules_json);
    Compiler c(ctx, types);
    return c.run(rules);
}

}  // namespace viewmig::core
