// The per-event replay loop (see replay_scan.hpp). Everything between PG_TRY and the handler
// calls is plain C data: no C++ object with a destructor lives in scan_range_unguarded().
#include "pg/replay_scan.hpp"
#include "pg/gucs.hpp"

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "pg/guard.hpp"
#include "pg/projector_rights.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
}

namespace viewmig::pg {

ReplayTarget ReplayTarget::for_projectors(const std::vector<ProjectorVersion>& projectors, std::string target_schema) {
    std::vector<std::optional<std::vector<std::string>>> filters;
    std::vector<Oid> handlers, run_as;
    std::vector<bool> batch;
    std::vector<std::string> names, paths;
    for (const auto& p : projectors) {
        check_projector_can_run(p, target_schema);
        filters.push_back(p.event_types);
        handlers.push_back(p.handler_oid);
        batch.push_back(p.batch);
        names.push_back(p.projector);
        run_as.push_back(role_to_switch_to(p.owner));
        paths.push_back(handler_search_path(target_schema, p));
    }
    return ReplayTarget{std::move(names), std::move(handlers), std::move(batch), core::EventRouter(filters),
                        std::move(target_schema), std::move(run_as), std::move(paths)};
}

std::string current_search_path() {
    return std::string(pg_call([] { return GetConfigOption("search_path", false, false); }));
}

namespace {

constexpr int kFetchChunk = 1000;
// Rows fetched at a time once a batch that stops early (stop_after) has its events and only
// finishes its last aggregate.
constexpr int kTailChunk = 16;

// Everything the unguarded loop needs, as plain C data.
struct ScanContext {
    const char* sql;
    int nparams;
    Oid* param_types;
    Datum* param_values;
    const char* param_nulls;
    const char* search_path;    // the handlers' search_path while the scan runs (projector 0's)
    int nhandlers;
    const Oid* handler_oids;
    const Oid* run_as;               // by projector: the role its handler runs as (InvalidOid: current user)
    const char* const* search_paths;  // by projector
    const bool* own_call;            // by projector: called as run_as / with its own search_path
    const char* const* projector_names;
    const bool* batch;     // by projector
    Oid rowtype;           // the event table's row type (batch arrays' element type)
    int handler_batch;     // events per batch call
    const core::EventRouter* router;
    uint64 stop_after;
    bool (*stop_early)(void*);
    void* stop_early_arg;
    SPIPlanPtr* plan;      // the scan's plan, prepared on first use and kept (a batch per transaction)
    // Current event, for the error context.
    HeapTuple current_tuple;
    TupleDesc current_desc;
    int current_projector;
    int current_batch;     // events in the batch being handed over (0: a single event)
    // Results.
    uint64 events;
    bool stopped_early;
    char* last_aggregate;  // palloc'd in the caller's memory context
};

bool same_text(const text* a, const text* b) {
    return VARSIZE_ANY_EXHDR(a) == VARSIZE_ANY_EXHDR(b) &&
           memcmp(VARDATA_ANY(a), VARDATA_ANY(b), VARSIZE_ANY_EXHDR(a)) == 0;
}

void event_error_context(void* arg) {
    auto* ctx = static_cast<ScanContext*>(arg);
    if (ctx->current_batch > 0) {
        errcontext("viewmig replaying a batch of %d events with projector \"%s\"", ctx->current_batch,
                   ctx->projector_names[ctx->current_projector]);
        return;
    }
    if (!ctx->current_tuple) return;
    if (ctx->current_projector < 0) {
        char* aggregate_id = SPI_getvalue(ctx->current_tuple, ctx->current_desc, 2);
        char* sequence_number = SPI_getvalue(ctx->current_tuple, ctx->current_desc, 3);
        char* event_type = SPI_getvalue(ctx->current_tuple, ctx->current_desc, 4);
        errcontext("viewmig reading event aggregate_id=%s, sequence_number=%s, event_type=%s",
                   aggregate_id ? aggregate_id : "NULL", sequence_number ? sequence_number : "NULL",
                   event_type ? event_type : "NULL");
        return;
    }
    char* aggregate_id = SPI_getvalue(ctx->current_tuple, ctx->current_desc, 2);
    char* sequence_number = SPI_getvalue(ctx->current_tuple, ctx->current_desc, 3);
    char* event_type = SPI_getvalue(ctx->current_tuple, ctx->current_desc, 4);
    errcontext("viewmig replaying event aggregate_id=%s, sequence_number=%s, event_type=%s with projector \"%s\"",
               aggregate_id ? aggregate_id : "NULL", sequence_number ? sequence_number : "NULL",
               event_type ? event_type : "NULL",
               ctx->current_projector >= 0 ? ctx->projector_names[ctx->current_projector] : "?");
}

// The events collected for batch projectors since the last hand-over, by projector.
struct BatchBuffers {
    Datum** items;
    int* counts;
    int* capacities;
    int pending;  // events collected since the last hand-over
    MemoryContext cxt;
    int16 typlen;
    bool typbyval;
    char typalign;
};

void collect(BatchBuffers* b, int projector, Datum row) {
    MemoryContext old = MemoryContextSwitchTo(b->cxt);
    int& count = b->counts[projector];
    int& capacity = b->capacities[projector];
    if (count == capacity) {
        capacity = capacity ? capacity * 2 : 256;
        b->items[projector] = static_cast<Datum*>(b->items[projector] ? repalloc(b->items[projector], sizeof(Datum) * capacity)
                                                                      : palloc(sizeof(Datum) * capacity));
    }
    b->items[projector][count++] = datumCopy(row, false, -1);  // the fetched chunk is freed before the hand-over
    MemoryContextSwitchTo(old);
}

// Calls projector p's handler with one argument. A handler whose owner is not the current user,
// or that needs another search_path than the scan's, runs in a GUC nest level of its own (nothing
// it sets reaches the next handler or the caller), as its owner, security-restricted (see
// projector_rights.hpp). An ERROR unwinds both with the (sub)transaction.
void call_handler(ScanContext* ctx, FmgrInfo* handler, int p, Datum arg) {
    LOCAL_FCINFO(fcinfo, 1);
    InitFunctionCallInfoData(*fcinfo, handler, 1, InvalidOid, nullptr, nullptr);
    fcinfo->args[0].value = arg;
    fcinfo->args[0].isnull = false;
    if (!ctx->own_call[p]) {
        FunctionCallInvoke(fcinfo);
        return;
    }
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    const int guc_level = NewGUCNestLevel();
    if (OidIsValid(ctx->run_as[p]))
        SetUserIdAndSecContext(ctx->run_as[p], saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
    set_config_option("search_path", ctx->search_paths[p], PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    FunctionCallInvoke(fcinfo);
    AtEOXact_GUC(false, guc_level);
    SetUserIdAndSecContext(saved_user, saved_context);
}

// Hands each batch projector its collected events as one array (whole aggregates, in order).
void hand_over(BatchBuffers* b, ScanContext* ctx, FmgrInfo* handlers, MemoryContext call_cxt) {
    for (int p = 0; p < ctx->nhandlers; ++p) {
        if (!ctx->batch[p] || b->counts[p] == 0) continue;
        MemoryContext old = MemoryContextSwitchTo(call_cxt);
        ArrayType* array = construct_array(b->items[p], b->counts[p], ctx->rowtype, b->typlen, b->typbyval, b->typalign);
        ctx->current_projector = p;
        ctx->current_batch = b->counts[p];
        call_handler(ctx, &handlers[p], p, PointerGetDatum(array));
        ctx->current_batch = 0;
        MemoryContextSwitchTo(old);
        MemoryContextReset(call_cxt);
    }
    MemoryContextReset(b->cxt);
    for (int p = 0; p < ctx->nhandlers; ++p) {
        b->items[p] = nullptr;
        b->counts[p] = b->capacities[p] = 0;
    }
    b->pending = 0;
}

void scan_range_unguarded(ScanContext* ctx) {
    MemoryContext scan_cxt = AllocSetContextCreate(CurrentMemoryContext, "viewmig replay scan", ALLOCSET_DEFAULT_SIZES);
    MemoryContext event_cxt = AllocSetContextCreate(scan_cxt, "viewmig replay event", ALLOCSET_DEFAULT_SIZES);
    MemoryContext old_cxt = MemoryContextSwitchTo(scan_cxt);

    FmgrInfo* handlers = static_cast<FmgrInfo*>(palloc0(sizeof(FmgrInfo) * ctx->nhandlers));
    for (int i = 0; i < ctx->nhandlers; ++i) fmgr_info_cxt(ctx->handler_oids[i], &handlers[i], scan_cxt);
    BatchBuffers batches;
    batches.items = static_cast<Datum**>(palloc0(sizeof(Datum*) * ctx->nhandlers));
    batches.counts = static_cast<int*>(palloc0(sizeof(int) * ctx->nhandlers));
    batches.capacities = static_cast<int*>(palloc0(sizeof(int) * ctx->nhandlers));
    batches.pending = 0;
    batches.cxt = AllocSetContextCreate(scan_cxt, "viewmig replay batch", ALLOCSET_DEFAULT_SIZES);
    get_typlenbyvalalign(ctx->rowtype, &batches.typlen, &batches.typbyval, &batches.typalign);

    ErrorContextCallback callback;
    callback.callback = event_error_context;
    callback.arg = ctx;
    callback.previous = error_context_stack;
    error_context_stack = &callback;

    // Not read-only: the cursor takes a fresh snapshot (in READ COMMITTED), so it sees every
    // transaction that finished before the caller computed its bound or took its locks.
    // The scan's own operators and casts were resolved with search_path pinned (pg_catalog first)
    // when it was prepared, and opening it needs the same path to keep that plan.
    const int scan_guc_level = NewGUCNestLevel();
    set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    if (!*ctx->plan) {
        // A scan that stops early wants an ordered index scan, not a sort of the whole range.
        SPIPlanPtr plan = SPI_prepare_cursor(ctx->sql, ctx->nparams, ctx->param_types,
                                             CURSOR_OPT_NO_SCROLL | (ctx->stop_after ? CURSOR_OPT_FAST_PLAN : 0));
        if (!plan || SPI_keepplan(plan) != 0) elog(ERROR, "viewmig: could not prepare the replay scan");
        *ctx->plan = plan;
    }
    Portal portal = SPI_cursor_open(nullptr, *ctx->plan, ctx->param_values, ctx->param_nulls, false);
    AtEOXact_GUC(true, scan_guc_level);
    // The handlers' search_path (projector 0's; call_handler sets another's for its call) while
    // they run; undone below or by transaction abort.
    const int guc_level = NewGUCNestLevel();
    set_config_option("search_path", ctx->search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    text* previous_aggregate = nullptr;  // in scan_cxt
    bool stop = false;
    while (!stop) {
        // A batch that stops after stop_after events needs that many rows and the rest of its last
        // aggregate, not a whole chunk: with the parallel batches of 500 events, fetching 1000 rows
        // read, copied and threw away as many rows as were replayed.
        long chunk = kFetchChunk;
        if (ctx->stop_after > 0)
            chunk = ctx->events < ctx->stop_after
                        ? static_cast<long>(std::min<uint64>(kFetchChunk, ctx->stop_after - ctx->events + kTailChunk))
                        : kTailChunk;
        SPI_cursor_fetch(portal, true, chunk);
        SPITupleTable* table = SPI_tuptable;
        const uint64 n = SPI_processed;
        for (uint64 r = 0; r < n; ++r) {
            CHECK_FOR_INTERRUPTS();
            HeapTuple tuple = table->vals[r];
            bool agg_null, seq_null, type_null;
            const Datum aggregate_datum = SPI_getbinval(tuple, table->tupdesc, 2, &agg_null);
            SPI_getbinval(tuple, table->tupdesc, 3, &seq_null);
            SPI_getbinval(tuple, table->tupdesc, 4, &type_null);
            if (agg_null || seq_null || type_null) {
                // The steps refuse such rows before they replay (event_row_checks.hpp); a row
                // changed since then still must not reach a handler (or crash this loop).
                ctx->current_tuple = tuple;
                ctx->current_desc = table->tupdesc;
                ctx->current_projector = -1;
                ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                                errmsg("event row with a NULL %s can not be replayed",
                                       agg_null ? "aggregate id" : seq_null ? "sequence number" : "event type"),
                                errhint("Give the row a value or delete it, and set the event table's column NOT NULL.")));
            }
            text* aggregate = DatumGetTextPP(aggregate_datum);
            if (!previous_aggregate || !same_text(previous_aggregate, aggregate)) {
                // Batches end at aggregate boundaries: a batch handler always sees whole aggregates.
                if (batches.pending >= ctx->handler_batch) hand_over(&batches, ctx, handlers, event_cxt);
                if (ctx->stop_after > 0 && ctx->events > 0 &&
                    (ctx->events >= ctx->stop_after || (ctx->stop_early && ctx->stop_early(ctx->stop_early_arg)))) {
                    stop = ctx->stopped_early = true;
                    break;
                }
                if (previous_aggregate) pfree(previous_aggregate);
                previous_aggregate = static_cast<text*>(palloc(VARSIZE_ANY(aggregate)));
                memcpy(previous_aggregate, aggregate, VARSIZE_ANY(aggregate));
            }
            ctx->current_tuple = tuple;
            ctx->current_desc = table->tupdesc;
            ctx->current_projector = -1;
            bool isnull;
            const Datum row = SPI_getbinval(tuple, table->tupdesc, 1, &isnull);
            const Datum type_datum = SPI_getbinval(tuple, table->tupdesc, 4, &isnull);
            std::string_view type_view;
            if (!isnull) {
                text* t = DatumGetTextPP(type_datum);
                type_view = std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
            }
            const core::EventRouter::Targets& targets = ctx->router->targets(type_view);
            MemoryContextSwitchTo(event_cxt);
            bool collected = false;
            for (int target : targets) {
                ctx->current_projector = target;
                if (ctx->batch[target]) {
                    collect(&batches, target, row);
                    collected = true;
                    continue;
                }
                call_handler(ctx, &handlers[target], target, row);
            }
            MemoryContextSwitchTo(scan_cxt);
            MemoryContextReset(event_cxt);
            if (collected) ++batches.pending;
            ctx->events++;
        }
        ctx->current_tuple = nullptr;
        SPI_freetuptable(table);
        if (n == 0) break;
    }
    ctx->current_tuple = nullptr;
    hand_over(&batches, ctx, handlers, event_cxt);  // the last aggregates
    SPI_cursor_close(portal);
    if (previous_aggregate) ctx->last_aggregate = MemoryContextStrdup(old_cxt, text_to_cstring(previous_aggregate));

    error_context_stack = callback.previous;
    AtEOXact_GUC(true, guc_level);
    MemoryContextSwitchTo(old_cxt);
    MemoryContextDelete(scan_cxt);
}

}  // namespace

std::string event_range_sql(const EventStore& es, const EventRange& range,
                            const std::optional<std::vector<std::string>>& event_types, std::vector<SqlParam>& params) {
    const std::string agg = "e." + quote_ident(es.aggregate_id_column);
    std::string sql = " FROM " + es.qualified() + " e WHERE ";
    auto add = [&](SqlParam p) {
        params.push_back(std::move(p));
        return "$" + std::to_string(params.size());
    };
    const std::string xact = "e." + quote_ident(es.xact_id_column);
    sql += xact + " < " + (es.xact_id_type == "xid8" ? "(" + add(int8_param(range.xact_upper)) + "::text::xid8)"
                                                     : add(int8_param(range.xact_upper)));
    if (range.xact_lower)
        sql += " AND " + xact + " >= " +
               (es.xact_id_type == "xid8" ? "(" + add(int8_param(*range.xact_lower)) + "::text::xid8)"
                                          : add(int8_param(*range.xact_lower)));
    if (range.aggregate_lower)
        sql += " AND " + agg + (range.lower_exclusive ? " > CAST(" : " >= CAST(") + add(text_param(range.aggregate_lower)) +
               " AS " + es.aggregate_id_type + ")";
    if (range.aggregate_upper)
        sql += " AND " + agg + (range.upper_inclusive ? " <= CAST(" : " < CAST(") + add(text_param(range.aggregate_upper)) +
               " AS " + es.aggregate_id_type + ")";
    if (event_types)
        sql += " AND e." + quote_ident(es.event_type_column) + "::text = ANY(" + add(text_array_param(*event_types)) + ")";
    return sql + " ORDER BY " + agg + ", e." + quote_ident(es.sequence_number_column);
}

ReplayedRange replay_range(const EventStore& es, const ReplayTarget& target, const EventRange& range) {
    const std::string agg = "e." + quote_ident(es.aggregate_id_column);
    std::vector<SqlParam> params;
    const std::string sql = "SELECT e, " + agg + "::text, e." + quote_ident(es.sequence_number_column) + "::int8, e." +
                            quote_ident(es.event_type_column) + "::text" +
                            event_range_sql(es, range, target.router.type_filter(), params);

    const std::size_t nprojectors = target.handlers.size();
    const std::string search_path = nprojectors ? target.search_paths[0] : quote_ident(target.target_schema);
    std::vector<const char*> names, paths;
    for (const auto& n : target.projector_names) names.push_back(n.c_str());
    for (const auto& p : target.search_paths) paths.push_back(p.c_str());
    std::unique_ptr<bool[]> own_call(new bool[nprojectors + 1]);
    for (std::size_t i = 0; i < nprojectors; ++i)
        own_call[i] = OidIsValid(target.run_as[i]) || target.search_paths[i] != search_path;
    std::unique_ptr<bool[]> batch(new bool[target.batch.size() + 1]);
    for (std::size_t i = 0; i < target.batch.size(); ++i) batch[i] = target.batch[i];

    const int n = static_cast<int>(params.size());
    std::vector<Oid> types(n);
    std::vector<Datum> values(n);
    std::string nulls(n, ' ');
    // Workers run one scan per batch: its plan is kept per statement text (a handful: which bounds
    // the range has, whether it stops early).
    static std::unordered_map<std::string, SPIPlanPtr> plans;
    SPIPlanPtr* plan = &plans[sql + (range.stop_after ? " -- stops early" : "")];
    ScanContext ctx{sql.c_str(), n, types.data(), values.data(), nulls.c_str(), search_path.c_str(),
                    static_cast<int>(target.handlers.size()), target.handlers.data(), target.run_as.data(), paths.data(),
                    own_call.get(), names.data(), batch.get(),
                    es.rowtype, std::max(viewmig_handler_batch_size, 1), &target.router, range.stop_after,
                    range.stop_early, range.stop_early_arg, plan,
                    nullptr, nullptr, -1, 0, 0, false, nullptr};
    const SqlParam* param_ptr = params.data();
    pg_call([&] {
        bind_params_unguarded(param_ptr, n, ctx.param_types, ctx.param_values, const_cast<char*>(ctx.param_nulls));
        scan_range_unguarded(&ctx);
    });
    ReplayedRange result;
    result.events = ctx.events;
    result.complete = !ctx.stopped_early;
    if (ctx.last_aggregate) result.last_aggregate = std::string(ctx.last_aggregate);
    return result;
}

}  // namespace viewmig::pg
