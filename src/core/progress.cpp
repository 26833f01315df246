// Progress arithmetic (see progress.hpp).
#include "core/progress.hpp"

#include <algorithm>
#include <cstdio>

namespace viewmig::core {

double events_per_second(const ProgressSnapshot& p) {
    const uint64_t done_now = p.events_done > p.events_before ? p.events_done - p.events_before : 0;
    return p.elapsed_s > 0 ? static_cast<double>(done_now) / p.elapsed_s : 0.0;
}

std::optional<double> eta_seconds(const ProgressSnapshot& p) {
    const double rate = events_per_second(p);
    if (rate <= 0) return std::nullopt;
    const double left = p.events_total > p.events_done ? static_cast<double>(p.events_total - p.events_done) : 0.0;
    return left / rate;
}

std::string describe(const ProgressSnapshot& p) {
    char buf[256];
    const double pct = p.events_total ? std::min(100.0, 100.0 * static_cast<double>(p.events_done) /
                                                            static_cast<double>(p.events_total))
                                      : 0.0;
    auto eta = eta_seconds(p);
    std::snprintf(buf, sizeof buf, "groups %llu/%llu, events %llu/~%llu (%.1f%%), %.0f events/s, ETA %s",
                  static_cast<unsigned long long>(p.groups_done), static_cast<unsigned long long>(p.groups_total),
                  static_cast<unsigned long long>(p.events_done), static_cast<unsigned long long>(p.events_total),
                  pct, events_per_second(p), eta ? (std::to_string(static_cast<long long>(*eta + 0.5)) + " s").c_str() : "unknown");
    return buf;
}

bool ReportClock::due(double elapsed_s) {
    // An interval of 0 (or less, or NaN) means "never", as viewmig.progress_interval = 0 does;
    // the loop below would never end with it.
    if (!(interval_s_ > 0)) return false;
    if (elapsed_s < next_) return false;
    while (next_ <= elapsed_s) next_ += interval_s_;
    return true;
}

}  // namespace viewmig::core
