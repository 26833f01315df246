// The declarative engine's replay of one batch (see declarative_replay.hpp): scan, load the shared
// rows the batch needs, apply, write. The scan and the COPY run inside pg_call with plain C data
// only; events are copied into C++ strings between the fetches.
#include "pg/declarative_replay.hpp"
#include "pg/projector_rights.hpp"

#include "core/declarative_sql.hpp"
#include "pg/bulk_constraints.hpp"
#include "pg/guard.hpp"
#include "pg/gucs.hpp"
#include "pg/schema_copy.hpp"
#include "pg/spi.hpp"

#include <algorithm>

extern "C" {
#include "access/table.h"
#include "commands/copy.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/errcodes.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rls.h"
}

namespace viewmig::pg {
namespace {

constexpr long kFetchChunk = 1000;
constexpr long kTailChunk = 16;

// One fetched chunk as plain C data: row-major cells, NULL as a null pointer.
struct RawChunk {
    int rows = 0;
    int columns = 0;
    char** cells = nullptr;
    int* lengths = nullptr;
};

void fetch_chunk_unguarded(Portal portal, long count, int columns, MemoryContext cxt, RawChunk* out) {
    SPI_cursor_fetch(portal, true, count);
    SPITupleTable* table = SPI_tuptable;
    MemoryContext old = MemoryContextSwitchTo(cxt);
    out->rows = static_cast<int>(SPI_processed);
    out->columns = columns;
    out->cells = static_cast<char**>(palloc0(sizeof(char*) * (out->rows * columns + 1)));
    out->lengths = static_cast<int*>(palloc0(sizeof(int) * (out->rows * columns + 1)));
    for (int r = 0; r < out->rows; ++r) {
        for (int c = 0; c < columns; ++c) {
            bool isnull;
            const Datum d = SPI_getbinval(table->vals[r], table->tupdesc, c + 1, &isnull);
            if (isnull) continue;
            text* t = DatumGetTextPP(d);
            out->cells[r * columns + c] = VARDATA_ANY(t);
            out->lengths[r * columns + c] = VARSIZE_ANY_EXHDR(t);
        }
    }
    MemoryContextSwitchTo(old);
}

// COPY FROM reads its data through a callback without an argument: the chunk being loaded.
const char* copy_data = nullptr;
std::size_t copy_length = 0, copy_position = 0;

int copy_source(void* outbuf, int /*minread*/, int maxread) {
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(maxread), copy_length - copy_position);
    memcpy(outbuf, copy_data + copy_position, n);
    copy_position += n;
    return static_cast<int>(n);
}

// COPY <relid> (columns) FROM the data, in text format, with the checks COPY itself leaves to
// its caller (INSERT privilege, no row-level security).
void copy_unguarded(Oid relid, const char* const* columns, int ncolumns, const char* data, std::size_t length) {
    if (pg_class_aclcheck(relid, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
        aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, get_rel_name(relid));
    if (check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("the declarative engine can not load table \"%s\", which has row-level security enabled",
                               get_rel_name(relid)),
                        errhint("Disable row-level security on the view table, or use a projector with a handler.")));
    Relation rel = table_open(relid, RowExclusiveLock);
    ParseState* pstate = make_parsestate(nullptr);
    addRangeTableEntryForRelation(pstate, rel, RowExclusiveLock, nullptr, false, false);
    List* attnames = NIL;
    for (int i = 0; i < ncolumns; ++i) attnames = lappend(attnames, makeString(pstrdup(columns[i])));
    List* options = list_make1(makeDefElem(pstrdup("encoding"), reinterpret_cast<Node*>(makeString(pstrdup(GetDatabaseEncodingName()))), -1));
    copy_data = data;
    copy_length = length;
    copy_position = 0;
    CopyFromState cstate = BeginCopyFrom(pstate, rel, nullptr, nullptr, false, copy_source, attnames, options);
    CopyFrom(cstate);
    EndCopyFrom(cstate);
    copy_data = nullptr;
    free_parsestate(pstate);
    table_close(rel, NoLock);
}

// One text[] parameter per column of `rows` (each row holds `ncolumns` values).
std::vector<SqlParam> column_arrays(const std::vector<core::TextRow>& rows, std::size_t ncolumns) {
    std::vector<SqlParam> params;
    for (std::size_t c = 0; c < ncolumns; ++c) {
        std::vector<std::optional<std::string>> column;
        for (const auto& row : rows) column.push_back(row[c]);
        params.push_back(nullable_text_array_param(column));
    }
    return params;
}

int sqlstate_of(core::ProjectionError::Code code) {
    switch (code) {
        case core::ProjectionError::Code::UniqueViolation: return ERRCODE_UNIQUE_VIOLATION;
        case core::ProjectionError::Code::NotNullViolation: return ERRCODE_NOT_NULL_VIOLATION;
        case core::ProjectionError::Code::OutOfRange: return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
        default: return ERRCODE_FEATURE_NOT_SUPPORTED;
    }
}

}  // namespace

// One scanned batch: every text back to back in `data` (one buffer instead of a string per
// value), the events' values as views of it.
struct DeclarativeReplay::Batch {
    std::vector<char> data;                              // its buffer moves with the Batch
    std::vector<std::pair<std::size_t, int64_t>> spans;  // per event 3 + sources: offset, length (-1: NULL)
    std::vector<core::Value> values;                     // events x sources
    std::vector<core::EventInput> events;
    std::size_t width = 0;  // spans per event
    ReplayedRange result;

    std::string_view span(std::size_t event, std::size_t column) const {
        const auto& [offset, length] = spans[event * width + column];
        return length < 0 ? std::string_view() : std::string_view(data.data() + offset, static_cast<std::size_t>(length));
    }
    std::string_view aggregate(std::size_t i) const { return span(i, 0); }
    std::string_view sequence(std::size_t i) const { return span(i, 1); }
    std::string_view type(std::size_t i) const { return span(i, 2); }
    void add(const char* p, std::size_t n) {
        spans.emplace_back(data.size(), p ? static_cast<int64_t>(n) : -1);
        if (p) data.insert(data.end(), p, p + n);
    }
};

bool use_declarative_engine(const Replay& replay, const ProjectorVersion& p) {
    return p.rules.has_value() && !replay.view_schema_migration;
}

std::vector<EventRange> replayed_ranges(const Replay& replay) {
    std::vector<EventRange> out;
    QueryResult groups = spi_run(
        "SELECT lower_bound, CASE WHEN done THEN upper_bound ELSE resume_after END, done FROM viewmig.replay_groups "
        "WHERE replay_id = $1 AND (done OR resume_after IS NOT NULL) ORDER BY group_no",
        {int8_param(replay.id)});
    for (const Row& g : groups.rows) {
        EventRange r;
        r.aggregate_lower = g[0];
        r.aggregate_upper = g[1];
        r.upper_inclusive = !to_bool(g[2]);
        r.xact_upper = replay.initial_bound.value_or(0);
        out.push_back(r);
    }
    return out;
}

DeclarativeReplay::DeclarativeReplay(const EventStore& es, const ProjectorVersion& projector, core::Plan plan,
                                     const Replay& replay, Mode mode)
    : es_(es),
      projector_(projector.projector),
      replay_schema_(replay.replay_schema),
      replay_(replay),
      plan_(std::move(plan)),
      deferred_(mode == Mode::Deferred) {
    check_projector_can_run(projector, replay.replay_schema);
    run_as_ = role_to_switch_to(projector.owner);
    engine_ = std::make_unique<core::Engine>(plan_, deferred_);
    for (const auto& t : plan_.tables) {
        auto oid = spi_value("SELECT to_regclass($1)::oid", {text_param(quote_qualified(replay_schema_, t.info.name))});
        if (!oid) throw UserError(ERRCODE_UNDEFINED_TABLE, "replay table " + quote_qualified(replay_schema_, t.info.name) + " is missing");
        relids_.push_back(static_cast<Oid>(std::stoul(*oid)));
    }
    for (const auto& et : plan_.event_types) event_types_.push_back(et.event_type);
    for (std::size_t i = 0; i < plan_.sources.size(); ++i)
        select_list_ += ", " + core::scan_column_sql(plan_, static_cast<int>(i), "e");
}

DeclarativeReplay::~DeclarativeReplay() = default;

void DeclarativeReplay::forget() {
    if (!deferred_) {
        engine_->forget();
        return;
    }
    // No shared row was written yet: a new engine that knows the tables hold none restores them.
    engine_ = std::make_unique<core::Engine>(plan_, true);
    restore_needed_ = true;
}

void DeclarativeReplay::load_missing(const std::vector<core::EventInput>& events) {
    const auto missing = engine_->missing_keys(events);
    for (std::size_t t = 0; t < missing.size(); ++t) {
        if (missing[t].empty()) continue;
        const core::CompiledTable& table = plan_.tables[t];
        ActingAs as_owner(run_as_);
        QueryResult rows = run_with_search_path(quote_ident(replay_schema_), core::select_rows_sql(table),
                                                column_arrays(missing[t], table.key_columns.size()));
        for (const Row& row : rows.rows) engine_->known_row(static_cast<int>(t), core::TextRow(row.begin(), row.end()));
        for (const auto& key : missing[t]) engine_->known_absent(static_cast<int>(t), key);
    }
}

void DeclarativeReplay::write(const core::Changes& changes) {
    // The tables' defaults, constraints and triggers run as the projector's owner, as they would
    // in its handler (projector_rights.hpp).
    ActingAs as_owner(run_as_);
    const std::string path = quote_ident(replay_schema_);
    auto params_of = [](const core::RowSet& set) { return column_arrays(set.rows, set.columns.size()); };
    for (const auto& d : changes.deletes)
        run_with_search_path(path, core::delete_rows_sql(plan_.tables[d.table], d.columns), params_of(d));
    for (const auto& u : changes.updates)
        run_with_search_path(path, core::update_rows_sql(plan_.tables[u.table], u.columns), params_of(u));
    for (const auto& chunk : changes.copies) {
        std::vector<const char*> names;
        for (int c : chunk.columns) names.push_back(plan_.tables[chunk.table].info.columns[c].name.c_str());
        const Oid relid = relids_[chunk.table];
        const char* const* columns = names.data();
        const int ncolumns = static_cast<int>(names.size());
        const char* data = chunk.data.data();
        const std::size_t length = chunk.data.size();
        pg_call([&] { copy_unguarded(relid, columns, ncolumns, data, length); });
    }
}

void DeclarativeReplay::go_eager() {
    write(engine_->take_changes(true));
    // Eager batches read and update shared rows by key.
    std::vector<std::string> shared;
    for (const auto& t : plan_.tables)
        if (t.mode == core::TableMode::Shared) shared.push_back(t.info.name);
    if (!shared.empty()) add_bulk_constraints(replay_, shared);
    spi_run_as_owner("UPDATE viewmig.replays SET eager_projectors = array_append(eager_projectors, $2) "
                     "WHERE id = $1 AND NOT $2 = ANY(eager_projectors)",
                     {int8_param(replay_.id), text_param(projector_)});
    deferred_ = false;
}

void DeclarativeReplay::finish() {
    if (deferred_) write(engine_->take_changes(true));
}

void DeclarativeReplay::restore_shared_and_go_eager(const std::vector<EventRange>& replayed) {
    for (const EventRange& range : replayed) {
        Batch b = scan(range);
        apply(b, core::Engine::Tables::Shared);
    }
    go_eager();
    engine_->evict_shared();
}

DeclarativeReplay::Batch DeclarativeReplay::scan(const EventRange& range) {
    std::vector<SqlParam> params;
    const std::string sql = "SELECT e." + quote_ident(es_.aggregate_id_column) + "::text, e." +
                            quote_ident(es_.sequence_number_column) + "::text, e." + quote_ident(es_.event_type_column) +
                            "::text" + select_list_ + event_range_sql(es_, range, event_types_, params);
    const int nparams = static_cast<int>(params.size());
    std::vector<Oid> types(nparams);
    std::vector<Datum> values(nparams);
    std::string nulls(nparams, ' ');
    const int nsources = static_cast<int>(plan_.sources.size());
    const int ncolumns = 3 + nsources;
    const char* sql_text = sql.c_str();
    const SqlParam* param_ptr = params.data();
    Oid* type_ptr = types.data();
    Datum* value_ptr = values.data();
    char* null_ptr = nulls.data();

    MemoryContext chunk_cxt = nullptr;
    Portal portal = pg_call([&] {
        bind_params_unguarded(param_ptr, nparams, type_ptr, value_ptr, null_ptr);
        chunk_cxt = AllocSetContextCreate(CurrentMemoryContext, "viewmig declarative scan", ALLOCSET_DEFAULT_SIZES);
        return SPI_cursor_open_with_args(nullptr, sql_text, nparams, type_ptr, value_ptr, null_ptr, false,
                                         CURSOR_OPT_NO_SCROLL | (range.stop_after ? CURSOR_OPT_FAST_PLAN : 0));
    });

    Batch b;
    b.width = static_cast<std::size_t>(ncolumns);
    ReplayedRange& result = b.result;
    bool stop = false;
    while (!stop) {
        long count = kFetchChunk;
        if (range.stop_after > 0)
            count = result.events < range.stop_after
                        ? static_cast<long>(std::min<uint64_t>(kFetchChunk, range.stop_after - result.events + kTailChunk))
                        : kTailChunk;
        RawChunk chunk;
        RawChunk* chunk_ptr = &chunk;
        pg_call([&] { fetch_chunk_unguarded(portal, count, ncolumns, chunk_cxt, chunk_ptr); });
        for (int r = 0; r < chunk.rows; ++r) {
            const char* const* cells = chunk.cells + r * ncolumns;
            const int* lengths = chunk.lengths + r * ncolumns;
            if (!cells[0] || !cells[1] || !cells[2]) {
                // The steps refuse such rows before they replay (event_row_checks.hpp).
                auto shown = [&](int c) { return cells[c] ? std::string(cells[c], lengths[c]) : std::string("NULL"); };
                throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED,
                                std::string("event row with a NULL ") +
                                    (!cells[0] ? "aggregate id" : !cells[1] ? "sequence number" : "event type") +
                                    " can not be replayed")
                    .detail("Event aggregate_id=" + shown(0) + ", sequence_number=" + shown(1) + ", event_type=" +
                            shown(2) + ", declarative projector \"" + projector_ + "\".")
                    .hint("Give the row a value or delete it, and set the event table's column NOT NULL.");
            }
            // Batches end at aggregate boundaries.
            if (range.stop_after > 0 && result.events >= range.stop_after &&
                b.aggregate(result.events - 1) != std::string_view(cells[0], lengths[0])) {
                stop = true;
                result.complete = false;
                break;
            }
            b.add(cells[0], lengths[0]);
            b.add(cells[1] ? cells[1] : "", lengths[1]);
            b.add(cells[2] ? cells[2] : "", lengths[2]);
            for (int s = 0; s < nsources; ++s) {
                const char* p = cells[3 + s];
                if (!p || plan_.sources[s].kind != core::ValueKind::Timestamp) {
                    b.add(p, lengths[3 + s]);
                    continue;
                }
                char micros[24];
                const int n = core::scan_timestamp_chars(std::string_view(p, lengths[3 + s]), micros);
                b.add(n < 0 ? nullptr : micros, n < 0 ? 0 : n);
            }
            ++result.events;
        }
        pg_call([&] {
            SPI_freetuptable(SPI_tuptable);
            MemoryContextReset(chunk_cxt);
        });
        if (chunk.rows == 0) break;
    }
    pg_call([&] {
        SPI_cursor_close(portal);
        MemoryContextDelete(chunk_cxt);
    });
    const std::size_t n = result.events;
    if (n) result.last_aggregate = std::string(b.aggregate(n - 1));
    b.values.reserve(n * nsources);
    for (std::size_t i = 0; i < n; ++i)
        for (int s = 0; s < nsources; ++s) {
            const bool null = b.spans[i * b.width + 3 + s].second < 0;
            b.values.push_back(null ? std::nullopt : core::Value(b.span(i, 3 + s)));
        }
    b.events.resize(n);
    for (std::size_t i = 0; i < n; ++i) b.events[i] = core::EventInput{b.type(i), b.values.data() + i * nsources};
    return b;
}

void DeclarativeReplay::apply(Batch& b, core::Engine::Tables which) {
    const std::size_t limit = static_cast<std::size_t>(viewmig_replay_memory_kb) * 1024;
    const std::vector<core::EventInput>& events = b.events;
    for (std::size_t i = 0; i < events.size(); ++i) {
        if (i > 0 && b.aggregate(i) != b.aggregate(i - 1) && engine_->memory_bytes() > limit) {
            // Early write at an aggregate boundary; if the cached shared rows alone are over the
            // limit, write and drop them too and read what the rest of the batch needs.
            write(engine_->take_changes(!deferred_));
            if (engine_->memory_bytes() > limit) {
                if (deferred_) go_eager();
                engine_->evict_shared();
                load_missing(std::vector<core::EventInput>(events.begin() + i, events.end()));
            }
        }
        try {
            engine_->apply(events[i], which);
        } catch (const core::ProjectionError& e) {
            throw UserError(sqlstate_of(e.code), e.what())
                .detail(e.detail + (e.detail.empty() ? "" : " ") + "Event aggregate_id=" + std::string(b.aggregate(i)) +
                        ", sequence_number=" + std::string(b.sequence(i)) + ", event_type=" + std::string(b.type(i)) +
                        ", declarative projector \"" + projector_ + "\".");
        }
    }
}

ReplayedRange DeclarativeReplay::replay(const EventRange& range) {
    if (restore_needed_) {
        restore_shared_and_go_eager(replayed_ranges(replay_));
        restore_needed_ = false;
    }
    Batch b = scan(range);
    load_missing(b.events);
    apply(b, core::Engine::Tables::All);
    write(engine_->take_changes(!deferred_));
    return b.result;
}

}  // namespace viewmig::pg
