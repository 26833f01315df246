// The live projection trigger (see live_projection.hpp). Written as plain C inside one pg_call:
// it runs once per inserted event and holds no C++ objects.
#include "pg/live_projection.hpp"

#include "pg/guard.hpp"
#include "pg/projector_rights.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tupconvert.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/syscache.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace viewmig::pg {

void ensure_live_trigger(const EventStore& es) {
    if (spi_value("SELECT 1 FROM pg_trigger WHERE tgrelid = $1 AND tgname = 'viewmig_live_projection'", {oid_param(es.events)}))
        return;
    spi_exec("CREATE TRIGGER viewmig_live_projection AFTER INSERT ON " + es.qualified() +
             " FOR EACH ROW EXECUTE FUNCTION viewmig.live_projection()");
}

namespace {

const char* kLiveProjectors =
    "SELECT v.handler::oid, v.event_types, v.view_schema::text, "
    "       s.events::oid, s.event_type_column::text, v.mode = 'batch', v.owner::oid, v.search_path, "
    "       v.rules IS NOT NULL, v.projector, v.managed_tables "
    "FROM viewmig.projector_versions v CROSS JOIN viewmig.event_store s "
    "WHERE v.status = 'active' AND v.live ORDER BY v.projector";

// The managed tables (by name: whatever table has the name now) must be the projector owner's.
void check_live_tables(const char* schema, ArrayType* tables, Oid owner, const char* projector) {
    Datum* names;
    bool* nulls;
    int n;
    deconstruct_array(tables, NAMEOID, NAMEDATALEN, false, TYPALIGN_CHAR, &names, &nulls, &n);
    for (int i = 0; i < n; ++i)
        if (!nulls[i]) check_managed_table_unguarded(schema, NameStr(*DatumGetName(names[i])), owner, projector);
}

bool type_matches(Datum types_datum, bool types_null, const char* event_type) {
    if (types_null) return true;
    if (!event_type) return false;
    ArrayType* types = DatumGetArrayTypeP(types_datum);
    Datum* elems;
    bool* nulls;
    int n;
    deconstruct_array(types, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
    for (int i = 0; i < n; ++i)
        if (!nulls[i] && strcmp(TextDatumGetCString(elems[i]), event_type) == 0) return true;
    return false;
}

void project_live_unguarded(TriggerData* trigger) {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "viewmig: SPI_connect failed");
    // The inserting session's search_path (or its database's default) must not choose the
    // functions and operators of viewmig's own query.
    const int query_level = NewGUCNestLevel();
    set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
    if (SPI_execute(kLiveProjectors, true, 0) != SPI_OK_SELECT) elog(ERROR, "viewmig: reading live projectors failed");
    AtEOXact_GUC(true, query_level);
    SPITupleTable* projectors = SPI_tuptable;
    const uint64 count = SPI_processed;
    if (count == 0) {
        SPI_finish();
        return;
    }
    bool isnull;
    const Oid events = DatumGetObjectId(SPI_getbinval(projectors->vals[0], projectors->tupdesc, 4, &isnull));
    const char* type_column = SPI_getvalue(projectors->vals[0], projectors->tupdesc, 5);

    // Convert a partition's row to the event table's row type, which handlers take.
    Relation parent = table_open(events, AccessShareLock);
    TupleDesc parent_desc = RelationGetDescr(parent);
    HeapTuple tuple = trigger->tg_trigtuple;
    // Only events of the event store (or one of its partitions) are projected: anyone may create
    // a trigger with this function on a table of their own, whose rows must never reach the
    // projectors' handlers, which run with their owners' rights.
    const Oid fired_on = RelationGetRelid(trigger->tg_relation);
    if (fired_on != events && !(trigger->tg_relation->rd_rel->relispartition &&
                                list_member_oid(get_partition_ancestors(fired_on), events)))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("viewmig.live_projection() fired on %s, which is not the event store",
                               RelationGetRelationName(trigger->tg_relation)),
                        errhint("Only the event store's viewmig_live_projection trigger may call it; drop this trigger.")));
    if (fired_on != events) {
        TupleConversionMap* map = convert_tuples_by_name(RelationGetDescr(trigger->tg_relation), parent_desc);
        if (map) tuple = execute_attr_map_tuple(tuple, map);
    }
    const Datum row = heap_copy_tuple_as_datum(tuple, parent_desc);
    const Oid rowtype = parent_desc->tdtypeid;
    const int type_attnum = SPI_fnumber(parent_desc, type_column);
    const char* event_type = type_attnum > 0 ? SPI_getvalue(tuple, parent_desc, type_attnum) : nullptr;
    table_close(parent, AccessShareLock);

    for (uint64 i = 0; i < count; ++i) {
        HeapTuple p = projectors->vals[i];
        bool types_null;
        const Datum types = SPI_getbinval(p, projectors->tupdesc, 2, &types_null);
        if (!type_matches(types, types_null, event_type)) continue;
        const Oid handler = DatumGetObjectId(SPI_getbinval(p, projectors->tupdesc, 1, &isnull));
        const char* schema = SPI_getvalue(p, projectors->tupdesc, 3);
        const Oid owner = DatumGetObjectId(SPI_getbinval(p, projectors->tupdesc, 7, &isnull));
        const char* recorded_path = SPI_getvalue(p, projectors->tupdesc, 8);
        const bool declarative = DatumGetBool(SPI_getbinval(p, projectors->tupdesc, 9, &isnull));
        const char* projector = SPI_getvalue(p, projectors->tupdesc, 10);
        check_handler_unguarded(handler, owner, declarative, projector);
        check_live_tables(schema, DatumGetArrayTypeP(SPI_getbinval(p, projectors->tupdesc, 11, &isnull)), owner, projector);
        // The projector's recorded search_path (the view schema added last when it lacks it) —
        // never the inserting role's, whose functions must not run with the owner's rights.
        const char* path = handler_search_path_unguarded(owner, schema, schema, recorded_path);
        check_trusted_search_path_unguarded(projector, owner, path);
        Oid saved_user;
        int saved_context;
        GetUserIdAndSecContext(&saved_user, &saved_context);
        const int guc_level = NewGUCNestLevel();
        if (owner != saved_user)
            SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
        set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
        const bool batch = DatumGetBool(SPI_getbinval(p, projectors->tupdesc, 6, &isnull));
        if (batch) {
            // A batch handler gets the one new event as a one-element array.
            int16 typlen;
            bool typbyval;
            char typalign;
            get_typlenbyvalalign(rowtype, &typlen, &typbyval, &typalign);
            Datum single = row;
            OidFunctionCall1(handler, PointerGetDatum(construct_array(&single, 1, rowtype, typlen, typbyval, typalign)));
        } else {
            OidFunctionCall1(handler, row);
        }
        AtEOXact_GUC(false, guc_level);
        SetUserIdAndSecContext(saved_user, saved_context);
    }
    SPI_finish();
}

}  // namespace
}  // namespace viewmig::pg

using namespace viewmig::pg;

extern "C" {
PG_FUNCTION_INFO_V1(viewmig_live_projection);
PGDLLEXPORT Datum viewmig_live_projection(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED), errmsg("viewmig.live_projection() must be called as a trigger")));
    auto* trigger = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!TRIGGER_FIRED_AFTER(trigger->tg_event) || !TRIGGER_FIRED_FOR_ROW(trigger->tg_event) ||
        !TRIGGER_FIRED_BY_INSERT(trigger->tg_event))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("viewmig.live_projection() must be an AFTER INSERT FOR EACH ROW trigger")));
    project_live_unguarded(trigger);
    return PointerGetDatum(nullptr);
}
}
