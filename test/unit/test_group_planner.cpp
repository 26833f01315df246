// Replay group planning (src/core/group_planner.hpp): groups of about batch_size events, cut only
// where the aggregate id changes, so an aggregate is never split across groups.
#include "core/group_planner.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace viewmig::core {
namespace {

std::string key(int n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "k%06d", n);
    return buf;
}

// `distinct` keys in ascending order, key i repeated multiplicity(i) times.
template <class Multiplicity>
std::vector<std::string> sample_of(int distinct, Multiplicity multiplicity) {
    std::vector<std::string> s;
    for (int i = 0; i < distinct; ++i)
        for (int r = multiplicity(i); r > 0; --r) s.push_back(key(i));
    return s;
}

std::vector<std::string> random_sample(int distinct, int max_multiplicity, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> mult(1, max_multiplicity);
    return sample_of(distinct, [&](int) { return mult(rng); });
}

// Index in `sample` where each group starts (group 0 at 0), or an assertion failure when a bound
// is not the first occurrence of a sample key that follows the previous bound.
std::vector<std::size_t> group_starts(const std::vector<std::string>& sample, const GroupPlan& plan) {
    std::vector<std::size_t> starts{0};
    std::size_t from = 1;
    for (const std::string& bound : plan.bounds) {
        std::size_t at = from;
        while (at < sample.size() && sample[at] != bound) ++at;
        EXPECT_LT(at, sample.size()) << "bound " << bound << " is not a sample key after the previous bound";
        if (at >= sample.size()) return starts;
        starts.push_back(at);
        from = at + 1;
    }
    return starts;
}

// The rules every plan must satisfy, whatever the sample.
void expect_valid_plan(const std::vector<std::string>& sample, const GroupPlan& plan, double events_per_sample_row) {
    ASSERT_EQ(plan.estimated_events.size(), plan.group_count());
    ASSERT_EQ(plan.group_count(), plan.bounds.size() + 1);

    const std::vector<std::size_t> starts = group_starts(sample, plan);
    ASSERT_EQ(starts.size(), plan.group_count());
    for (std::size_t g = 1; g < starts.size(); ++g) {
        // Strictly increasing in sample order, never at the very first row (no empty group)…
        EXPECT_GT(starts[g], starts[g - 1]);
        // …and each bound is the first occurrence of its key: the row before holds another key.
        EXPECT_NE(sample[starts[g] - 1], sample[starts[g]]) << "bound " << plan.bounds[g - 1] << " splits its aggregate";
    }
    // No key appears in two groups.
    std::map<std::string, std::set<std::size_t>> groups_of_key;
    for (std::size_t g = 0; g < starts.size(); ++g) {
        const std::size_t end = g + 1 < starts.size() ? starts[g + 1] : sample.size();
        for (std::size_t j = starts[g]; j < end; ++j) groups_of_key[sample[j]].insert(g);
    }
    for (const auto& [k, groups] : groups_of_key) EXPECT_EQ(groups.size(), 1u) << "key " << k << " is split";
    // Estimates are the group's sample rows scaled by events_per_sample_row.
    for (std::size_t g = 0; g < starts.size(); ++g) {
        const std::size_t end = g + 1 < starts.size() ? starts[g + 1] : sample.size();
        EXPECT_EQ(plan.estimated_events[g],
                  static_cast<uint64_t>(std::llround(static_cast<double>(end - starts[g]) * events_per_sample_row)))
            << "group " << g;
    }
}

std::vector<std::size_t> group_sizes(const std::vector<std::string>& sample, const GroupPlan& plan) {
    const std::vector<std::size_t> starts = group_starts(sample, plan);
    std::vector<std::size_t> sizes;
    for (std::size_t g = 0; g < starts.size(); ++g)
        sizes.push_back((g + 1 < starts.size() ? starts[g + 1] : sample.size()) - starts[g]);
    return sizes;
}

// ---- plan_groups ------------------------------------------------------------------------------

TEST(PlanGroups, EmptySampleGivesOneUnboundedGroupOfZeroEvents) {
    const GroupPlan plan = plan_groups({}, 1.0, 1000);
    EXPECT_TRUE(plan.bounds.empty());
    EXPECT_EQ(plan.group_count(), 1u);
    ASSERT_EQ(plan.estimated_events.size(), 1u);
    EXPECT_EQ(plan.estimated_events[0], 0u);
}

TEST(PlanGroups, SampleSmallerThanOneBatchIsOneGroup) {
    const auto sample = sample_of(50, [](int) { return 1; });
    const GroupPlan plan = plan_groups(sample, 1.0, 1000);
    EXPECT_TRUE(plan.bounds.empty());
    ASSERT_EQ(plan.estimated_events.size(), 1u);
    EXPECT_EQ(plan.estimated_events[0], 50u);
}

TEST(PlanGroups, DistinctKeysAreCutEveryBatchSizeEventsAtTheFirstKeyOfTheNextGroup) {
    const auto sample = sample_of(100, [](int) { return 1; });
    const GroupPlan plan = plan_groups(sample, 1.0, 10);
    ASSERT_EQ(plan.bounds.size(), 9u);
    for (int g = 0; g < 9; ++g) EXPECT_EQ(plan.bounds[g], key(10 * (g + 1)));
    for (uint64_t e : plan.estimated_events) EXPECT_EQ(e, 10u);
    expect_valid_plan(sample, plan, 1.0);
}

TEST(PlanGroups, EveryBoundIsASampleKeyAtItsFirstOccurrenceAndBoundsIncrease) {
    for (unsigned seed : {1u, 2u, 3u, 42u})
        for (uint64_t batch : {1u, 2u, 7u, 100u, 1000u}) {
            const auto sample = random_sample(500, 6, seed);
            SCOPED_TRACE("seed " + std::to_string(seed) + ", batch " + std::to_string(batch));
            expect_valid_plan(sample, plan_groups(sample, 1.0, batch), 1.0);
        }
}

TEST(PlanGroups, NoAggregateIsEverSplitAcrossGroups) {
    const auto sample = random_sample(2000, 9, 7);
    const GroupPlan plan = plan_groups(sample, 1.0, 25);
    const std::vector<std::size_t> starts = group_starts(sample, plan);
    // Group of each sample row; equal neighbours must share it.
    std::size_t g = 0;
    std::vector<std::size_t> group_of(sample.size());
    for (std::size_t j = 0; j < sample.size(); ++j) {
        while (g + 1 < starts.size() && starts[g + 1] <= j) ++g;
        group_of[j] = g;
    }
    for (std::size_t j = 1; j < sample.size(); ++j)
        if (sample[j] == sample[j - 1]) {
            EXPECT_EQ(group_of[j], group_of[j - 1]) << sample[j];
        }
}

TEST(PlanGroups, GroupsHoldAtLeastBatchSizeAndLessThanBatchSizePlusOneAggregate) {
    const int max_mult = 5;
    const uint64_t batch = 100;
    const auto sample = random_sample(3000, max_mult, 11);
    const GroupPlan plan = plan_groups(sample, 1.0, batch);
    const auto sizes = group_sizes(sample, plan);
    ASSERT_GT(sizes.size(), 10u);
    for (std::size_t g = 0; g < sizes.size(); ++g) {
        EXPECT_LT(sizes[g], batch + max_mult) << "group " << g;  // overshoot: at most the aggregate that crosses
        if (g + 1 < sizes.size()) {
            EXPECT_GE(sizes[g], batch) << "group " << g;  // only the last may be short
        }
        EXPECT_GT(sizes[g], 0u) << "group " << g;
    }
    EXPECT_EQ(std::accumulate(sizes.begin(), sizes.end(), std::size_t{0}), sample.size());
}

TEST(PlanGroups, ASingleHotKeyBiggerThanBatchSizeStaysInOneGroup) {
    std::vector<std::string> sample{"a", "b", "c"};
    sample.insert(sample.end(), 1000, "hot");
    sample.insert(sample.end(), {"x", "y", "z"});
    const GroupPlan plan = plan_groups(sample, 1.0, 10);
    expect_valid_plan(sample, plan, 1.0);
    // "hot" starts no group in the middle of itself: its rows are all in the group it starts in.
    int groups_with_hot = 0;
    const auto starts = group_starts(sample, plan);
    for (std::size_t g = 0; g < starts.size(); ++g) {
        const std::size_t end = g + 1 < starts.size() ? starts[g + 1] : sample.size();
        bool has_hot = false;
        for (std::size_t j = starts[g]; j < end; ++j) has_hot = has_hot || sample[j] == "hot";
        if (has_hot) {
            ++groups_with_hot;
            EXPECT_GE(plan.estimated_events[g], 1000u);
        }
    }
    EXPECT_EQ(groups_with_hot, 1);
}

TEST(PlanGroups, ASampleOfOneKeyIsOneGroupHoweverLarge) {
    const std::vector<std::string> sample(5000, "only");
    const GroupPlan plan = plan_groups(sample, 1.0, 10);
    EXPECT_TRUE(plan.bounds.empty());
    ASSERT_EQ(plan.estimated_events.size(), 1u);
    EXPECT_EQ(plan.estimated_events[0], 5000u);
}

TEST(PlanGroups, EventsPerSampleRowScalesTheSampleRowsPerGroup) {
    // A 10 % sample: each sample row stands for 10 events, so 10 sample rows make a batch of 100.
    const auto sample = sample_of(1000, [](int) { return 1; });
    const GroupPlan plan = plan_groups(sample, 10.0, 100);
    EXPECT_EQ(plan.group_count(), 100u);
    for (uint64_t e : plan.estimated_events) EXPECT_EQ(e, 100u);
    expect_valid_plan(sample, plan, 10.0);
}

TEST(PlanGroups, EstimatesAddUpToTheSampleTimesEventsPerSampleRow) {
    const auto sample = random_sample(1000, 4, 5);
    for (double eps : {1.0, 2.5, 10.0, 333.0}) {
        const GroupPlan plan = plan_groups(sample, eps, 1000);
        expect_valid_plan(sample, plan, eps);
        const double total = std::accumulate(plan.estimated_events.begin(), plan.estimated_events.end(), 0.0);
        EXPECT_NEAR(total, static_cast<double>(sample.size()) * eps, static_cast<double>(plan.group_count())) << eps;
    }
}

TEST(PlanGroups, WhenOneSampleRowExceedsABatchEveryAggregateIsItsOwnGroup) {
    const auto sample = random_sample(50, 3, 9);
    const GroupPlan plan = plan_groups(sample, 500.0, 100);
    EXPECT_EQ(plan.group_count(), 50u);
    expect_valid_plan(sample, plan, 500.0);
}

TEST(PlanGroups, NonPositiveOrNanEventsPerSampleRowCountsAsOne) {
    const auto sample = random_sample(300, 4, 3);
    const GroupPlan reference = plan_groups(sample, 1.0, 50);
    for (double eps : {0.0, -3.0, std::numeric_limits<double>::quiet_NaN()}) {
        const GroupPlan plan = plan_groups(sample, eps, 50);
        EXPECT_EQ(plan.bounds, reference.bounds) << eps;
        EXPECT_EQ(plan.estimated_events, reference.estimated_events) << eps;
    }
}

TEST(PlanGroups, BatchSizeZeroThrows) {
    EXPECT_THROW(plan_groups({"a", "b"}, 1.0, 0), std::invalid_argument);
    EXPECT_THROW(plan_groups({}, 1.0, 0), std::invalid_argument);
}

TEST(PlanGroups, OnlyKeyEqualityMattersNotTheTextOrderOfKeys) {
    // The database sorts by the column type's order (uuid, collation): the planner must not re-sort.
    const std::vector<std::string> sample{"b", "b", "a", "a", "C", "c", "c"};
    const GroupPlan plan = plan_groups(sample, 1.0, 2);
    EXPECT_EQ(plan.bounds, (std::vector<std::string>{"a", "C"}));
    EXPECT_EQ(plan.estimated_events, (std::vector<uint64_t>{2, 2, 3}));
    expect_valid_plan(sample, plan, 1.0);
}

TEST(PlanGroups, UuidKeysWorkLikeAnyOtherText) {
    std::vector<std::string> sample;
    for (int i = 0; i < 40; ++i) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%08x-0000-4000-8000-%012d", i * 2654435761u % 0xffffffffu, i);
        sample.insert(sample.end(), 3, buf);  // three events per aggregate
    }
    const GroupPlan plan = plan_groups(sample, 1.0, 10);
    expect_valid_plan(sample, plan, 1.0);
    EXPECT_EQ(plan.group_count(), 10u);  // 12 events each (4 aggregates), the last 12 too
}

// ---- sample_percent ---------------------------------------------------------------------------

TEST(SamplePercent, ReadsEveryRowWhenTheTableIsNoBiggerThanTheWantedSample) {
    EXPECT_EQ(sample_percent(100000, 100000), 100.0);
    EXPECT_EQ(sample_percent(5000, 100000), 100.0);
    EXPECT_EQ(sample_percent(0, 100000), 100.0);
}

TEST(SamplePercent, UnknownRowEstimatesReadEveryRow) {
    EXPECT_EQ(sample_percent(-1, 100000), 100.0);  // reltuples of a never-analyzed table
    EXPECT_EQ(sample_percent(std::numeric_limits<double>::quiet_NaN(), 100000), 100.0);
}

TEST(SamplePercent, BigTablesAreSampledInProportion) {
    EXPECT_DOUBLE_EQ(sample_percent(1e6, 1e5), 10.0);
    EXPECT_DOUBLE_EQ(sample_percent(4e5, 1e5), 25.0);
    EXPECT_DOUBLE_EQ(sample_percent(1e9, 1e5), 0.01);
    for (double rows : {2e5, 3.3e6, 7.7e7, 1e9}) {
        const double p = sample_percent(rows, 1e5);
        EXPECT_NEAR(rows * p / 100.0, 1e5, 1e-6 * 1e5) << rows;
    }
}

TEST(SamplePercent, NeverBelowOneMillionthNorAboveAll) {
    EXPECT_DOUBLE_EQ(sample_percent(1e15, 1), 0.0001);
    EXPECT_DOUBLE_EQ(sample_percent(1e300, 1e5), 0.0001);
    for (double rows : {1.0, 10.0, 1e3, 1e6, 1e12, 1e18})
        for (double wanted : {1.0, 100.0, 1e5}) {
            const double p = sample_percent(rows, wanted);
            EXPECT_GE(p, 0.0001) << rows << " " << wanted;
            EXPECT_LE(p, 100.0) << rows << " " << wanted;
        }
}

TEST(SamplePercent, OneHundredPercentMeansOneEventPerSampleRowForThePlanner) {
    // The caller passes 100 / percent as events_per_sample_row.
    EXPECT_DOUBLE_EQ(100.0 / sample_percent(1000, 1e5), 1.0);
    EXPECT_DOUBLE_EQ(100.0 / sample_percent(1e6, 1e5), 10.0);
}

}  // namespace
}  // namespace viewmig::core
