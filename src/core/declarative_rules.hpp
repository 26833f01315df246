// Declarative projector rules: what register_declarative_projector() accepts, checked against the
// managed tables' definitions and compiled into a Plan that both replay paths share — the C++
// engine (declarative_engine.hpp) and the generated PL/pgSQL handler (declarative_sql.hpp).
//
// Rules are a JSON object: event type -> array of rules, applied in order to each event.
//   {"insert": "t", "values": {"col": SOURCE, ...}}
//   {"update": "t", "key": {"col": SOURCE}, "set": {"col": ASSIGNMENT, ...}}
//   {"upsert": "t", "key": {...}, "values": {...}, "set": {...}}   (set defaults to the values)
//   {"delete": "t", "key": {...}}
//   {"increment"|"decrement": "t", "key": {...}, "column": "c", "by": SOURCE}   (by defaults to 1)
// SOURCE: "$.a.b" (a path into the event's JSON column), "column" (an event-table column),
// either with an optional "::type" cast; a JSON number, boolean or null, or {"value": <scalar>}
// for a constant. ASSIGNMENT: a SOURCE, or {"add"|"subtract"|"greatest"|"least": SOURCE}.
#pragma once

#include "core/json_value.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace viewmig::core {

// How the engine holds a column's values: integers and timestamps as int64 (so counters add and
// greatest/least compare), everything else as the type's text.
enum class ValueKind { Text, Integer, Timestamp };

struct ColumnInfo {
    std::string name;
    std::string type;       // format_type(atttypid, atttypmod), e.g. "character varying(20)"
    std::string base_type;  // format_type(atttypid, NULL)
    ValueKind kind = ValueKind::Text;
    int integer_bits = 64;  // 16, 32 or 64 for ValueKind::Integer
    bool timestamp_with_zone = false;
    bool not_null = false;
    bool has_default = false;
    bool volatile_default = false;            // nextval(), identity, random(): evaluated per row by PostgreSQL
    std::optional<std::string> default_text;  // a non-volatile default, evaluated once (NULL default: nullopt)
    bool generated = false;
};

struct TableInfo {
    std::string name;  // unqualified
    std::vector<ColumnInfo> columns;
    // Unique keys whose columns are all NOT NULL, the primary key first.
    std::vector<std::vector<std::string>> unique_keys;
};

struct EventColumn {
    std::string name, type;  // type as format_type()
};

// Type questions only the database can answer.
class TypeOracle {
public:
    virtual ~TypeOracle() = default;
    // The canonical name of a type written in a rule ("int" -> "integer"), or nullopt if unknown.
    virtual std::optional<std::string> resolve_type(const std::string& name) const = 0;
    // Whether a value of type `from` may be stored in a column of type `to` (assignment cast).
    virtual bool can_assign(const std::string& from, const std::string& to) const = 0;
};

struct RuleError : std::runtime_error {
    RuleError(std::string where_, const std::string& message, std::string hint_ = {})
        : std::runtime_error(message), where(std::move(where_)), hint(std::move(hint_)) {}
    std::string where;  // e.g. PostDrafted[0].values.title
    std::string hint;
};

struct Source {
    enum class Kind { EventColumn, JsonPath, Constant };
    Kind kind = Kind::Constant;
    std::string column;             // EventColumn
    std::vector<std::string> path;  // JsonPath
    std::optional<std::string> constant;  // Constant: the literal's text (nullopt: NULL)
    bool constant_is_string = false;
    std::string cast;  // canonical type name, or empty
    std::string type;  // the source's type before the column's cast: cast, event column type, "text", ...
};

// One distinct (source, column type) pair: one column of the replay scan.
struct SourceExpr {
    Source source;
    std::string base_type;  // the column's base type the value is cast to
    ValueKind kind = ValueKind::Text;
    bool timestamp_with_zone = false;
    std::vector<std::string> event_types;  // the event types that read it (sorted)
};

enum class Action { Set, Add, Subtract, Greatest, Least };
enum class OpKind { Insert, Update, Upsert, Delete };

struct Assignment {
    int column = 0;  // index in the table's columns
    Action action = Action::Set;
    int source = 0;  // index in Plan::sources
};

struct CompiledOp {
    OpKind kind = OpKind::Insert;
    int table = 0;
    std::vector<int> key_sources;     // aligned with the table's key_columns (empty for append-only inserts)
    std::vector<Assignment> values;   // insert / upsert values (Set), key columns included for inserts
    std::vector<Assignment> set;      // update / upsert-on-conflict assignments
    std::string where;                // e.g. PostDrafted[0], for error messages
};

// Partitioned: every rule finds the table's rows by a key that includes the event's aggregate_id,
// so only that aggregate's events touch them. AppendOnly: only inserts and no key. Shared: keyed
// rows that events of many aggregates may touch (counters per author...).
enum class TableMode { Partitioned, AppendOnly, Shared };

struct CompiledTable {
    TableInfo info;
    std::vector<int> key_columns;
    TableMode mode = TableMode::Shared;
};

struct EventTypeOps {
    std::string event_type;
    std::vector<CompiledOp> ops;
};

struct Plan {
    std::vector<CompiledTable> tables;
    std::vector<SourceExpr> sources;
    std::vector<EventTypeOps> event_types;  // sorted by event type
    std::string aggregate_id_column, event_type_column, json_column;

    const EventTypeOps* ops_for(std::string_view event_type) const;
};

struct RuleContext {
    std::vector<TableInfo> tables;  // the managed tables
    std::vector<EventColumn> event_columns;
    std::string aggregate_id_column, event_type_column;
    std::string json_column;  // may be empty when the event table has none
};

// Parses and checks the rules; throws RuleError (or JsonParseError) pointing at the rule.
Plan compile_rules(std::string_view rules_json, const RuleContext& ctx, const TypeOracle& types);

const char* table_mode_name(TableMode m);

}  // namespace viewmig::core
