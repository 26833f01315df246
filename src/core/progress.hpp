// Progress arithmetic for long replay steps: events per second, ETA, and when the next NOTICE
// is due. Time is passed in (seconds since the step started) so the rules are unit-testable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace viewmig::core {

struct ProgressSnapshot {
    uint64_t events_done = 0;
    uint64_t events_before = 0;  // of events_done, those done before this call started (a resume)
    uint64_t events_total = 0;   // an estimate; may be exceeded
    uint64_t groups_done = 0;
    uint64_t groups_total = 0;
    double elapsed_s = 0;
};

// The rate of this call: events done since it started, per second.
double events_per_second(const ProgressSnapshot& p);
// Seconds left at the current rate, nullopt when unknown (nothing done yet).
std::optional<double> eta_seconds(const ProgressSnapshot& p);
// One line for a NOTICE: "groups 12/400, events 120000/4000000 (3.0%), 52000 events/s, ETA 74 s".
std::string describe(const ProgressSnapshot& p);

// Tells when the next progress report is due, every `interval_s` seconds.
class ReportClock {
public:
    explicit ReportClock(double interval_s) : interval_s_(interval_s), next_(interval_s) {}
    bool due(double elapsed_s);

private:
    double interval_s_;
    double next_;
};

}  // namespace viewmig::core
