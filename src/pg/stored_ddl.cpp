// Running stored table DDL as its definer (see stored_ddl.hpp).
#include "pg/stored_ddl.hpp"

#include "pg/guard.hpp"
#include "pg/projector_rights.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/syscache.h"
}

namespace viewmig::pg {

bool caller_acts_for(Oid role) {
    return pg_call([&] { return has_privs_of_role(GetUserId(), role); });
}

void run_stored_ddl(Oid defined_by, const std::string& table, const std::string& view_schema, const std::string& ddl) {
    if (!pg_call([&] { return SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(defined_by)); }))
        throw UserError(ERRCODE_UNDEFINED_OBJECT, "the role that defined table " + quote_qualified(view_schema, table) +
                                                      " no longer exists")
            .hint("Define the table again with viewmig.define_table_sql() as an existing role.");
    if (!caller_acts_for(defined_by))
        throw UserError(ERRCODE_INSUFFICIENT_PRIVILEGE, "the DDL of table " + quote_qualified(view_schema, table) +
                                                            " was defined by role " +
                                                            std::string(pg_call([&] { return GetUserNameFromId(defined_by, false); })))
            .detail("Stored DDL runs with the rights of the role that stored it, and only when that role (or a member) asks.")
            .hint("Run this as that role, or as a member of it.");
    ActingAs definer(role_to_switch_to(defined_by));
    spi_run_in_search_path(quote_ident(view_schema), ddl);
}

}  // namespace viewmig::pg
