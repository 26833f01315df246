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

int64_t parse_int64(std::string_view s) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size())
        throw ProjectionError(ProjectionError::Code::OutOfRange, "invalid integer \"" + std::string(s) + "\" in the replay scan");
    return v;
}

// `value` as `width` decimal digits at least, zero-padded.
void append_padded(std::string& out, int64_t value, int width) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    for (int n = static_cast<int>(end - buf); n < width; ++n) out += '0';
    out.append(buf, end);
}

// A row's size in its arena: head, cells, key and the texts (8-byte aligned by the arena).
std::size_t aligned(std::size_t n) { return (n + 7) & ~std::size_t(7); }

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
    const auto special = [](char c) { return c == '\\' || c == '\n' || c == '\r' || c == '\t'; };
    if (std::none_of(value.begin(), value.end(), special)) {
        out.append(value);
        return;
    }
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

void append_timestamp(std::string& out, int64_t micros, bool with_zone) {
    constexpr int64_t kDay = 86400LL * 1000000;
    int64_t days = micros / kDay, rest = micros % kDay;
    if (rest < 0) rest += kDay, --days;
    int64_t y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    const bool bc = y <= 0;
    const int64_t secs = rest / 1000000, frac = rest % 1000000;
    append_padded(out, bc ? 1 - y : y, 4);
    out += '-';
    append_padded(out, m, 2);
    out += '-';
    append_padded(out, d, 2);
    out += ' ';
    append_padded(out, secs / 3600, 2);
    out += ':';
    append_padded(out, secs / 60 % 60, 2);
    out += ':';
    append_padded(out, secs % 60, 2);
    if (frac) {
        char buf[7];
        int64_t f = frac;
        for (int i = 5; i >= 0; --i, f /= 10) buf[i] = static_cast<char>('0' + f % 10);
        int n = 6;
        while (buf[n - 1] == '0') --n;
        out += '.';
        out.append(buf, n);
    }
    if (with_zone) out += "+00";
    if (bc) out += " BC";
}

std::string format_timestamp(int64_t micros, bool with_zone) {
    std::string s;
    append_timestamp(s, micros, with_zone);
    return s;
}

// ---- the arena ------------------------------------------------------------------------------------

namespace {
constexpr std::size_t kFirstChunk = 8 << 10, kLargestChunk = 1 << 20;
}

char* Engine::Arena::allocate(std::size_t n) {
    n = aligned(n);
    if (n > left_) {
        std::size_t size = chunks_.empty() ? kFirstChunk : std::min(last_size_ * 2, kLargestChunk);
        size = std::max(size, n);
        chunks_.emplace_back(new char[size]);  // not value-initialised: rows write every byte they read
        last_size_ = size;
        next_ = chunks_.back().get();
        left_ = size;
    }
    char* p = next_;
    next_ += n;
    left_ -= n;
    used_ += n;
    return p;
}

void Engine::Arena::reset() {
    if (chunks_.empty()) return;
    // Keep the largest chunk (the last): the next batch's rows need about as much.
    std::unique_ptr<char[]> keep = std::move(chunks_.back());
    chunks_.clear();
    chunks_.push_back(std::move(keep));
    next_ = chunks_.back().get();
    left_ = last_size_;
    used_ = 0;
}

void Engine::Arena::clear() {
    std::vector<std::unique_ptr<char[]>>().swap(chunks_);
    last_size_ = 0;
    next_ = nullptr;
    left_ = used_ = 0;
}

// ---- rows -----------------------------------------------------------------------------------------

Engine::Engine(const Plan& plan, bool shared_complete) : plan_(plan), tables_(plan.tables.size()) {
    for (std::size_t t = 0; t < tables_.size(); ++t) {
        tables_[t].complete = plan.tables[t].mode != TableMode::Shared || shared_complete;
        for (const ColumnInfo& col : plan.tables[t].info.columns) {
            Cell c = col.default_text ? parse_cell(col, Value(*col.default_text)) : parse_cell(col, std::nullopt);
            if (col.volatile_default) c.state = Cell::State::Default;
            tables_[t].defaults.push_back(c);  // a default's text stays in the plan
        }
    }
}

Engine::Cell Engine::parse_cell(const ColumnInfo& col, const Value& text) const {
    Cell c;
    c.state = text ? Cell::State::Value : Cell::State::Null;
    c.length = 0;
    c.number = 0;
    if (!text) return c;
    if (col.kind == ValueKind::Text) {
        c.text = text->data();
        c.length = static_cast<uint32_t>(text->size());
    } else {
        c.number = parse_int64(*text);
    }
    return c;
}

// A key: per key column its text (length first) or its number, so keys of different columns
// can not run into each other.
void Engine::append_key(int table, std::string& key, const Cell* cells) const {
    const CompiledTable& t = plan_.tables[table];
    for (int col : t.key_columns) {
        const Cell& c = cells[col];
        if (t.info.columns[col].kind == ValueKind::Text) {
            const uint32_t len = c.length;
            key.append(reinterpret_cast<const char*>(&len), sizeof len);
            key.append(c.text, c.length);
        } else {
            key.append(reinterpret_cast<const char*>(&c.number), sizeof c.number);
        }
    }
}

// The op's key for this event (the bytes append_key() writes); false if a key value is NULL (no
// row can match).
bool Engine::key_of(const CompiledOp& op, const EventInput& e, std::string& key) const {
    const CompiledTable& t = plan_.tables[op.table];
    key.clear();
    for (std::size_t i = 0; i < op.key_sources.size(); ++i) {
        const Value& text = e.values[op.key_sources[i]];
        if (!text) return false;
        if (t.info.columns[t.key_columns[i]].kind == ValueKind::Text) {
            const uint32_t len = static_cast<uint32_t>(text->size());
            key.append(reinterpret_cast<const char*>(&len), sizeof len);
            key.append(*text);
        } else {
            const int64_t number = parse_int64(*text);
            key.append(reinterpret_cast<const char*>(&number), sizeof number);
        }
    }
    return true;
}

const char* Engine::store(int table, std::string_view text) {
    if (text.empty()) return "";
    char* p = tables_[table].arena.allocate(text.size());
    memcpy(p, text.data(), text.size());
    return p;
}

// One allocation: head, cells, key, texts. `reuse`: a row already in the map (Gone, Absent) whose
// place is reused for the new cells; its old texts become garbage.
Engine::RowHead* Engine::materialize(int table, const Cell* cells, std::string_view key, RowHead* reuse) {
    Table& t = tables_[table];
    const std::size_t ncols = t.defaults.size();
    const auto& cols = plan_.tables[table].info.columns;
    std::size_t texts = 0;
    for (std::size_t c = 0; c < ncols; ++c)
        if (cols[c].kind == ValueKind::Text && cells[c].state == Cell::State::Value) texts += cells[c].length;
    RowHead* row = reuse;
    char* tail;
    if (reuse) {
        for (std::size_t c = 0; c < ncols; ++c)
            if (cols[c].kind == ValueKind::Text && reuse->cells()[c].state == Cell::State::Value) t.garbage += reuse->cells()[c].length;
        tail = texts ? t.arena.allocate(texts) : nullptr;
    } else {
        char* p = t.arena.allocate(sizeof(RowHead) + ncols * sizeof(Cell) + key.size() + texts);
        row = reinterpret_cast<RowHead*>(p);
        tail = p + sizeof(RowHead) + ncols * sizeof(Cell);
        memcpy(tail, key.data(), key.size());
        row->key = tail;
        row->key_length = static_cast<uint32_t>(key.size());
        tail += key.size();
    }
    Cell* out = row->cells();
    for (std::size_t c = 0; c < ncols; ++c) {
        out[c] = cells[c];
        if (cols[c].kind == ValueKind::Text && cells[c].state == Cell::State::Value && cells[c].length) {
            memcpy(tail, cells[c].text, cells[c].length);
            out[c].text = tail;
            tail += cells[c].length;
        }
    }
    return row;
}

// The arena bytes of a row (its texts may have been stored apart by later updates).
std::size_t Engine::row_bytes(int table, const RowHead& row) const {
    const auto& cols = plan_.tables[table].info.columns;
    std::size_t n = sizeof(RowHead) + cols.size() * sizeof(Cell) + row.key_length;
    for (std::size_t c = 0; c < cols.size(); ++c)
        if (cols[c].kind == ValueKind::Text && row.cells()[c].state == Cell::State::Value) n += row.cells()[c].length;
    return n;
}

void Engine::mark_pending(int table, RowHead* row) {
    if (plan_.tables[table].mode == TableMode::Shared) tables_[table].pending.push_back(row);
}

Engine::RowHead* Engine::find(int table, const KeyRef& key) {
    auto& rows = tables_[table].rows;
    auto it = rows.find(key);
    if (it != rows.end()) return it->second;
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

// Applies `list` to `cells`. With `store_table` >= 0 the cells belong to a row of that table and
// new texts are copied into its arena; otherwise they still point into the event.
void Engine::evaluate(const CompiledOp& op, const std::vector<Assignment>& list, const EventInput& e, Cell* cells,
                      int store_table) {
    const CompiledTable& t = plan_.tables[op.table];
    for (const Assignment& a : list) {
        const ColumnInfo& col = t.info.columns[a.column];
        Cell v = parse_cell(col, e.values[a.source]);
        Cell& cell = cells[a.column];
        if (a.action != Action::Set && cell.state == Cell::State::Default)
            throw ProjectionError(ProjectionError::Code::Unsupported,
                                  "column \"" + col.name + "\" of table \"" + t.info.name +
                                      "\" still has its volatile default, which PostgreSQL evaluates only when it writes the row",
                                  "Rule " + op.where + " reads it; set the column in the rule that inserts the row.");
        switch (a.action) {
            case Action::Set:
                if (store_table >= 0 && col.kind == ValueKind::Text) {
                    if (cell.state == Cell::State::Value) tables_[store_table].garbage += cell.length;
                    if (v.state == Cell::State::Value) v.text = store(store_table, v.view());
                }
                cell = v;
                break;
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
            case Action::Least:  // integer and timestamp columns only (compile_rules checks)
                if (v.state == Cell::State::Null) break;
                if (cell.state == Cell::State::Null || (a.action == Action::Greatest ? v.number > cell.number : v.number < cell.number))
                    cell = v;
                break;
        }
        if (cell.state == Cell::State::Null && col.not_null)
            throw ProjectionError(ProjectionError::Code::NotNullViolation,
                                  "null value in column \"" + col.name + "\" of relation \"" + t.info.name +
                                      "\" violates not-null constraint",
                                  "Rule " + op.where + ".");
    }
}

void Engine::insert(const CompiledOp& op, const EventInput& e, RowHead* existing, const KeyRef& key) {
    const int table = op.table;
    Table& t = tables_[table];
    scratch_.assign(t.defaults.begin(), t.defaults.end());
    evaluate(op, op.values, e, scratch_.data(), -1);
    const auto& cols = plan_.tables[table].info.columns;
    for (std::size_t i = 0; i < cols.size(); ++i)
        if (cols[i].not_null && scratch_[i].state == Cell::State::Null)
            throw ProjectionError(ProjectionError::Code::NotNullViolation,
                                  "null value in column \"" + cols[i].name + "\" of relation \"" + plan_.tables[table].info.name +
                                      "\" violates not-null constraint",
                                  "Rule " + op.where + ".");
    if (plan_.tables[table].mode == TableMode::AppendOnly) {
        t.appended.push_back(materialize(table, scratch_.data(), {}, nullptr));
        return;
    }
    const bool was_pending = existing && existing->state == RowState::Gone;
    RowHead* row = materialize(table, scratch_.data(), key.bytes, existing);
    row->state = was_pending ? RowState::Dirty : RowState::New;
    if (!was_pending) mark_pending(table, row);
    if (!existing) t.rows.emplace(stored_key(row, key.hash), row);
}

void Engine::apply(const EventInput& e, Tables which) {
    const EventTypeOps* ops = plan_.ops_for(e.event_type);
    if (!ops) return;
    for (const CompiledOp& op : ops->ops) {
        const TableMode mode = plan_.tables[op.table].mode;
        if (which != Tables::All && (mode == TableMode::Shared) != (which == Tables::Shared)) continue;
        if (mode == TableMode::AppendOnly) {
            insert(op, e, nullptr, KeyRef{});
            continue;
        }
        if (!key_of(op, e, key_)) {
            if (op.kind == OpKind::Insert || op.kind == OpKind::Upsert) {
                // The key's NULL column fails like the row path's INSERT.
                scratch_.assign(tables_[op.table].defaults.begin(), tables_[op.table].defaults.end());
                evaluate(op, op.values, e, scratch_.data(), -1);
            }
            continue;  // UPDATE/DELETE ... WHERE key = NULL matches nothing
        }
        const KeyRef key = KeyRef::of(key_);
        RowHead* row = find(op.table, key);
        const bool exists = row && (row->state == RowState::New || row->state == RowState::Clean || row->state == RowState::Dirty);
        switch (op.kind) {
            case OpKind::Insert:
                if (exists) {
                    std::string shown;
                    const auto& kc = plan_.tables[op.table].key_columns;
                    for (std::size_t i = 0; i < kc.size(); ++i) {
                        auto t = column_text(plan_.tables[op.table].info.columns[kc[i]], row->cells()[kc[i]]);
                        shown += (i ? ", " : "") + t.value_or("null");
                    }
                    throw ProjectionError(ProjectionError::Code::UniqueViolation,
                                          "duplicate key value in table \"" + plan_.tables[op.table].info.name + "\"",
                                          describe_key(op.table, shown) + " Rule " + op.where + ".");
                }
                insert(op, e, row, key);
                break;
            case OpKind::Upsert:
                if (!exists) {
                    insert(op, e, row, key);
                    break;
                }
                [[fallthrough]];
            case OpKind::Update:
                if (exists) {
                    evaluate(op, op.set, e, row->cells(), op.table);
                    if (row->state == RowState::Clean) {
                        row->state = RowState::Dirty;
                        mark_pending(op.table, row);
                    }
                }
                break;
            case OpKind::Delete:
                if (!exists) break;
                if (row->state == RowState::New) {
                    if (tables_[op.table].complete) {
                        Table& t = tables_[op.table];
                        t.garbage += row_bytes(op.table, *row);
                        t.rows.erase(stored_key(row, key.hash));
                    }
                    row->state = RowState::Absent;  // a pending entry for it skips it
                } else {
                    if (row->state == RowState::Clean) mark_pending(op.table, row);
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
            if (tables_[op.table].rows.count(KeyRef::of(key)) || !seen[op.table].emplace(key, true).second) continue;
            TextRow k;
            for (int s : op.key_sources) k.push_back(e.values[s] ? std::optional<std::string>(*e.values[s]) : std::nullopt);
            out[op.table].push_back(std::move(k));
        }
    }
    return out;
}

void Engine::known_row(int table, const TextRow& columns) {
    const CompiledTable& t = plan_.tables[table];
    scratch_.clear();
    for (std::size_t i = 0; i < t.info.columns.size(); ++i) {
        const auto& text = columns.at(i);
        scratch_.push_back(parse_cell(t.info.columns[i], text ? Value(*text) : std::nullopt));
    }
    std::string key;
    append_key(table, key, scratch_.data());
    auto& rows = tables_[table].rows;
    const KeyRef lookup = KeyRef::of(key);
    if (auto it = rows.find(lookup); it != rows.end()) {
        tables_[table].garbage += row_bytes(table, *it->second);
        it->second->state = RowState::Absent;
        rows.erase(it);
    }
    RowHead* row = materialize(table, scratch_.data(), key, nullptr);
    row->state = RowState::Clean;
    rows.emplace(stored_key(row, lookup.hash), row);
}

void Engine::known_absent(int table, const TextRow& key_texts) {
    const CompiledTable& t = plan_.tables[table];
    scratch_.assign(tables_[table].defaults.begin(), tables_[table].defaults.end());
    for (std::size_t i = 0; i < t.key_columns.size(); ++i) {
        const auto& text = key_texts.at(i);
        scratch_[t.key_columns[i]] = parse_cell(t.info.columns[t.key_columns[i]], text ? Value(*text) : std::nullopt);
    }
    std::string key;
    append_key(table, key, scratch_.data());
    const KeyRef lookup = KeyRef::of(key);
    if (tables_[table].rows.count(lookup)) return;
    RowHead* row = materialize(table, scratch_.data(), key, nullptr);
    row->state = RowState::Absent;
    tables_[table].rows.emplace(stored_key(row, lookup.hash), row);
}

std::optional<std::string> Engine::column_text(const ColumnInfo& col, const Cell& c) const {
    if (c.state != Cell::State::Value) return std::nullopt;
    switch (col.kind) {
        case ValueKind::Integer: return std::to_string(c.number);
        case ValueKind::Timestamp: return format_timestamp(c.number, col.timestamp_with_zone);
        default: return std::string(c.view());
    }
}

void Engine::add_text(int table, const RowHead& row, std::string& out, const std::vector<int>& columns) const {
    const auto& cols = plan_.tables[table].info.columns;
    const Cell* cells = row.cells();
    bool first = true;
    for (int c : columns) {
        if (!first) out += '\t';
        first = false;
        const Cell& cell = cells[c];
        if (cell.state != Cell::State::Value) {
            out += "\\N";
            continue;
        }
        switch (cols[c].kind) {
            case ValueKind::Integer: append_padded(out, cell.number, 1); break;
            case ValueKind::Timestamp: append_timestamp(out, cell.number, cols[c].timestamp_with_zone); break;
            default: append_copy_text(out, cell.view());
        }
    }
    out += '\n';
}

// ---- changes out ----------------------------------------------------------------------------------

Changes Engine::take_changes(bool include_shared) {
    Changes ch;
    for (std::size_t t = 0; t < tables_.size(); ++t) {
        const int table = static_cast<int>(t);
        Table& tab = tables_[t];
        const CompiledTable& ct = plan_.tables[t];
        const std::size_t ncols = tab.defaults.size();
        if (!include_shared && ct.mode == TableMode::Shared) {
            if (tab.garbage > tab.arena.used() / 2) compact(table);
            continue;
        }
        // One COPY per set of columns that PostgreSQL fills with their volatile default; rows are
        // told apart by which of their cells hold one ('1') - nearly always the same set.
        std::vector<std::pair<std::string, std::size_t>> chunk_of;
        std::string defaults(ncols, '0');
        auto default_set = [&](const RowHead& row) -> const std::string& {
            for (std::size_t c = 0; c < ncols; ++c) defaults[c] = row.cells()[c].state == Cell::State::Default ? '1' : '0';
            return defaults;
        };
        auto copy_row = [&](const RowHead& row) {
            const std::string& set = default_set(row);
            std::size_t i = 0;
            while (i < chunk_of.size() && chunk_of[i].first != set) ++i;
            if (i == chunk_of.size()) {
                std::vector<int> columns;
                for (std::size_t c = 0; c < ncols; ++c)
                    if (set[c] == '0') columns.push_back(static_cast<int>(c));
                chunk_of.emplace_back(set, ch.copies.size());
                ch.copies.push_back(CopyChunk{table, std::move(columns), {}, 0});
            }
            CopyChunk& chunk = ch.copies[chunk_of[i].second];
            add_text(table, row, chunk.data, chunk.columns);
            ++chunk.rows;
        };
        for (const RowHead* row : tab.appended) copy_row(*row);
        tab.appended.clear();
        RowSet deletes{table, ct.key_columns, {}};
        // One UPDATE per set of columns: a cell still holding its volatile default was filled by
        // PostgreSQL and is not known here, so it is not written back.
        std::map<std::string, RowSet> updates;
        auto update_row = [&](const RowHead& row) {
            RowSet* set;
            auto it = updates.find(default_set(row));
            if (it != updates.end()) {
                set = &it->second;
            } else {
                std::vector<int> columns = ct.key_columns;
                for (std::size_t c = 0; c < ncols; ++c)
                    if (defaults[c] == '0' && std::find(ct.key_columns.begin(), ct.key_columns.end(), static_cast<int>(c)) == ct.key_columns.end())
                        columns.push_back(static_cast<int>(c));
                set = &updates.emplace(defaults, RowSet{table, std::move(columns), {}}).first->second;
            }
            if (set->columns.size() == ct.key_columns.size()) return;  // nothing but the key: nothing to update
            TextRow r;
            for (int c : set->columns) r.push_back(column_text(ct.info.columns[c], row.cells()[c]));
            set->rows.push_back(std::move(r));
        };
        auto take = [&](RowHead& row) {
            switch (row.state) {
                case RowState::New: copy_row(row); break;
                case RowState::Dirty: update_row(row); break;
                case RowState::Gone: {
                    TextRow r;
                    for (int c : deletes.columns) r.push_back(column_text(ct.info.columns[c], row.cells()[c]));
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
            for (RowHead* row : tab.pending) take(*row);
            tab.pending.clear();
            if (tab.garbage > tab.arena.used() / 2) compact(table);
        } else {
            // Final rows: written and forgotten.
            for (auto& [key, row] : tab.rows) take(*row);
            tab.rows.clear();
            tab.arena.reset();
            tab.garbage = 0;
        }
        for (auto& [set, rows] : updates)
            if (!rows.rows.empty()) ch.updates.push_back(std::move(rows));
        if (!deletes.rows.empty()) ch.deletes.push_back(std::move(deletes));
    }
    return ch;
}

// Copies a shared table's rows into a new arena, leaving the garbage behind. Pending entries
// follow their rows; those of rows no longer in the table are dropped.
void Engine::compact(int table) {
    Table& t = tables_[table];
    decltype(t.rows) rows;
    rows.reserve(t.rows.size());
    Arena old_arena;
    std::swap(old_arena, t.arena);  // t.arena: the new one, for materialize()
    for (auto& [key, old] : t.rows) {
        RowHead* row = materialize(table, old->cells(), key.bytes, nullptr);
        row->state = old->state;
        rows.emplace(stored_key(row, key.hash), row);
        old->state = RowState::Moved;
        old->key = reinterpret_cast<const char*>(row);
    }
    std::vector<RowHead*> pending;
    for (RowHead* old : t.pending)
        if (old->state == RowState::Moved) pending.push_back(reinterpret_cast<RowHead*>(const_cast<char*>(old->key)));
    t.rows = std::move(rows);
    t.pending = std::move(pending);
    t.garbage = 0;
    // old_arena (the old rows) is freed here.
}

void Engine::evict_shared() {
    for (std::size_t t = 0; t < tables_.size(); ++t) {
        if (plan_.tables[t].mode != TableMode::Shared) continue;
        tables_[t].rows = {};  // and its slot array
        std::vector<RowHead*>().swap(tables_[t].pending);
        tables_[t].arena.clear();
        tables_[t].garbage = 0;
        tables_[t].complete = false;
    }
}

void Engine::forget() {
    for (std::size_t t = 0; t < tables_.size(); ++t) {
        tables_[t].rows = {};
        std::vector<RowHead*>().swap(tables_[t].appended);
        std::vector<RowHead*>().swap(tables_[t].pending);
        tables_[t].arena.clear();
        tables_[t].garbage = 0;
        if (plan_.tables[t].mode == TableMode::Shared) tables_[t].complete = false;
    }
}

std::size_t Engine::memory_bytes() const {
    std::size_t n = 0;
    for (const auto& t : tables_)
        n += t.arena.used() + t.rows.bucket_count() * sizeof(std::pair<const KeyRef, RowHead*>) +
             (t.appended.capacity() + t.pending.capacity()) * sizeof(RowHead*);
    return n;
}

uint64_t Engine::rows_cached() const {
    uint64_t n = 0;
    for (const auto& t : tables_) n += t.rows.size() + t.appended.size();
    return n;
}

}  // namespace viewmig::core
