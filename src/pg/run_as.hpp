// Acting as another role for the rest of a background worker's life, as a SECURITY DEFINER
// function does for its body: privilege checks see only that role, and SET ROLE / SET SESSION
// AUTHORIZATION are refused (SECURITY_LOCAL_USERID_CHANGE), so a job's SQL can not climb back
// to the superuser the worker connected as. Used by job workers and replay workers.
#pragma once

#include "pg/pg_headers.hpp"

#include <string>

namespace viewmig::pg {

// Call outside a transaction. Throws UserError when the role no longer exists; `what` ("job 7")
// completes the message.
void become_role(Oid role, const std::string& what);

}  // namespace viewmig::pg
