// Error conversion at the C++/PostgreSQL boundary (see guard.hpp).
#include "pg/guard.hpp"

namespace viewmig::pg {

void throw_current_pg_error(MemoryContext keep_in) {
    // Inside PG_CATCH the current context is ErrorContext; the copy must outlive FlushErrorState.
    MemoryContextSwitchTo(keep_in);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    throw PgError(edata);
}

void raise_as_pg_error(std::exception_ptr& error) {
    // Copy what we need into palloc'd memory while the exception object is alive, then let the
    // catch blocks end (running C++ destructors) before any longjmp.
    ErrorData* pg_edata = nullptr;
    int sqlstate = ERRCODE_INTERNAL_ERROR;
    char* message = nullptr;
    char* detail = nullptr;
    char* hint = nullptr;
    try {
        std::rethrow_exception(error);
    } catch (const PgError& e) {
        pg_edata = e.edata();
    } catch (const UserError& e) {
        sqlstate = e.sqlstate();
        message = pstrdup(e.message().c_str());
        if (!e.detail_text().empty()) detail = pstrdup(e.detail_text().c_str());
        if (!e.hint_text().empty()) hint = pstrdup(e.hint_text().c_str());
    } catch (const std::bad_alloc&) {
        sqlstate = ERRCODE_OUT_OF_MEMORY;
        message = pstrdup("viewmig: out of memory in C++ code");
    } catch (const std::exception& e) {
        message = psprintf("viewmig internal error: %s", e.what());
    } catch (...) {
        message = pstrdup("viewmig internal error: unknown C++ exception");
    }
    error = nullptr;  // frees the exception object: nothing C++ stays alive across the longjmp
    if (pg_edata) ReThrowError(pg_edata);
    ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", message),
                    detail ? errdetail_internal("%s", detail) : 0, hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

void require_non_null_args(FunctionCallInfo fcinfo, const char* function, int count) {
    const int n = count < 0 ? PG_NARGS() : count;
    for (int i = 0; i < n; ++i)
        if (PG_ARGISNULL(i))
            throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED,
                            std::string("argument ") + std::to_string(i + 1) + " of " + function + " must not be NULL");
}

}  // namespace viewmig::pg
