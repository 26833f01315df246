// Events whose transaction id this cluster has not handed out yet. Rows restored from another
// cluster (pg_dump/pg_restore, COPY, INSERT ... SELECT of an old event store) keep that cluster's
// xact_id values; where these are above this cluster's counter, every snapshot bound of a replay
// lies below them: replay_initial and the increments would skip them without a word, and
// complete() would replay them all under its exclusive lock. A row visible to the current snapshot
// whose xact_id is at or above that snapshot's xmax (other than the current transaction's own id)
// can not have been written with this cluster's pg_current_xact_id(): such rows are refused with an
// ERROR and an UPDATE that gives them a transaction id of this cluster.
#pragma once

#include "pg/catalog.hpp"

namespace viewmig::pg {

// ERROR naming how many such rows there are and the highest xact_id, with the remedy in the HINT.
// Reads the xact_id index (a range above the current xmax: empty in the normal case).
void refuse_foreign_xact_ids(const EventStore& es);

// The UPDATE that gives rows of `es` matching `condition` (SQL on the xact_id column, e.g. "IS NULL")
// the id of the updating transaction, so that the next replay step takes them.
std::string assign_current_xact_id_sql(const EventStore& es, const std::string& condition);

}  // namespace viewmig::pg
