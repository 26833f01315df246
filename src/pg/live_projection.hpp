// Live projection: a row trigger on the event table calls the active versions of the projectors
// registered with live => true, in the inserting transaction, each as its projector's owner with
// its recorded search_path (projector_rights.hpp) — so the view tables stay current between replays.
#pragma once

#include "pg/catalog.hpp"

namespace viewmig::pg {

// Creates the trigger on the event table unless it exists (needs the TRIGGER privilege).
void ensure_live_trigger(const EventStore& es);

}  // namespace viewmig::pg
