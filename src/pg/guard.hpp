// The boundary between C++ and PostgreSQL error handling, in both directions.
//  * PostgreSQL → C++: `pg_call(f)` runs PostgreSQL code under PG_TRY; an ereport(ERROR) is
//    turned into a C++ `PgError` so C++ frames unwind with their destructors.
//  * C++ → PostgreSQL: `sql_entry(f)` wraps every SQL-callable function; it catches any C++
//    exception, leaves the catch block, and only then ereports (re-throwing a PgError as it was).
// Rule: a lambda given to pg_call holds no C++ object with a destructor.
#pragma once

#include "pg/pg_headers.hpp"

#include <exception>
#include <type_traits>
#include <string>
#include <utility>

extern "C" {
#include "utils/elog.h"
}

namespace viewmig::pg {

// A PostgreSQL ERROR caught by pg_call; owns a copy of the ErrorData.
class PgError : public std::exception {
public:
    explicit PgError(ErrorData* edata) : edata_(edata) {}
    const char* what() const noexcept override { return edata_->message ? edata_->message : "error"; }
    ErrorData* edata() const { return edata_; }

private:
    ErrorData* edata_;
};

// An error viewmig raises itself: SQLSTATE, message, and optional detail/hint.
class UserError : public std::exception {
public:
    UserError(int sqlstate, std::string message) : sqlstate_(sqlstate), message_(std::move(message)) {}
    UserError&& detail(std::string d) && { detail_ = std::move(d); return std::move(*this); }
    UserError&& hint(std::string h) && { hint_ = std::move(h); return std::move(*this); }
    const char* what() const noexcept override { return message_.c_str(); }
    int sqlstate() const { return sqlstate_; }
    const std::string& message() const { return message_; }
    const std::string& detail_text() const { return detail_; }
    const std::string& hint_text() const { return hint_; }

private:
    int sqlstate_;
    std::string message_, detail_, hint_;
};

// Called from a PG_CATCH block: copies the current error and clears PostgreSQL's error state.
[[noreturn]] void throw_current_pg_error(MemoryContext keep_in);

template <typename F>
auto pg_call(F&& f) -> decltype(f()) {
    MemoryContext caller_cxt = CurrentMemoryContext;
    bool failed = false;
    if constexpr (std::is_void_v<decltype(f())>) {
        PG_TRY();
        { f(); }
        PG_CATCH();
        { failed = true; }
        PG_END_TRY();
        if (failed) throw_current_pg_error(caller_cxt);
    } else {
        decltype(f()) result{};
        PG_TRY();
        { result = f(); }
        PG_CATCH();
        { failed = true; }
        PG_END_TRY();
        if (failed) throw_current_pg_error(caller_cxt);
        return result;
    }
}

// Raises, as a PostgreSQL ERROR, the exception held in `error`. Never returns.
[[noreturn]] void raise_as_pg_error(std::exception_ptr& error);

template <typename F>
auto sql_entry(F&& f) -> decltype(f()) {
    std::exception_ptr error;
    try {
        return f();
    } catch (...) {
        error = std::current_exception();
    }
    raise_as_pg_error(error);
}

// Throws a UserError naming the function when any of its first `count` (default: all) arguments is NULL.
void require_non_null_args(FunctionCallInfo fcinfo, const char* function, int count = -1);

}  // namespace viewmig::pg
