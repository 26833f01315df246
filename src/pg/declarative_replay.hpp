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
    // Deferred: on a fresh replay the shared rows stay in memory until replay_initial ends
    // (finish(), in the transaction that marks the replay replayed), so they are written once.
    // Eager: shared rows are written with every batch and read back when needed — after a crash,
    // or once the rows outgrow viewmig.replay_memory. A projector turns eager for good, recorded
    // in viewmig.replays.eager_projectors with its first eager write. Projectors with shared tables
    // run in one worker (initial_replay.cpp); the others' rows never overlap between workers.
    enum class Mode { Deferred, Eager };
    // `plan`: the projector's rules compiled (compile_declarative_plan).
    DeclarativeReplay(const EventStore& es, const ProjectorVersion& projector, core::Plan plan, const Replay& replay, Mode mode);
    ~DeclarativeReplay();

    // Replays the range (stop_after as in replay_range) and writes its rows.
    ReplayedRange replay(const EventRange& range);
    // The transaction that held the last batch rolled back: cached rows may be stale. A deferred
    // engine also lost the shared rows of the batches before it (never written): the next batch
    // restores them from the committed groups and goes on eagerly.
    void forget();
    // Deferred mode: writes the shared rows. Call once every group is done.
    void finish();
    // For a replay that resumes in eager mode: re-applies the shared tables' rules of the events
    // already replayed (the committed groups, in order), then writes the shared rows and records
    // the projector as eager. Deferred engines never wrote them, so the tables hold none yet.
    void restore_shared_and_go_eager(const std::vector<EventRange>& replayed);

    const std::string& projector() const { return projector_; }

private:
    struct Batch;
    Batch scan(const EventRange& range);
    void apply(Batch& batch, core::Engine::Tables which);
    void load_missing(const std::vector<core::EventInput>& events);
    void write(const core::Changes& changes);
    void go_eager();

    EventStore es_;
    std::string projector_, replay_schema_;
    Replay replay_;
    core::Plan plan_;
    std::unique_ptr<core::Engine> engine_;
    std::vector<Oid> relids_;  // by plan table
    std::vector<std::string> event_types_;
    std::string select_list_;
    bool deferred_;
    bool restore_needed_ = false;
    Oid run_as_ = InvalidOid;  // the projector's owner, when it is not the current user
};

// The ranges of events a resumed replay_initial already replayed (committed groups, whole or up
// to their resume point), in group order.
std::vector<EventRange> replayed_ranges(const Replay& replay);

// Whether this replay's declarative projectors use the engine (not for view-schema migrations,
// whose targets are views).
bool use_declarative_engine(const Replay& replay, const ProjectorVersion& p);

}  // namespace viewmig::pg
