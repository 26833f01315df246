// Ownership records for replay and archive schemas (see owned_schemas.hpp).
#include "pg/owned_schemas.hpp"

#include "pg/guard.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "utils/errcodes.h"
}

namespace viewmig::pg {

namespace {
std::optional<std::string> schema_oid(const std::string& name) {
    return spi_value("SELECT oid::text FROM pg_namespace WHERE nspname = $1", {text_param(name)});
}
}  // namespace

bool schema_is_ours(const std::string& name) {
    auto oid = schema_oid(name);
    return oid && to_bool(spi_value("SELECT EXISTS (SELECT 1 FROM viewmig.owned_schemas WHERE schema_oid = $1::oid)",
                                    {text_param(oid)}));
}

void require_ours_or_absent(const std::string& name, const char* purpose) {
    if (schema_oid(name) && !schema_is_ours(name))
        throw UserError(ERRCODE_DUPLICATE_SCHEMA, "schema " + quote_ident(name) + " already exists and was not created by viewmig")
            .detail(std::string("viewmig drops and re-creates its ") + purpose + " schema; it never drops a schema it did not create.")
            .hint(std::string("Choose another ") + purpose + "_schema, or drop the schema yourself if it is not needed.");
}

void create_our_schema(const std::string& name, const char* purpose) {
    spi_exec("CREATE SCHEMA " + quote_ident(name));
    spi_run_as_owner("INSERT INTO viewmig.owned_schemas (schema_oid, schema_name, purpose) "
                     "SELECT oid, nspname, $2 FROM pg_namespace WHERE nspname = $1",
                     {text_param(name), text_param(std::string(purpose))});
}

void drop_our_schema(const std::string& name) {
    if (schema_is_ours(name)) {
        // The cascade lists every object it drops; that is expected here, not news for the DBA.
        spi_run_with_setting("client_min_messages", "warning", "DROP SCHEMA " + quote_ident(name) + " CASCADE");
    }
    spi_run_as_owner("DELETE FROM viewmig.owned_schemas WHERE schema_name = $1 "
                     "OR schema_oid NOT IN (SELECT oid FROM pg_namespace)",
                     {text_param(name)});
}

}  // namespace viewmig::pg
