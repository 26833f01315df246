// Event rows viewmig can not replay. A NULL aggregate id, sequence number or event type has no
// place in the replay order and no projector to go to; a NULL transaction id falls in no snapshot
// window, so no step would ever read the row. The replay steps refuse such rows with an ERROR that
// names the first one (and how many there are) before they replay anything, instead of skipping
// them or failing somewhere inside a worker. Only nullable columns are checked: with the NOT NULL
// constraints set_event_store() asks for, the checks cost nothing.
#pragma once

#include "pg/catalog.hpp"

#include <cstdint>
#include <optional>

namespace viewmig::pg {

// ERROR when a row with xact_lower <= xact_id < xact_upper (unbounded where absent) has a NULL
// aggregate id, sequence number or event type, or when any row has a NULL transaction id.
void refuse_unreplayable_events(const EventStore& es, std::optional<int64_t> xact_lower, std::optional<int64_t> xact_upper);

// set_event_store(): a WARNING per nullable aggregate id / sequence number / event type /
// transaction id column, with the ALTER TABLE ... SET NOT NULL that closes it.
void warn_nullable_key_columns(const EventStore& es);

}  // namespace viewmig::pg
