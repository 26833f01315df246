// SPI helpers (see spi.hpp).
#include "pg/spi.hpp"

#include "pg/guard.hpp"

#include <unordered_map>

extern "C" {
#include "access/genam.h"
#include "access/table.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
}

namespace viewmig::pg {

SqlParam text_param(std::optional<std::string> v) { return {TEXTOID, std::move(v)}; }
SqlParam int8_param(int64_t v) { return {INT8OID, std::to_string(v)}; }
SqlParam int4_param(int32_t v) { return {INT4OID, std::to_string(v)}; }
SqlParam oid_param(Oid v) { return {OIDOID, std::to_string(v)}; }
SqlParam bool_param(bool v) { return {BOOLOID, std::string(v ? "t" : "f")}; }
SqlParam jsonb_param(std::string json) { return {JSONBOID, std::move(json)}; }
SqlParam text_array_param(const std::optional<std::vector<std::string>>& v) {
    if (!v) return {TEXTARRAYOID, std::nullopt};
    return {TEXTARRAYOID, text_array_literal(*v)};
}

void bind_params_unguarded(const SqlParam* params, int n, Oid* types, Datum* values, char* nulls) {
    for (int i = 0; i < n; ++i) {
        types[i] = params[i].type;
        nulls[i] = params[i].text ? ' ' : 'n';
        if (!params[i].text) continue;
        Oid input_fn, ioparam;
        getTypeInputInfo(types[i], &input_fn, &ioparam);
        values[i] = OidInputFunctionCall(input_fn, const_cast<char*>(params[i].text->c_str()), ioparam, -1);
    }
}

namespace {

// The search_path of every statement viewmig runs for itself. Whoever calls viewmig, and
// whatever a database or role owner set as the default search_path (ALTER DATABASE ... SET
// search_path), viewmig's own SQL — often run as the extension owner or as the superuser a worker
// connected as — must never resolve a function or an operator (`=` included) to one that someone
// put first in search_path: pg_catalog first, pg_temp last (never for functions and operators).
constexpr const char* kInternalPath = "pg_catalog, pg_temp";

// Sets search_path for the lifetime of the object, as a function's SET clause does (a GUC nest
// level: a transaction or subtransaction abort restores it on its own, the destructor on the C++
// path).
class PinnedSearchPath {
public:
    explicit PinnedSearchPath(const char* path) {
        pg_call([&] {
            level_ = NewGUCNestLevel();
            (void)set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
        });
    }
    ~PinnedSearchPath() { AtEOXact_GUC(true, level_); }
    PinnedSearchPath(const PinnedSearchPath&) = delete;
    PinnedSearchPath& operator=(const PinnedSearchPath&) = delete;

private:
    int level_ = 0;
};

// Copies a result out of SPI memory into C++ strings.
QueryResult copy_result(SPITupleTable* table, uint64 processed) {
    QueryResult result;
    result.processed = processed;
    if (!table) return result;
    const int ncols = table->tupdesc->natts;
    result.rows.reserve(processed);
    for (uint64 r = 0; r < processed; ++r) {
        Row row(ncols);
        for (int c = 0; c < ncols; ++c) {
            HeapTuple tuple = table->vals[r];
            TupleDesc desc = table->tupdesc;
            char* text = pg_call([&] { return SPI_getvalue(tuple, desc, c + 1); });
            if (text) row[c] = std::string(text);
        }
        result.rows.push_back(std::move(row));
    }
    pg_call([&] { SPI_freetuptable(table); });
    return result;
}

// Runs the statement: parsed and planned now, or (`saved`) with a plan prepared on its first run in
// this backend and kept (for statements a worker runs once per batch).
// Every statement viewmig runs itself resolves names with search_path pinned (see PinnedSearchPath);
// `path` is kInternalPath unless the statement is user DDL that must find the view or replay schema.
QueryResult run(const std::string& sql, const std::vector<SqlParam>& params, bool saved = false,
                const char* path = kInternalPath) {
    PinnedSearchPath pinned(path);
    const int n = static_cast<int>(params.size());
    std::vector<Oid> types(n);
    std::vector<Datum> values(n);
    std::string nulls(n, ' ');

    static std::unordered_map<std::string, SPIPlanPtr> saved_plans;
    SPIPlanPtr* plan = saved ? &saved_plans[sql] : nullptr;
    const char* src = sql.c_str();
    Oid* type_ptr = types.data();
    Datum* value_ptr = values.data();
    char* null_ptr = nulls.data();
    const SqlParam* param_ptr = params.data();
    SPITupleTable* table = nullptr;
    uint64 processed = pg_call([&]() -> uint64 {
        bind_params_unguarded(param_ptr, n, type_ptr, value_ptr, null_ptr);
        int rc;
        if (plan) {
            if (!*plan) {
                SPIPlanPtr prepared = SPI_prepare(src, n, type_ptr);
                if (!prepared) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
                if (SPI_keepplan(prepared) != 0) elog(ERROR, "SPI_keepplan failed");
                *plan = prepared;
            }
            rc = SPI_execute_plan(*plan, value_ptr, null_ptr, false, 0);
        } else {
            rc = SPI_execute_with_args(src, n, type_ptr, value_ptr, null_ptr, false, 0);
        }
        if (rc < 0) elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
        table = SPI_tuptable;
        return SPI_processed;
    });
    return copy_result(table, processed);
}

// From the catalog directly: spi_run_as_owner runs once per batch in replay workers.
Oid extension_owner() {
    return pg_call([]() -> Oid {
        const Oid ext = get_extension_oid("viewmig", false);
        Relation rel = table_open(ExtensionRelationId, AccessShareLock);
        ScanKeyData key;
        ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
        SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
        HeapTuple tuple = systable_getnext(scan);
        if (!HeapTupleIsValid(tuple)) elog(ERROR, "viewmig: extension owner not found");
        const Oid owner = reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->extowner;
        systable_endscan(scan);
        table_close(rel, AccessShareLock);
        return owner;
    });
}

// Switches the current user for the lifetime of the object (as a SECURITY DEFINER function
// does; run() pins search_path). A transaction abort restores it on its own, so the destructor
// only matters on the C++ path.
class AsUser {
public:
    explicit AsUser(Oid user) {
        GetUserIdAndSecContext(&saved_user_, &saved_context_);
        SetUserIdAndSecContext(user, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
    }
    ~AsUser() { SetUserIdAndSecContext(saved_user_, saved_context_); }
    AsUser(const AsUser&) = delete;
    AsUser& operator=(const AsUser&) = delete;

private:
    Oid saved_user_;
    int saved_context_;
};

}  // namespace

QueryResult spi_run(const std::string& sql, const std::vector<SqlParam>& params) { return run(sql, params); }

uint64_t spi_exec(const std::string& sql, const std::vector<SqlParam>& params) { return run(sql, params).processed; }

std::optional<std::string> spi_value(const std::string& sql, const std::vector<SqlParam>& params) {
    QueryResult r = run(sql, params);
    if (r.rows.empty() || r.rows[0].empty()) return std::nullopt;
    return r.rows[0][0];
}

QueryResult spi_run_as_owner(const std::string& sql, const std::vector<SqlParam>& params) {
    AsUser owner(extension_owner());
    return run(sql, params);
}

QueryResult spi_run_saved_as_owner(const std::string& sql, const std::vector<SqlParam>& params) {
    AsUser owner(extension_owner());
    return run(sql, params, true);
}

QueryResult spi_run_in_search_path(const std::string& path, const std::string& sql, const std::vector<SqlParam>& params) {
    // Functions and operators still come from pg_catalog first (it is not listed, so it is
    // searched first); pg_temp goes last, so no temporary table takes a view table's name.
    const std::string full = path + ", pg_temp";
    return run(sql, params, false, full.c_str());
}

QueryResult spi_run_with_setting(const std::string& name, const std::string& value, const std::string& sql,
                                 const std::vector<SqlParam>& params) {
    auto saved = spi_value("SELECT current_setting($1)", {text_param(name)});
    spi_run("SELECT set_config($1, $2, true)", {text_param(name), text_param(value)});
    QueryResult r = run(sql, params);
    spi_run("SELECT set_config($1, $2, true)", {text_param(name), text_param(saved)});
    return r;
}

void spi_connect() {
    pg_call([] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "viewmig: SPI_connect failed");
    });
}

void spi_finish() {
    pg_call([] { SPI_finish(); });
}

Subtransaction begin_subtransaction() {
    Subtransaction sub{CurrentMemoryContext, CurrentResourceOwner};
    pg_call([] { BeginInternalSubTransaction(nullptr); });
    MemoryContextSwitchTo(sub.context);
    return sub;
}

void commit_subtransaction(const Subtransaction& sub) {
    pg_call([] { ReleaseCurrentSubTransaction(); });
    MemoryContextSwitchTo(sub.context);
    CurrentResourceOwner = sub.owner;
}

void rollback_subtransaction(const Subtransaction& sub) {
    pg_call([] { RollbackAndReleaseCurrentSubTransaction(); });
    MemoryContextSwitchTo(sub.context);
    CurrentResourceOwner = sub.owner;
}

std::string quote_ident(std::string_view name) {
    std::string copy(name);
    const char* s = copy.c_str();
    return std::string(pg_call([&] { return quote_identifier(s); }));
}

std::string quote_qualified(std::string_view schema, std::string_view name) {
    return quote_ident(schema) + "." + quote_ident(name);
}

std::string quote_literal(std::string_view value) {
    std::string out = "'";
    bool backslash = false;
    for (char c : value) {
        if (c == '\'') out += '\'';
        if (c == '\\') backslash = true, out += '\\';
        out += c;
    }
    out += '\'';
    return backslash ? "E" + out : out;
}

namespace {
void append_array_element(std::string& out, const std::string& value) {
    out += '"';
    for (char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
}
}  // namespace

std::string text_array_literal(const std::vector<std::string>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) out += ',';
        append_array_element(out, values[i]);
    }
    return out + "}";
}

SqlParam nullable_text_array_param(const std::vector<std::optional<std::string>>& values) {
    std::string out = "{";
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (i) out += ',';
        if (values[i])
            append_array_element(out, *values[i]);
        else
            out += "NULL";
    }
    return {TEXTARRAYOID, out + "}"};
}

std::vector<std::string> parse_text_array(const std::optional<std::string>& literal) {
    std::vector<std::string> out;
    if (!literal || literal->size() < 2) return out;
    const std::string& s = *literal;
    std::size_t i = 1;  // past '{'
    while (i < s.size() && s[i] != '}') {
        std::string item;
        if (s[i] == '"') {
            for (++i; i < s.size() && s[i] != '"'; ++i) {
                if (s[i] == '\\') ++i;
                item += s[i];
            }
            ++i;  // closing quote
        } else {
            while (i < s.size() && s[i] != ',' && s[i] != '}') item += s[i++];
        }
        out.push_back(std::move(item));
        if (i < s.size() && s[i] == ',') ++i;
    }
    return out;
}

namespace {

// regclass, regprocedure, regrole ...: their text form depends on search_path, so they are handed
// on as OIDs, which their input functions accept and which mean the same under any search_path
// (viewmig's own queries run with search_path pinned, see AsUser).
bool is_oid_alias(Oid t) {
    return t == REGCLASSOID || t == REGPROCEDUREOID || t == REGPROCOID || t == REGTYPEOID || t == REGROLEOID ||
           t == REGNAMESPACEOID || t == REGOPEROID || t == REGOPERATOROID || t == REGCONFIGOID || t == REGDICTIONARYOID ||
           t == REGCOLLATIONOID;
}

std::string oid_alias_text(Oid type, Datum value) {
    if (is_oid_alias(type)) return std::to_string(DatumGetObjectId(value));
    Datum* elems;
    bool* nulls;
    int n;
    pg_call([&] {
        deconstruct_array(DatumGetArrayTypeP(value), get_element_type(type), sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &n);
    });
    std::string out = "{";
    for (int k = 0; k < n; ++k) out += (k ? "," : "") + (nulls[k] ? std::string("NULL") : std::to_string(DatumGetObjectId(elems[k])));
    return out + "}";
}

}  // namespace

SqlParam arg_param(FunctionCallInfo fcinfo, int i) {
    const Oid type = pg_call([&] { return get_fn_expr_argtype(fcinfo->flinfo, i); });
    if (PG_ARGISNULL(i)) return {type, std::nullopt};
    const Datum value = PG_GETARG_DATUM(i);
    const Oid element = pg_call([&] { return get_element_type(type); });
    if (is_oid_alias(type) || (OidIsValid(element) && is_oid_alias(element))) return {type, oid_alias_text(type, value)};
    const char* text = pg_call([&] {
        Oid output_fn;
        bool varlena;
        getTypeOutputInfo(type, &output_fn, &varlena);
        return OidOutputFunctionCall(output_fn, value);
    });
    return {type, std::string(text)};
}

int64_t to_int8(const std::optional<std::string>& v, int64_t if_null) { return v ? std::stoll(*v) : if_null; }

bool to_bool(const std::optional<std::string>& v) { return v && (*v == "t" || *v == "true"); }

}  // namespace viewmig::pg
