// Progress arithmetic for long replay steps (src/core/progress.hpp).
#include "core/progress.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace viewmig::core {
namespace {

ProgressSnapshot snap(uint64_t done, uint64_t total, double elapsed, uint64_t groups_done = 0, uint64_t groups_total = 0) {
    ProgressSnapshot p;
    p.events_done = done;
    p.events_total = total;
    p.groups_done = groups_done;
    p.groups_total = groups_total;
    p.elapsed_s = elapsed;
    return p;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- rate and ETA -----------------------------------------------------------------------------

TEST(Progress, RateIsEventsDoneOverElapsedSeconds) {
    EXPECT_DOUBLE_EQ(events_per_second(snap(1000, 4000, 10)), 100.0);
    EXPECT_DOUBLE_EQ(events_per_second(snap(120000, 4000000, 2.4)), 50000.0);
}

TEST(Progress, RateIsZeroBeforeAnyTimeHasPassed) {
    EXPECT_EQ(events_per_second(snap(1000, 4000, 0)), 0.0);
    EXPECT_EQ(events_per_second(snap(1000, 4000, -1)), 0.0);
    EXPECT_EQ(events_per_second(snap(0, 4000, 5)), 0.0);
}

TEST(Progress, EtaIsTheEventsLeftAtTheCurrentRate) {
    const auto eta = eta_seconds(snap(1000, 4000, 10));  // 100 events/s, 3000 left
    ASSERT_TRUE(eta.has_value());
    EXPECT_DOUBLE_EQ(*eta, 30.0);
}

TEST(Progress, EtaIsUnknownWhenNothingIsDoneYet) {
    EXPECT_FALSE(eta_seconds(snap(0, 4000, 10)).has_value());
    EXPECT_FALSE(eta_seconds(snap(0, 0, 0)).has_value());
}

TEST(Progress, EtaIsUnknownBeforeAnyTimeHasPassed) { EXPECT_FALSE(eta_seconds(snap(1000, 4000, 0)).has_value()); }

TEST(Progress, EtaIsZeroOnceTheEstimatedTotalIsReached) {
    ASSERT_TRUE(eta_seconds(snap(4000, 4000, 10)).has_value());
    EXPECT_EQ(*eta_seconds(snap(4000, 4000, 10)), 0.0);
}

TEST(Progress, EtaStaysZeroWhenTheEstimateIsExceeded) {
    // events_total is an estimate from a sample: more events than estimated is normal.
    ASSERT_TRUE(eta_seconds(snap(5000, 4000, 10)).has_value());
    EXPECT_EQ(*eta_seconds(snap(5000, 4000, 10)), 0.0);
}

// ---- describe ---------------------------------------------------------------------------------

TEST(ProgressDescribe, TheLineStatesGroupsEventsPercentRateAndEta) {
    // 50000 events/s, 3880000 left: 77.6 s, shown rounded.
    const std::string line = describe(snap(120000, 4000000, 2.4, 12, 400));
    EXPECT_TRUE(contains(line, "groups 12/400")) << line;
    EXPECT_TRUE(contains(line, "120000")) << line;
    EXPECT_TRUE(contains(line, "4000000")) << line;
    EXPECT_TRUE(contains(line, "(3.0%)")) << line;
    EXPECT_TRUE(contains(line, "50000 events/s")) << line;
    EXPECT_TRUE(contains(line, "ETA 78 s")) << line;
}

TEST(ProgressDescribe, TheTotalIsShownAsAnEstimate) {
    EXPECT_EQ(describe(snap(120000, 4000000, 2.4, 12, 400)),
              "groups 12/400, events 120000/~4000000 (3.0%), 50000 events/s, ETA 78 s");
}

TEST(ProgressDescribe, EtaIsUnknownBeforeTheFirstEvent) {
    const std::string line = describe(snap(0, 4000000, 1.0, 0, 400));
    EXPECT_TRUE(contains(line, "groups 0/400")) << line;
    EXPECT_TRUE(contains(line, "(0.0%)")) << line;
    EXPECT_TRUE(contains(line, "0 events/s")) << line;
    EXPECT_TRUE(contains(line, "ETA unknown")) << line;
}

TEST(ProgressDescribe, PercentIsCappedAtOneHundredWhenTheEstimateIsExceeded) {
    const std::string line = describe(snap(150, 100, 1.0, 3, 3));
    EXPECT_TRUE(contains(line, "events 150/~100")) << line;
    EXPECT_TRUE(contains(line, "(100.0%)")) << line;
    EXPECT_TRUE(contains(line, "ETA 0 s")) << line;
}

TEST(ProgressDescribe, PercentIsZeroWhenTheTotalIsUnknown) {
    const std::string line = describe(snap(500, 0, 1.0));
    EXPECT_TRUE(contains(line, "(0.0%)")) << line;
    EXPECT_TRUE(contains(line, "500 events/s")) << line;
}

TEST(ProgressDescribe, HugeCountsAreShownInFull) {
    const uint64_t big = std::numeric_limits<uint64_t>::max();
    const std::string line = describe(snap(big, big, 1e9, big, big));
    EXPECT_TRUE(contains(line, std::to_string(big) + "/" + std::to_string(big))) << line;
    EXPECT_TRUE(contains(line, "(100.0%)")) << line;
}

// ---- ReportClock ------------------------------------------------------------------------------

TEST(ReportClock, NotDueBeforeTheFirstInterval) {
    ReportClock clock(5);
    EXPECT_FALSE(clock.due(0));
    EXPECT_FALSE(clock.due(4.99));
}

TEST(ReportClock, DueOncePerInterval) {
    ReportClock clock(5);
    EXPECT_TRUE(clock.due(5));
    EXPECT_FALSE(clock.due(5));
    EXPECT_FALSE(clock.due(9.9));
    EXPECT_TRUE(clock.due(10.1));
    EXPECT_FALSE(clock.due(14.9));
    EXPECT_TRUE(clock.due(15));
}

TEST(ReportClock, ALateCallFiresOnceNotOncePerMissedInterval) {
    ReportClock clock(5);
    EXPECT_TRUE(clock.due(27));  // intervals at 5, 10, 15, 20, 25 were missed: one report
    EXPECT_FALSE(clock.due(27));
    EXPECT_FALSE(clock.due(29.9));
    EXPECT_TRUE(clock.due(30));  // the schedule stays on multiples of the interval
}

TEST(ReportClock, PollingOftenReportsExactlyOncePerInterval) {
    ReportClock clock(1.0);
    int reports = 0;
    for (int ms = 0; ms < 10010; ms += 7) reports += clock.due(ms / 1000.0) ? 1 : 0;  // polls up to 10.003 s
    EXPECT_EQ(reports, 10);
}

TEST(ReportClock, AZeroOrNegativeIntervalNeverReports) {
    // viewmig.progress_interval = 0 means "never"; the clock must neither fire nor spin.
    for (double interval : {0.0, -1.0, std::numeric_limits<double>::quiet_NaN()}) {
        ReportClock clock(interval);
        EXPECT_FALSE(clock.due(0)) << interval;
        EXPECT_FALSE(clock.due(1)) << interval;
        EXPECT_FALSE(clock.due(1000)) << interval;
    }
}

}  // namespace
}  // namespace viewmig::core

TEST(Progress, AfterAResumeTheRateCountsOnlyThisCallsEvents) {
    viewmig::core::ProgressSnapshot p;
    p.events_before = 600;  // done by the interrupted call
    p.events_done = 1000;
    p.events_total = 2000;
    p.elapsed_s = 2.0;
    EXPECT_DOUBLE_EQ(viewmig::core::events_per_second(p), 200.0);
    ASSERT_TRUE(viewmig::core::eta_seconds(p).has_value());
    EXPECT_DOUBLE_EQ(*viewmig::core::eta_seconds(p), 5.0);
}
