// Splits the event table's aggregate_id key space into replay groups of about `batch_size`
// events each. A group is a half-open range [lower, upper) of aggregate ids, so an aggregate is
// never split across groups. Boundaries come from a sorted sample of the events' aggregate ids
// (sorted by the database, in the column type's own order): the planner only compares keys for
// equality, so it works for uuid, text or any other key type and collation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace viewmig::core {

struct GroupPlan {
    // bounds[i] is the exclusive upper bound of group i and the inclusive lower bound of group
    // i + 1; the first group has no lower bound and the last none upper: groups = bounds + 1.
    std::vector<std::string> bounds;
    // Estimated events per group (sample rows in the group × events_per_sample_row).
    std::vector<uint64_t> estimated_events;

    std::size_t group_count() const { return bounds.size() + 1; }
};

// sorted_sample: aggregate ids of sampled events, sorted ascending, duplicates kept (one entry per
// sampled event). events_per_sample_row: how many events one sample row stands for (1 when the
// sample is the whole table). batch_size: wanted events per group (> 0).
GroupPlan plan_groups(const std::vector<std::string>& sorted_sample, double events_per_sample_row,
                      uint64_t batch_size);

// The sample fraction (in percent, for TABLESAMPLE BERNOULLI) that yields about `wanted_rows`
// sample rows from `estimated_rows`; 100 means "read every row".
double sample_percent(double estimated_rows, double wanted_rows);

}  // namespace viewmig::core
