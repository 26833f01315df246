// Worker-side transaction control (see transaction_control.hpp).
#include "pg/transaction_control.hpp"

#include "pg/guard.hpp"

extern "C" {
#include "access/xact.h"
#include "parser/analyze.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "tcop/pquery.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/snapmgr.h"
#include "storage/proc.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
}

namespace viewmig::pg {

void worker_begin(const std::string& activity) {
    const char* text = activity.c_str();
    pg_call([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "viewmig: SPI_connect failed");
        pgstat_report_activity(STATE_RUNNING, text);
    });
}

void worker_commit() {
    pg_call([] {
        SPI_finish();
        PopActiveSnapshot();
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

void report_activity(const std::string& activity) {
    const char* text = activity.c_str();
    pg_call([&] { pgstat_report_activity(STATE_RUNNING, text); });
}

void worker_abort() {
    pg_call([] {
        AbortCurrentTransaction();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

namespace {
MemoryContext make_parse_context() {
    return pg_call([] { return AllocSetContextCreate(TopMemoryContext, "viewmig top-level statement", ALLOCSET_DEFAULT_SIZES); });
}
}  // namespace

void execute_top_level(const std::string& sql) {
    const char* text = sql.c_str();
    // Parse trees must outlive the transaction: VACUUM and CREATE INDEX CONCURRENTLY commit and
    // start transactions themselves. The context is freed on success and on error alike, and the
    // caller's context (never one of the transaction's, which commit frees) is current afterwards.
    struct Cleanup {
        MemoryContext caller, parse;
        Cleanup() : caller(CurrentMemoryContext), parse(make_parse_context()) {}
        ~Cleanup() {
            disable_timeout(STATEMENT_TIMEOUT, false);  // also when the statement failed
            MemoryContextSwitchTo(caller);
            MemoryContextDelete(parse);
        }
    } cleanup;
    MemoryContext parse_cxt = cleanup.parse;
    pg_call([&] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        pgstat_report_activity(STATE_RUNNING, text);
        MemoryContextSwitchTo(parse_cxt);
        List* parsetrees = pg_parse_query(text);
        ListCell* lc;
        foreach (lc, parsetrees) {
            RawStmt* parsetree = lfirst_node(RawStmt, lc);
            const CommandTag tag = CreateCommandTag(parsetree->stmt);
            const bool snapshot = analyze_requires_snapshot(parsetree);
            if (snapshot) PushActiveSnapshot(GetTransactionSnapshot());
            List* queries = pg_analyze_and_rewrite_fixedparams(parsetree, text, nullptr, 0, nullptr);
            List* plans = pg_plan_queries(queries, text, CURSOR_OPT_PARALLEL_OK, nullptr);
            if (snapshot) PopActiveSnapshot();

            // A client's statement gets its statement_timeout armed by the main loop; this one
            // needs it armed here (SIGALRM then cancels it like any statement).
            if (StatementTimeout > 0) enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
            Portal portal = CreatePortal("", true, true);
            portal->visible = false;
            PortalDefineQuery(portal, nullptr, text, tag, plans, nullptr);
            PortalStart(portal, nullptr, 0, InvalidSnapshot);
            DestReceiver* receiver = CreateDestReceiver(DestNone);
            QueryCompletion qc;
            PortalRun(portal, FETCH_ALL, true, true, receiver, receiver, &qc);
            receiver->rDestroy(receiver);
            PortalDrop(portal, false);
            disable_timeout(STATEMENT_TIMEOUT, false);
            MemoryContextSwitchTo(parse_cxt);
        }
        CommitTransactionCommand();
        pgstat_report_activity(STATE_IDLE, nullptr);
    });
}

}  // namespace viewmig::pg
