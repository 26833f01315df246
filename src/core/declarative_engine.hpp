// The compiled declarative projector engine: applies a Plan's rules to events and keeps the
// resulting rows in memory (per table: an arena holding the rows, an open-addressing hash map from
// key to row), so an initial replay writes each row once, in bulk, instead of running several SQL
// statements per event.
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
#include <functional>
#include <memory>
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

// One scanned value: its text, or nullopt for NULL. Only read while apply() runs (the engine copies
// what it keeps), so it may point into the scan's buffers.
using Value = std::optional<std::string_view>;

// One event's values: the event type and one value per Plan::sources entry (the scan's columns).
struct EventInput {
    std::string_view event_type;
    const Value* values = nullptr;
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

    // The rows' arena bytes (replaced texts and deleted rows until a shared table is compacted;
    // not the free tail of each table's current arena chunk, at most 1 MB) plus the hash tables'
    // slot arrays and row lists.
    std::size_t memory_bytes() const;
    uint64_t rows_cached() const;

private:
    // Rows live in a bump allocator per table: one allocation per row (head, cells, key and texts
    // together), no destructor per row, and a partitioned table's rows are dropped at once.
    class Arena {
    public:
        char* allocate(std::size_t n);
        std::size_t used() const { return used_; }
        void reset();  // drops every allocation, keeps one chunk for the next batch
        void clear();  // drops everything
    private:
        std::vector<std::unique_ptr<char[]>> chunks_;
        std::size_t last_size_ = 0;  // of the newest chunk
        char* next_ = nullptr;
        std::size_t left_ = 0, used_ = 0;
    };
    struct Cell {
        enum class State : uint8_t { Null, Value, Default };
        State state;
        uint32_t length;  // Text
        union {
            int64_t number;    // Integer, Timestamp
            const char* text;  // Text: in the table's arena (or the plan's default text)
        };
        std::string_view view() const { return {text, length}; }
    };
    enum class RowState : uint8_t { New, Clean, Dirty, Gone, Absent, Moved };
    // A row in the arena: this head, then one Cell per column (then its key and texts).
    struct RowHead {
        RowState state;
        uint32_t key_length;
        const char* key;  // Moved: the row's new place (see compact())
        Cell* cells() { return reinterpret_cast<Cell*>(this + 1); }
        const Cell* cells() const { return reinterpret_cast<const Cell*>(this + 1); }
    };
    // A key's bytes (in the arena) with their hash: growing the map rehashes without reading
    // the keys again (a cache miss each).
    struct KeyRef {
        std::string_view bytes;
        std::size_t hash = 0;
        static KeyRef of(std::string_view b) { return {b, std::hash<std::string_view>()(b)}; }
        bool operator==(const KeyRef& o) const { return hash == o.hash && bytes == o.bytes; }
    };
    struct KeyRefHash {
        std::size_t operator()(const KeyRef& k) const { return k.hash; }
    };
    // The map's key of a row: its key bytes in the arena, with the hash the lookup computed.
    static KeyRef stored_key(const RowHead* row, std::size_t hash) { return {std::string_view(row->key, row->key_length), hash}; }
    struct Table {
        boost::unordered_flat_map<KeyRef, RowHead*, KeyRefHash> rows;
        std::vector<RowHead*> appended;  // append-only tables, in event order
        std::vector<RowHead*> pending;   // shared tables: rows changed since the last take_changes()
        std::vector<Cell> defaults;      // a new row's cells
        Arena arena;
        std::size_t garbage = 0;  // arena bytes no row uses any more (replaced texts, deleted rows)
        bool complete = true;     // every row of the table is in `rows` (a miss means no row)
    };

    bool key_of(const CompiledOp& op, const EventInput& e, std::string& key) const;
    void append_key(int table, std::string& key, const Cell* cells) const;
    void evaluate(const CompiledOp& op, const std::vector<Assignment>& list, const EventInput& e, Cell* cells, int store_table);
    RowHead* materialize(int table, const Cell* cells, std::string_view key, RowHead* reuse);
    void insert(const CompiledOp& op, const EventInput& e, RowHead* existing, const KeyRef& key);
    const char* store(int table, std::string_view text);
    Cell parse_cell(const ColumnInfo& col, const Value& text) const;
    std::string describe_key(int table, const std::string& key_text) const;
    void add_text(int table, const RowHead& row, std::string& out, const std::vector<int>& columns) const;
    std::optional<std::string> column_text(const ColumnInfo& col, const Cell& c) const;
    RowHead* find(int table, const KeyRef& key);
    std::size_t row_bytes(int table, const RowHead& row) const;
    void mark_pending(int table, RowHead* row);
    void compact(int table);

    const Plan& plan_;
    std::vector<Table> tables_;
    std::vector<Cell> scratch_;  // the row an insert is building
    std::string key_;            // the key apply() is looking up
};

// COPY text format of one value (backslash escapes; NULL is \N).
void append_copy_text(std::string& out, std::string_view value);
// format_timestamp(), appended to `out` without a temporary string.
void append_timestamp(std::string& out, int64_t micros, bool with_zone);
// PostgreSQL's ISO text of microseconds since 1970-01-01 00:00 (UTC for timestamptz: "+00").
std::string format_timestamp(int64_t micros, bool with_zone);

}  // namespace viewmig::core
