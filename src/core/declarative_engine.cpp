// The declarative engine's row operations and change output (see declarative_engine.hpp). The
// semantics follow the SQL the generated handler runs for the same rule, so both paths build
// identical tables: NULL + n is NULL, greatest/least ignore NULLs, an UPDATE or DELETE of a missing
// row does nothing, an INSERT of an existing key fails.
#include "core/declarative_engine.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>

namespace viewmig::core {

namespace {

int64_t parse_int64(const std::string& s) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size())
        throw ProjectionError(ProjectionError::Code::OutOfRange, "invalid integer \"" + s + "\" in the replay scan");
    return v;
}

const char* range_name(int bits) { return bits == 16 ? "smallint" : bits == 32 ? "integer" : "bigint"; }

int64_t checked(int64_t a, int64_t b, bool subtract, int bits) {
    int64_t r;
    const bool overflow = subtract ? __builtin_sub_overflow(a, b, &r) : __builtin_add_overflow(a, b, &r);
    const int64_t lo = bits == 16 ? std::numeric_limits<int16_t>::min() : bits == 32 ? std::numeric_limits<int32_t>::min()
                                                                                     : std::numeric_limits<int64_t>::min();
    const int64_t hi = bits == 16 ? std::numeric_limits<int16_t>::max() : bits == 32 ? std::numeric_limits<int32_t>::max()
                                                                                     : std::numeric_limits<int64_t>::max();
    if (overflow || r < lo || r > hi)
        throw ProjectionError(ProjectionError::Code::OutOfRange, std::string(range_name(bits)) + " out of range");
    return r;
}

// Days since 1970-01-01 to a civil date (proleptic Gregorian), after H. Hinnant.
void civil_from_days(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2) ++y;
}

}  // namespace

void append_copy_text(std::string& out, std::string_view value) {
    for (char c : value) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default: out += c;
        }
    }
}

std::string format_timestamp(int64_t micros, bool with_zone) {
    constexpr int64_t kDay = 86400LL * 1000000;
    int64_t days = micros / kDay, rest = micros % kDay;
    if (rest < 0) rest += kDay, --days;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    const bool bc = y <= 0;
    const int64_t year = bc ? 1 - y : y;
    const int64_t secs = rest / 1000000, frac = rest % 1000000;
    char buf[80];
    int n = std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02lld:%02lld:%02lld", static_cast<long long>(year), m, d,
                          static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                          static_cast<long long>(secs % 60));
    std::string s(buf, n);
    if (frac) {
        std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
        std::string f(buf);
        while (f.back() == '0') f.pop_back();
        s += f;
    }
    if (with_zone) s += "+00";
    if (bc) s += " BC";
    return s;
}

Engine::Engine(const Plan& plan, bool shared_complete) : plan_(plan), tables_(plan.tables.size()) {
    for (std::size_t t = 0; t < tables_.size(); ++t)
        tables_[t].complete = plan.tables[t].mode != TableMode::Shared || shared_complete;
}

Engine::Cell Engine::parse_cell(const ColumnInfo& col, const std::optional<std::string>& text) const {
    Cell c;
    if (!text) return c;
    c.state = Cell::State::Value;
    if (col.kind == ValueKind::Text)
        c.text = *text;
    else
        c.number = parse_int64(*text);
    return c;
}

// Text and number together: a Text column's key is its text, the others' their number.
void Engine::append_key(std::string& key, const Cell& c) {
    const uint32_t len = static_cast<uint32_t>(c.text.size());
    key.append(reinterpret_cast<const char*>(&len), sizeof len);
    key += c.text;
    key.append(reinterpret_cast<const char*>(&c.number), sizeof c.number);
}

// The op's key for this event; false if a key value is NULL (no row can match).
bool Engine::key_of(const CompiledOp& op, const EventInput& e, std::string& key) const {
    const CompiledTable& t = plan_.tables[op.table];
    key.clear();
    for (std::size_t i = 0; i < op.key_sources.size(); ++i) {
        const std::optional<std::string>& text = e.values[op.key_sources[i]];
        if (!text) return false;
        // The bytes append_key() writes for the parsed cell, without building it (every rule with a
        // key runs this per event).
        const bool is_text = t.info.columns[t.key_columns[i]].kind == ValueKind::Text;
        const uint32_t len = is_text ? static_cast<uint32_t>(text->size()) : 0;
        const int64_t number = is_text ? 0 : parse_int64(*text);
        key.append(reinterpret_cast<const char*>(&len), sizeof len);
        if (is_text) key += *text;
        key.append(reinterpret_cast<const char*>(&number), sizeof number);
    }
    return true;
}

Engine::Row Engine::new_row(int table) const {
    const auto& cols = plan_.tables[table].info.columns;
    Row r;
    r.cells.resize(cols.size());
    for (std::size_t i = 0; i < cols.size(); ++i) {
        if (cols[i].volatile_default)
            r.cells[i].state = Cell::State::Default;
        else if (cols[i].default_text)
            r.cells[i] = parse_cell(cols[i], cols[i].default_text);
    }
    return r;
}

std::size_t Engine::row_bytes(const Row& r) {
    std::size_t n = 48 + r.cells.capacity() * sizeof(Cell);
    for (const auto& c : r.cells)
        if (c.text.capacity() > 15) n += c.text.capacity() + 1;
    return n;
}

std::size_t Engine::memory_bytes() const {
    std::size_t slots = 0;
    for (const auto& t : tables_) slots += t.rows.bucket_count() * sizeof(std::pair<const std::string, Row>);
    return memory_ + slots;
}

void Engine::grow(int table, std::size_t bytes) {
    tables_[table].bytes += bytes;
    memory_ += bytes;
}

void Engine::shrink(int table, std::size_t bytes) {
    tables_[table].bytes -= bytes;
    memory_ -= bytes;
}

void Engine::mark_pending(int table, const std::string& key) {
    if (plan_.tables[table].mode == TableMode::Shared) tables_[table].pending.push_back(key);
}

Engine::Row* Engine::find(int table, const std::string& key) {
    auto& rows = tables_[table].rows;
    auto it = rows.find(key);
    if (it != rows.end()) return &it->second;
    if (!tables_[table].complete)
        throw std::logic_error("declarative engine: a row of table \"" + plan_.tables[table].info.name + "\" was not loaded");
    return nullptr;
}

std::string Engine::describe_key(int table, const std::string& key_text) const {
    const CompiledTable& t = plan_.tables[table];
    std::string cols;
    for (int c : t.key_columns) cols += (cols.empty() ? "" : ", ") + t.info.columns[c].name;
    return "Key (" + cols + ")=(" + key_text + ") already exists.";
}

void Engine::assign(const CompiledOp& op, const std::vector<Assignment>& list, const EventInput& e, Row& row) {
    const CompiledTable& t = plan_.tables[op.table];
    for (const Assignment& a : list) {
        const ColumnInfo& col = t.info.columns[a.column];
        Cell v = parse_cell(col, e.values[a.source]);
        Cell& cell = row.cells[a.column];
        if (a.action != Action::Set && cell.state == Cell::State::Default)
            throw ProjectionError(ProjectionError::Code::Unsupported,
                                  "column \"" + col.name + "\" of table \"" + t.info.name +
                                      "\" still has its volatile default, which PostgreSQL evaluates only when it writes the row",
                                  "Rule " + op.where + " reads it; set the column in the rule that inserts the row.");
        switch (a.action) {
            case Action::Set: cell = std::move(v); break;
            case Action::Add:
            case Action::Subtract:
                if (cell.state == Cell::State::Null || v.state == Cell::State::Null)
                    cell.state = Cell::State::Null;
                else
                    try {
                        cell.number = checked(cell.number, v.number, a.action == Action::Subtract, col.integer_bits);
                    } catch (const ProjectionError& e) {
                        throw ProjectionError(e.code, e.what(), "Rule " + op.where + ", column \"" + col.name + "\".");
                    }
                break;
            case Action::Greatest:
            case Action::Least:
                if (v.state == Cell::State::Null) break;
                if (cell.state == Cell::State::Null || (a.action == Action::Greatest ? v.number > cell.number : v.number < cell.number))
                    cell = std::move(v);
                break;
        }
        if (cell.state == Cell::State::Null && col.not_null)
            throw ProjectionError(ProjectionError::Code::NotNullViolation,
                                  "null value in column \"" + col.name + "\" of relation \"" + t.info.name +
                                      "\" violates not-null constraint",
                                  "Rule " + op.where + ".");
    }
}

void Engine::insert(const CompiledOp& op, const EventInput& e, Row* existing, std::string&& key) {
    const int table = op.table;
    Row row = new_row(table);
    assign(op, op.values, e, row);
    const auto& cols = plan_.tables[table].info.columns;
    for (std::size_t i = 0; i < cols.size(); ++i)
        if (cols[i].not_null && row.cells[i].state == Cell::State::Null)
            throw ProjectionError(ProjectionError::Code::NotNullViolation,
                                  "null value in column \"" + cols[i].name + "\" of relation \"" + plan_.tables[table].info.name +
                                      "\" violates not-null constraint",
                                  "Rule " + op.where + ".");
    Table& t = tables_[table];
    if (plan_.tables[table].mode == TableMode::AppendOnly) {
        grow(table, row_bytes(row));
        t.appended.push_back(std::move(row));
        return;
    }
    const bool was_pending = existing && existing->state == RowState::Gone;
    row.state = was_pending ? RowState::Dirty : RowState::New;
    if (!was_pending) mark_pending(table, key);
    if (existing) {
        shrink(table, row_bytes(*existing));
        *existing = std::move(row);
        grow(table, row_bytes(*existing));
    } else {
        grow(table, row_bytes(row) + key.size() + 32);
        t.rows.emplace(std::move(key), std::move(row));
    }
}

void Engine::apply(const EventInput& e, Tables which) {
    const EventTypeOps* ops = plan_.ops_for(e.event_type);
    if (!ops) return;
    std::string key;
    for (const CompiledOp& op : ops->ops) {
        if (which != Tables::All && (plan_.tables[op.table].mode == TableMode::Shared) != (which == Tables::Shared)) continue;
        const bool append_only = plan_.tables[op.table].mode == TableMode::AppendOnly;
        if (append_only) {
            insert(op, e, nullptr, std::string());
            continue;
        }
        if (!key_of(op, e, key)) {
            if (op.kind == OpKind::Insert || op.kind == OpKind::Upsert) {
                // The key's NULL column fails like the row path's INSERT.
                Row row = new_row(op.table);
                assign(op, op.values, e, row);
            }
            continue;  // UPDATE/DELETE ... WHERE key = NULL matches nothing
        }
        Row* row = find(op.table, key);
        const bool exists = row && (row->state == RowState::New || row->state == RowState::Clean || row->state == RowState::Dirty);
        switch (op.kind) {
            case OpKind::Insert:
                if (exists) {
                    std::string shown;
                    const auto& kc = plan_.tables[op.table].key_columns;
                    for (std::size_t i = 0; i < kc.size(); ++i) {
                        auto t = column_text(plan_.tables[op.table].info.columns[kc[i]], row->cells[kc[i]]);
                        shown += (i ? ", " : "") + t.value_or("null");
                    }
                    throw ProjectionError(ProjectionError::Code::UniqueViolation,
                                          "duplicate key value in table \"" + plan_.tables[op.table].info.name + "\"",
                                          describe_key(op.table, shown) + " Rule " + op.where + ".");
                }
                insert(op, e, row, std::move(key));
                break;
            case OpKind::Upsert:
                if (!exists) {
                    insert(op, e, row, std::move(key));
                    break;
                }
                [[fallthrough]];
            case OpKind::Update:
                if (exists) {
                    shrink(op.table, row_bytes(*row));
                    assign(op, op.set, e, *row);
                    if (row->state == RowState::Clean) {
                        row->state = RowState::Dirty;
                        mark_pending(op.table, key);
                    }
                    grow(op.table, row_bytes(*row));
                }
                break;
            case OpKind::Delete:
                if (!exists) break;
                if (row->state == RowState::New) {
                    if (tables_[op.table].complete) {
                        shrink(op.table, row_bytes(*row) + key.size() + 32);
                        tables_[op.table].rows.erase(key);
                    } else {
                        row->state = RowState::Absent;
                    }
                } else {
                    if (row->state == RowState::Clean) mark_pending(op.table, key);
                    row->state = RowState::Gone;
                }
                break;
        }
    }
}

std::vector<std::vector<TextRow>> Engine::missing_keys(const std::vector<EventInput>& events) const {
    std::vector<std::vector<TextRow>> out(tables_.size());
    std::vector<boost::unordered_flat_map<std::string, bool>> seen(tables_.size());
    std::string key;
    for (const EventInput& e : events) {
        const EventTypeOps* ops = plan_.ops_for(e.event_type);
        if (!ops) continue;
        for (const CompiledOp& op : ops->ops) {
            if (tables_[op.table].complete || !key_of(op, e, key)) continue;
            if (tables_[op.table].rows.count(key) || !seen[op.table].emplace(key, true).second) continue;
            TextRow k;
            for (int s : op.key_sources) k.push_back(e.values[s]);
            out[op.table].push_back(std::move(k));
        }
    }
    return out;
}

void Engine::known_row(int table, const TextRow& columns) {
    const CompiledTable& t = plan_.tables[table];
    Row row;
    row.state = RowState::Clean;
    for (std::size_t i = 0; i < t.info.columns.size(); ++i) row.cells.push_back(parse_cell(t.info.columns[i], columns.at(i)));
    std::string key;
    for (int c : t.key_columns) append_key(key, row.cells[c]);
    auto& rows = tables_[table].rows;
    if (auto it = rows.find(key); it != rows.end()) shrink(table, row_bytes(it->second) + key.size() + 32);
    grow(table, row_bytes(row) + key.size() + 32);
    rows.insert_or_assign(std::move(key), std::move(row));
}

void Engine::known_absent(int table, const TextRow& key_texts) {
    const CompiledTable& t = plan_.tables[table];
    std::string key;
    for (std::size_t i = 0; i < t.key_columns.size(); ++i) append_key(key, parse_cell(t.info.columns[t.key_columns[i]], key_texts.at(i)));
    Row row;
    row.state = RowState::Absent;
    const std::size_t bytes = row_bytes(row) + key.size() + 32;
    if (tables_[table].rows.emplace(std::move(key), std::move(row)).second) grow(table, bytes);
}

std::optional<std::string> Engine::column_text(const ColumnInfo& col, const Cell& c) const {
    if (c.state != Cell::State::Value) return std::nullopt;
    switch (col.kind) {
        case ValueKind::Integer: return std::to_string(c.number);
        case ValueKind::Timestamp: return format_timestamp(c.number, col.timestamp_with_zone);
        default: return c.text;
    }
}

void Engine::add_text(int table, const Row& row, std::string& out, const std::vector<int>& columns) const {
    const auto& cols = plan_.tables[table].info.columns;
    bool first = true;
    for (int c : columns) {
        if (!first) out += '\t';
        first = false;
        const auto text = column_text(cols[c], row.cells[c]);
        if (text)
            append_copy_text(out, *text);
        else
            out += "\\N";
    }
    out += '\n';
}

Changes Engine::take_changes(bool include_shared) {
    Changes ch;
    for (std::size_t t = 0; t < tables_.size(); ++t) {
        const int table = static_cast<int>(t);
        Table& tab = tables_[t];
        const CompiledTable& ct = plan_.tables[t];
        if (!include_shared && ct.mode == TableMode::Shared) continue;
        // One COPY per set of columns that PostgreSQL fills with their volatile default.
        std::map<std::vector<int>, std::size_t> chunk_of;
        std::vector<int> columns;  // reused: no allocation per row once the chunk exists
        auto copy_row = [&](const Row& row) {
            columns.clear();
            for (std::size_t c = 0; c < row.cells.size(); ++c)
                if (row.cells[c].state != Cell::State::Default) columns.push_back(static_cast<int>(c));
            auto it = chunk_of.find(columns);
            if (it == chunk_of.end()) {
                it = chunk_of.emplace(columns, ch.copies.size()).first;
                ch.copies.push_back(CopyChunk{table, columns, {}, 0});
            }
            CopyChunk& chunk = ch.copies[it->second];
            add_text(table, row, chunk.data, chunk.columns);
            ++chunk.rows;
        };
        for (const Row& row : tab.appended) copy_row(row);
        tab.appended.clear();
        RowSet deletes{table, ct.key_columns, {}};
        // One UPDATE per set of columns: a cell still holding its volatile default was filled by
        // PostgreSQL and is not known here, so it is not written back.
        std::map<std::vector<int>, RowSet> updates;
        auto update_row = [&](const Row& row) {
            std::vector<int> columns = ct.key_columns;
            for (std::size_t c = 0; c < row.cells.size(); ++c)
                if (row.cells[c].state != Cell::State::Default &&
                    std::find(ct.key_columns.begin(), ct.key_columns.end(), static_cast<int>(c)) == ct.key_columns.end())
                    columns.push_back(static_cast<int>(c));
            if (columns.size() == ct.key_columns.size()) return;  // nothing but the key: nothing to update
            RowSet& set = updates.try_emplace(columns, RowSet{table, columns, {}}).first->second;
            TextRow r;
            for (int c : columns) r.push_back(column_text(ct.info.columns[c], row.cells[c]));
            set.rows.push_back(std::move(r));
        };
        auto take = [&](Row& row) {
            switch (row.state) {
                case RowState::New: copy_row(row); break;
                case RowState::Dirty: update_row(row); break;
                case RowState::Gone: {
                    TextRow r;
                    for (int c : deletes.columns) r.push_back(column_text(ct.info.columns[c], row.cells[c]));
                    deletes.rows.push_back(std::move(r));
                    break;
                }
                default: break;
            }
            if (row.state == RowState::New || row.state == RowState::Dirty) row.state = RowState::Clean;
            if (row.state == RowState::Gone) row.state = RowState::Absent;
        };
        if (ct.mode == TableMode::Shared) {
            // Only the rows changed since the last call: the others stay cached as they are.
            for (const std::string& key : tab.pending)
                if (auto it = tab.rows.find(key); it != tab.rows.end()) take(it->second);
            tab.pending.clear();
        } else {
            // Final rows: written and forgotten.
            for (auto& [key, row] : tab.rows) take(row);
            tab.rows.clear();
            memory_ -= tab.bytes;
            tab.bytes = 0;
        }
        for (auto& [columns, set] : updates) ch.updates.push_back(std::move(set));
        if (!deletes.rows.empty()) ch.deletes.push_back(std::move(deletes));
    }
    return ch;
}

void Engine::evict_shared() {
    for (std::size_t t = 0; t < tables_.size(); ++t) {
        if (plan_.tables[t].mode != TableMode::Shared) continue;
        tables_[t].rows = {};  // and its slot array
        tables_[t].pending.clear();
        tables_[t].complete = false;
        memory_ -= tables_[t].bytes;
        tables_[t].bytes = 0;
    }
}

void Engine::forget() {
    for (std::size_t t = 0; t < tables_.size(); ++t) {
        tables_[t].rows = {};
        tables_[t].appended.clear();
        tables_[t].pending.clear();
        tables_[t].bytes = 0;
        if (plan_.tables[t].mode == TableMode::Shared) tables_[t].complete = false;
    }
    memory_ = 0;
}

uint64_t Engine::rows_cached() const {
    uint64_t n = 0;
    for (const auto& t : tables_) n += t.rows.size() + t.appended.size();
    return n;
}

}  // namespace viewmig::core
