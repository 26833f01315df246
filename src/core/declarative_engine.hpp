// The compiled declarative projector engine: applies a Plan's rules to events and keeps the
// resulting rows in memory (open-addressing hash maps keyed by the tables' keys), so an initial
// replay writes each row once, in bulk, instead of running several SQL statements per event.
//
// Rows of partitioned and append-only tables (see TableMode) are final once their aggregate's
// events are applied: take_changes() hands them over as COPY text and forgets them. Rows of shared
// tables stay cached across batches; the runner loads the rows a batch needs first
// (missing_keys / known_row / known_absent) whenever the cache does not hold the whole table.
// No PostgreSQL headers: the pg layer feeds events in and writes the changes out.
#pragma once

#include "core/declarative_rules.hpp"

#include <boost/unordered/unordered_flat_map.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace viewmig::core {

using TextRow = std::vector<std::optional<std::string>>;

// An error the row path would raise too (a unique or NOT NULL violation, an integer overflow).
struct ProjectionError : std::runtime_error {
    enum class Code { UniqueViolation, NotNullViolation, OutOfRange, Unsupported };
    ProjectionError(Code c, const std::string& message, std::string detail_ = {})
        : std::runtime_error(message), code(c), detail(std::move(detail_)) {}
    Code code;
    std::string detail;
};

// One event's values: the event type and one text per Plan::sources entry (the scan's columns).
struct EventInput {
    std::string_view event_type;
    const std::optional<std::string>* values = nullptr;
};

// Rows to COPY into one table: the listed columns, in COPY text format.
struct CopyChunk {
    int table = 0;
    std::vector<int> columns;
    std::string data;
    uint64_t rows = 0;
};

// Rows by column, as text in each column's input format (for UPDATE/DELETE ... FROM unnest()).
struct RowSet {
    int table = 0;
    std::vector<int> columns;
    std::vector<TextRow> rows;
};

struct Changes {
    std::vector<RowSet> deletes;  // key columns of rows to delete
    std::vector<RowSet> updates;  // key columns first, then every other non-default column
    std::vector<CopyChunk> copies;
    bool empty() const { return deletes.empty() && updates.empty() && copies.empty(); }
};

class Engine {
public:
    // `shared_complete`: the shared tables are empty, so a key the cache does not hold has no row.
    Engine(const Plan& plan, bool shared_complete);

    // Which tables' rules to apply: a resumed replay re-applies only the shared tables' rules to the
    // events already committed (their other rows are in the tables). Per table the events still
    // come in order, so applying tables apart gives the same rows as applying them together.
    enum class Tables { All, Unshared, Shared };
    void apply(const EventInput& e, Tables which = Tables::All);

    // For each table, the keys (in key column order) of rows the events would touch that the
    // cache neither holds nor knows to be absent: the runner reads them and reports each with
    // known_row() (all columns) or known_absent(). Values inbound (events, keys, rows read) are in
    // the engine's form: integers and timestamps (microseconds since 1970) as decimal text, other
    // types as their text; outbound (Changes) in each column's input format.
    std::vector<std::vector<TextRow>> missing_keys(const std::vector<EventInput>& events) const;
    void known_row(int table, const TextRow& columns);
    void known_absent(int table, const TextRow& key);

    // Everything changed since the last call; final rows (partitioned, append-only) are forgotten.
    // Without `include_shared`, the shared tables' changes stay pending.
    Changes take_changes(bool include_shared = true);
    // Forgets the cached shared rows (call after take_changes); later batches read them again.
    void evict_shared();
    // Forgets everything (the transaction that held the changes rolled back).
    void forget();

    // The rows' own bytes plus the hash tables' slot arrays.
    std::size_t memory_bytes() const;
    uint64_t rows_cached() const;

private:
    struct Cell {
        enum class State : uint8_t { Null, Value, Default };
        State state = State::Null;
        int64_t number = 0;
        std::string text;
    };
    enum class RowState : uint8_t { New, Clean, Dirty, Gone, Absent };
    struct Row {
        RowState state = RowState::Absent;
        std::vector<Cell> cells;
    };
    struct Table {
        boost::unordered_flat_map<std::string, Row> rows;
        std::vector<Row> appended;  // append-only tables
        bool complete = true;       // every row of the table is in `rows` (a miss means no row)
        std::size_t bytes = 0;      // this table's share of memory_
        // Shared tables: keys of rows changed since the last take_changes() (it visits only these).
        std::vector<std::string> pending;
    };

    bool key_of(const CompiledOp& op, const EventInput& e, std::string& key) const;
    static void append_key(std::string& key, const Cell& c);
    Row new_row(int table) const;
    void insert(const CompiledOp& op, const EventInput& e, Row* existing, std::string&& key);
    void assign(const CompiledOp& op, const std::vector<Assignment>& list, const EventInput& e, Row& row);
    static std::size_t row_bytes(const Row& r);
    std::string describe_key(int table, const std::string& key_text) const;
    void add_text(int table, const Row& row, std::string& out, const std::vector<int>& columns) const;
    std::optional<std::string> column_text(const ColumnInfo& col, const Cell& c) const;
    Cell parse_cell(const ColumnInfo& col, const std::optional<std::string>& text) const;
    Row* find(int table, const std::string& key);
    void grow(int table, std::size_t bytes);
    void shrink(int table, std::size_t bytes);
    void mark_pending(int table, const std::string& key);

    const Plan& plan_;
    std::vector<Table> tables_;
    std::size_t memory_ = 0;
};

// COPY text format of one value (backslash escapes; NULL is \N).
void append_copy_text(std::string& out, std::string_view value);
// PostgreSQL's ISO text of microseconds since 1970-01-01 00:00 (UTC for timestamptz: "+00").
std::string format_timestamp(int64_t micros, bool with_zone);

}  // namespace viewmig::core
