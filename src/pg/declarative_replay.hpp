// The initial replay of a declarative projector through the compiled engine
// (core/declarative_engine.hpp): each batch's events are read with their rule values already
// extracted by the scan, applied in memory, and written once — new rows by COPY (the tables'
// keys are added after the load, see bulk_constraints.hpp), changed shared rows by one UPDATE or
// DELETE per table. Everything happens in the caller's transaction, so a batch's rows commit with
// its group checkpoint like the handler path's.
#pragma once

#include "core/declarative_engine.hpp"
#include "pg/catalog.hpp"
#include "pg/replay_scan.hpp"

#include <memory>
#include <string>
#include <vector>

namespace viewmig::pg {

class DeclarativeReplay {
public:
    // `shared_complete`: the replay tables are still empty (nothing committed yet), so the engine
    // may trust its cache of shared rows. `several_workers`: other workers write the same shared
    // rows, so they are read FOR UPDATE at the start of each batch and not cached across batches.
    DeclarativeReplay(const EventStore& es, const ProjectorVersion& projector, std::string replay_schema,
                      bool shared_complete, bool several_workers);
    ~DeclarativeReplay();

    // Replays the range (stop_after as in replay_range) and writes its rows.
    ReplayedRange replay(const EventRange& range);
    // The transaction that held the last batch rolled back: cached rows may be stale.
    void forget();

    const std::string& projector() const { return projector_; }

private:
    struct Buffered;
    void load_missing(const std::vector<core::EventInput>& events);
    void write(const core::Changes& changes);
    void flush();

    EventStore es_;
    std::string projector_, replay_schema_;
    core::Plan plan_;
    std::unique_ptr<core::Engine> engine_;
    std::vector<Oid> relids_;  // by plan table
    std::vector<std::string> event_types_;
    std::string select_list_;
    bool several_workers_;
};

// Whether this replay's declarative projectors use the engine (not for view-schema migrations,
// whose targets are views).
bool use_declarative_engine(const Replay& replay, const ProjectorVersion& p);

}  // namespace viewmig::pg
