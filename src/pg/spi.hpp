// Small, exception-safe SPI helpers for viewmig's catalog and DDL work (not for the hot replay
// loop, see replay_scan.hpp). Results come back as text, the way psql would print them, which is
// all the catalog code needs. Every call goes through pg_call, so an ERROR becomes a PgError.
#pragma once

#include "pg/guard.hpp"
#include "pg/pg_headers.hpp"

extern "C" {
#include "utils/resowner.h"
}

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace viewmig::pg {

// A query parameter: type OID and value as text (parsed by the type's input function), or NULL.
struct SqlParam {
    Oid type;
    std::optional<std::string> text;
};
SqlParam text_param(std::optional<std::string> v);
SqlParam int8_param(int64_t v);
SqlParam int4_param(int32_t v);
SqlParam oid_param(Oid v);
SqlParam bool_param(bool v);
SqlParam text_array_param(const std::optional<std::vector<std::string>>& v);
SqlParam nullable_text_array_param(const std::vector<std::optional<std::string>>& values);  // NULL elements allowed
SqlParam jsonb_param(std::string json);

// Fills types/values/nulls (arrays of params.size()) from the parameters. Call inside pg_call.
void bind_params_unguarded(const SqlParam* params, int n, Oid* types, Datum* values, char* nulls);

// One value of a query result: NULL or text. Dereferencing a NULL (`*row[i]`, `row[i]->...`) throws a
// clear ERROR instead of reading an empty std::optional (undefined behaviour: a crash of the backend
// or of a worker, which restarts the server). Code that expects NULLs tests `if (row[i])` first.
class SqlText : public std::optional<std::string> {
public:
    using std::optional<std::string>::optional;
    using std::optional<std::string>::operator=;
    SqlText() = default;
    SqlText(const std::optional<std::string>& v) : std::optional<std::string>(v) {}
    SqlText(std::optional<std::string>&& v) : std::optional<std::string>(std::move(v)) {}

    const std::string& operator*() const& { return checked(); }
    std::string& operator*() & { return const_cast<std::string&>(checked()); }
    std::string&& operator*() && { return std::move(const_cast<std::string&>(checked())); }
    const std::string* operator->() const { return &checked(); }
    std::string* operator->() { return const_cast<std::string*>(&checked()); }

private:
    const std::string& checked() const {
        if (!has_value())
            throw UserError(ERRCODE_NULL_VALUE_NOT_ALLOWED, "viewmig: unexpected NULL in a query result")
                .hint("A catalog row or an event row holds a NULL where viewmig needs a value; the statement's context "
                      "names the step.");
        return std::optional<std::string>::operator*();
    }
};
inline bool operator==(const SqlText& a, const SqlText& b) {
    return static_cast<const std::optional<std::string>&>(a) == static_cast<const std::optional<std::string>&>(b);
}
inline bool operator!=(const SqlText& a, const SqlText& b) { return !(a == b); }
using Row = std::vector<SqlText>;

struct QueryResult {
    std::vector<Row> rows;
    uint64_t processed = 0;
};

// Runs one statement; SELECT results are returned as text.
QueryResult spi_run(const std::string& sql, const std::vector<SqlParam>& params = {});
uint64_t spi_exec(const std::string& sql, const std::vector<SqlParam>& params = {});
// First column of the first row, nullopt for no row or NULL.
std::optional<std::string> spi_value(const std::string& sql, const std::vector<SqlParam>& params = {});

// The same, running with the extension owner's rights: viewmig's catalog tables are writable only
// by that role, so a user can change viewmig's state only through viewmig's functions.
QueryResult spi_run_as_owner(const std::string& sql, const std::vector<SqlParam>& params = {});
// The same with the plan prepared on the statement's first run in this backend and kept: for the
// statements a replay worker runs once per batch. The parameters' types must not change.
QueryResult spi_run_saved_as_owner(const std::string& sql, const std::vector<SqlParam>& params);

// Runs user DDL (definitions copied from the view tables, stored table definitions) with
// search_path = `path` (quoted schema names), then pg_temp; pg_catalog stays first. Every other
// statement runs with search_path = pg_catalog, pg_temp.
QueryResult spi_run_in_search_path(const std::string& path, const std::string& sql, const std::vector<SqlParam>& params = {});

// Runs `sql` with the setting `name` = `value` for this statement only (restored afterwards; a
// transaction abort undoes it too).
QueryResult spi_run_with_setting(const std::string& name, const std::string& value, const std::string& sql,
                                 const std::vector<SqlParam>& params = {});

void spi_connect();
void spi_finish();

// A subtransaction opened by in_subtransaction(); what must be restored when it ends.
struct Subtransaction {
    MemoryContext context;
    ResourceOwner owner;
};
Subtransaction begin_subtransaction();
void commit_subtransaction(const Subtransaction& sub);
void rollback_subtransaction(const Subtransaction& sub);

// Runs `f` in a subtransaction, so that an ERROR in it (caught as PgError by the caller) leaves
// the transaction usable: on any exception the subtransaction is rolled back, then the
// exception goes on.
template <typename F>
auto in_subtransaction(F&& f) -> decltype(f()) {
    const Subtransaction sub = begin_subtransaction();
    try {
        if constexpr (std::is_void_v<decltype(f())>) {
            f();
            commit_subtransaction(sub);
        } else {
            auto result = f();
            commit_subtransaction(sub);
            return result;
        }
    } catch (...) {
        rollback_subtransaction(sub);
        throw;
    }
}

// Runs `f` in a subtransaction that is always rolled back: for probes that must leave nothing.
template <typename F>
void in_rolled_back_subtransaction(F&& f) {
    const Subtransaction sub = begin_subtransaction();
    try {
        f();
    } catch (...) {
        rollback_subtransaction(sub);
        throw;
    }
    rollback_subtransaction(sub);
}

// Identifiers and literals for SQL text.
std::string quote_ident(std::string_view name);
std::string quote_qualified(std::string_view schema, std::string_view name);
std::string quote_literal(std::string_view value);
// '{a,b}' text array literal from values (quoted element-wise).
std::string text_array_literal(const std::vector<std::string>& values);
std::vector<std::string> parse_text_array(const std::optional<std::string>& literal);

// Argument `i` of the current SQL function as a parameter of the same type (text form), so it can
// be handed back to SQL without decoding arrays in C++.
SqlParam arg_param(FunctionCallInfo fcinfo, int i);

int64_t to_int8(const std::optional<std::string>& v, int64_t if_null = 0);
bool to_bool(const std::optional<std::string>& v);

}  // namespace viewmig::pg
