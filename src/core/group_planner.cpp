// Replay group planning from a sorted key sample (see group_planner.hpp).
#include "core/group_planner.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace viewmig::core {

GroupPlan plan_groups(const std::vector<std::string>& sorted_sample, double events_per_sample_row,
                      uint64_t batch_size) {
    if (batch_size == 0) throw std::invalid_argument("batch_size must be positive");
    if (!(events_per_sample_row > 0)) events_per_sample_row = 1;

    GroupPlan plan;
    const double rows_per_group = std::max(1.0, static_cast<double>(batch_size) / events_per_sample_row);
    auto estimate = [&](std::size_t rows) {
        return static_cast<uint64_t>(std::llround(static_cast<double>(rows) * events_per_sample_row));
    };

    std::size_t group_start = 0;
    for (std::size_t i = 1; i < sorted_sample.size(); ++i) {
        const bool key_changes = sorted_sample[i] != sorted_sample[i - 1];
        if (key_changes && static_cast<double>(i - group_start) >= rows_per_group) {
            plan.bounds.push_back(sorted_sample[i]);
            plan.estimated_events.push_back(estimate(i - group_start));
            group_start = i;
        }
    }
    plan.estimated_events.push_back(estimate(sorted_sample.size() - group_start));
    return plan;
}

double sample_percent(double estimated_rows, double wanted_rows) {
    if (!(estimated_rows > wanted_rows)) return 100.0;
    return std::clamp(100.0 * wanted_rows / estimated_rows, 0.0001, 100.0);
}

}  // namespace viewmig::core
