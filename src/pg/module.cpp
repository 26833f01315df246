// Module entry: viewmig's GUCs, and — when loaded by shared_preload_libraries — the launchers.
// Loading the library (at first use, or via shared_preload_libraries) defines the GUCs; values
// set before loading are picked up.
#include "bgw/launcher.hpp"
#include "pg/gucs.hpp"
#include "pg/pg_headers.hpp"

#include <climits>
#include <string>

extern "C" {
#include "miscadmin.h"
#include "utils/guc.h"
}

extern "C" {
PG_MODULE_MAGIC;

int viewmig_batch_size = 10000;
int viewmig_lock_timeout_ms = 100;
int viewmig_lock_max_wait_ms = 60000;
int viewmig_progress_interval_ms = 5000;
char* viewmig_database = nullptr;
int viewmig_naptime_s = 10;
int viewmig_max_workers = 2;
int viewmig_retry_delay_s = 10;
int viewmig_handler_batch_size = 1000;
int viewmig_replay_memory_kb = 1024 * 1024;
char* viewmig_throttle_function = nullptr;
char* viewmig_error_handler = nullptr;

PGDLLEXPORT void _PG_init(void);
void _PG_init(void) {
    DefineCustomIntVariable("viewmig.batch_size", "About how many events one replay transaction (group) holds.", nullptr,
                            &viewmig_batch_size, 10000, 1, INT_MAX, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.lock_timeout", "How long one attempt of complete() waits for its locks.", nullptr,
                            &viewmig_lock_timeout_ms, 100, 1, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.lock_max_wait", "How long complete() keeps retrying to take its locks.", nullptr,
                            &viewmig_lock_max_wait_ms, 60000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.progress_interval", "How often long viewmig calls report progress as NOTICE (0: never).",
                            nullptr, &viewmig_progress_interval_ms, 5000, 0, INT_MAX, PGC_USERSET, GUC_UNIT_MS, nullptr,
                            nullptr, nullptr);
    DefineCustomStringVariable("viewmig.database", "Databases whose queued viewmig jobs a launcher runs (comma-separated).",
                               "Needs viewmig in shared_preload_libraries; read at server start only.", &viewmig_database,
                               // Not PGC_POSTMASTER: that would make loading the library on first use (no preload) FATAL.
                               "postgres", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.naptime", "How long the viewmig launcher sleeps when nothing wakes it.", nullptr,
                            &viewmig_naptime_s, 10, 1, 3600, PGC_SIGHUP, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.max_workers", "How many viewmig jobs one launcher runs at a time.", nullptr,
                            &viewmig_max_workers, 2, 1, 64, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.handler_batch_size",
                            "About how many events a batch projector's handler receives per call (whole aggregates).", nullptr,
                            &viewmig_handler_batch_size, 1000, 1, 1000000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.replay_memory",
                            "Memory the declarative engine may use for rows before it writes them out early.",
                            "Above it the engine writes finished rows at the next aggregate boundary and then drops its cached "
                            "shared rows (read again when needed).",
                            &viewmig_replay_memory_kb, 1024 * 1024, 64, INT_MAX, PGC_USERSET, GUC_UNIT_KB, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("viewmig.retry_delay", "Back-off before the second attempt of a failed job or schema migration.",
                            "Each further attempt waits twice as long, at most 10 minutes.", &viewmig_retry_delay_s, 10, 0, 600,
                            PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("viewmig.throttle_function",
                               "A function returning boolean: while it returns true, no background schema migration starts.",
                               nullptr, &viewmig_throttle_function, "", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("viewmig.error_handler",
                               "A function called with the viewmig.background_schema_migrations row after a failed attempt.",
                               nullptr, &viewmig_error_handler, "", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("viewmig");
    if (process_shared_preload_libraries_in_progress) viewmig::bgw::register_launchers(viewmig_database);
}
}

namespace viewmig::pg {
namespace {
// Settings a worker takes over from its caller: viewmig's own (viewmig.database is the server's,
// not a session's), and those that change how values convert to and from text, so a handler's or
// a rule's casts (timestamptz::timestamp, ::date, ::text) give what they give in the caller's session.
constexpr const char* kSessionSettings[] = {
    "viewmig.handler_batch_size", "viewmig.replay_memory", "viewmig.batch_size", "viewmig.lock_timeout",
    "viewmig.lock_max_wait", "viewmig.progress_interval", "viewmig.retry_delay", "viewmig.throttle_function",
    "viewmig.error_handler", "TimeZone", "DateStyle", "IntervalStyle", "extra_float_digits"};
}  // namespace

std::string capture_settings() {
    std::string out;
    for (const char* name : kSessionSettings) {
        const char* value = GetConfigOption(name, true, false);
        out += std::string(name) + "\t" + (value ? value : "") + "\n";
    }
    return out;
}

void apply_settings(const char* captured) {
    const std::string all(captured);
    std::size_t at = 0;
    while (at < all.size()) {
        const std::size_t tab = all.find('\t', at), end = all.find('\n', at);
        if (tab == std::string::npos || end == std::string::npos || tab > end) break;
        const std::string name = all.substr(at, tab - at), value = all.substr(tab + 1, end - tab - 1);
        (void)set_config_option(name.c_str(), value.c_str(), PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SET, true, 0, false);
        at = end + 1;
    }
}

}  // namespace viewmig::pg
