// Schemas viewmig created and may therefore drop. A schema counts as viewmig's only while its OID
// matches the one recorded at creation: a same-named schema made by someone else is never dropped.
#pragma once

#include <string>

namespace viewmig::pg {

// ERROR (with what to do) when `name` exists but viewmig did not create it.
void require_ours_or_absent(const std::string& name, const char* purpose);
// True when the schema exists and viewmig created it.
bool schema_is_ours(const std::string& name);
void create_our_schema(const std::string& name, const char* purpose);
// Drops the schema with everything in it if viewmig created it; forgets it either way. Refuses
// (refuse_foreign_dependents) when the cascade would drop something viewmig did not create. `step` names the call to run again in the HINT.
void drop_our_schema(const std::string& name, const char* step = "the viewmig step");
// ERROR listing every object outside schema `name` that depends on an object in it, and every
// object in it that viewmig did not put there (anything but the managed tables of the replays
// that used the schema, their sequences, and what belongs to those tables), if any.
void refuse_foreign_dependents(const std::string& name, const char* step);

}  // namespace viewmig::pg
