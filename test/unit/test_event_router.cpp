// Event type → projector routing (src/core/event_router.hpp).
#include "core/event_router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

namespace viewmig::core {
namespace {

using Filter = std::optional<std::vector<std::string>>;
using Filters = std::vector<Filter>;

std::vector<int> as_vector(const EventRouter::Targets& t) { return std::vector<int>(t.begin(), t.end()); }

// 0: every event, 1: A B, 2: every event, 3: B, 4: C A
Filters mixed() {
    return {std::nullopt, std::vector<std::string>{"A", "B"}, std::nullopt, std::vector<std::string>{"B"},
            std::vector<std::string>{"C", "A"}};
}

TEST(EventRouter, UnfilteredProjectorsReceiveEveryEventType) {
    const EventRouter router(mixed());
    for (const char* type : {"A", "B", "C", "Unknown", ""}) {
        const auto t = as_vector(router.targets(type));
        EXPECT_NE(std::find(t.begin(), t.end(), 0), t.end()) << type;
        EXPECT_NE(std::find(t.begin(), t.end(), 2), t.end()) << type;
    }
}

TEST(EventRouter, FilteredProjectorsReceiveOnlyTheirTypes) {
    const Filters filters = mixed();
    const EventRouter router(filters);
    for (const char* type : {"A", "B", "C", "D", "a"}) {
        const auto t = as_vector(router.targets(type));
        for (int i = 0; i < static_cast<int>(filters.size()); ++i) {
            if (!filters[i]) continue;
            const bool listed = std::count(filters[i]->begin(), filters[i]->end(), type) > 0;
            const bool routed = std::find(t.begin(), t.end(), i) != t.end();
            EXPECT_EQ(routed, listed) << "projector " << i << ", type " << type;
        }
    }
}

TEST(EventRouter, TargetsAreInRegistrationOrder) {
    const EventRouter router(mixed());
    EXPECT_EQ(as_vector(router.targets("A")), (std::vector<int>{0, 1, 2, 4}));
    EXPECT_EQ(as_vector(router.targets("B")), (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(as_vector(router.targets("C")), (std::vector<int>{0, 2, 4}));
}

TEST(EventRouter, TargetsAreRegistrationOrderEvenWhenFilteredProjectorsComeFirst) {
    const EventRouter router(Filters{std::vector<std::string>{"A"}, std::vector<std::string>{"A"}, std::nullopt});
    EXPECT_EQ(as_vector(router.targets("A")), (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(as_vector(router.targets("B")), (std::vector<int>{2}));
}

TEST(EventRouter, AnUnknownTypeGoesToTheUnfilteredProjectorsOnly) {
    const EventRouter router(mixed());
    EXPECT_EQ(as_vector(router.targets("Unknown")), (std::vector<int>{0, 2}));
    EXPECT_EQ(as_vector(router.targets("")), (std::vector<int>{0, 2}));
}

TEST(EventRouter, AnUnknownTypeGoesNowhereWhenEveryProjectorIsFiltered) {
    const EventRouter router(Filters{std::vector<std::string>{"A"}, std::vector<std::string>{"B"}});
    EXPECT_TRUE(router.targets("C").empty());
    EXPECT_EQ(as_vector(router.targets("A")), (std::vector<int>{0}));
    EXPECT_EQ(as_vector(router.targets("B")), (std::vector<int>{1}));
}

TEST(EventRouter, TypesAreMatchedExactlyAndCaseSensitively) {
    const EventRouter router(Filters{std::vector<std::string>{"PostCreated"}});
    EXPECT_EQ(as_vector(router.targets("PostCreated")), (std::vector<int>{0}));
    EXPECT_TRUE(router.targets("postcreated").empty());
    EXPECT_TRUE(router.targets("PostCreated ").empty());
    EXPECT_TRUE(router.targets("Post").empty());
}

TEST(EventRouter, LookupByAStringViewIntoALargerBufferUsesOnlyTheView) {
    const EventRouter router(Filters{std::vector<std::string>{"Post"}});
    const std::string buffer = "PostCreated";
    EXPECT_EQ(as_vector(router.targets(std::string_view(buffer).substr(0, 4))), (std::vector<int>{0}));
}

TEST(EventRouter, ATypeListedTwiceRoutesToTheProjectorOnce) {
    const EventRouter router(Filters{std::nullopt, std::vector<std::string>{"A", "A", "B", "A"}});
    EXPECT_EQ(as_vector(router.targets("A")), (std::vector<int>{0, 1}));
}

TEST(EventRouter, AProjectorWithAnEmptyTypeListReceivesNothing) {
    const EventRouter router(Filters{std::vector<std::string>{}, std::vector<std::string>{"A"}});
    EXPECT_EQ(as_vector(router.targets("A")), (std::vector<int>{1}));
    EXPECT_TRUE(router.targets("B").empty());
    EXPECT_EQ(router.type_filter(), (std::optional<std::vector<std::string>>{std::vector<std::string>{"A"}}));
}

TEST(EventRouter, NoProjectorsRouteNothing) {
    const EventRouter router(Filters{});
    EXPECT_TRUE(router.targets("A").empty());
    ASSERT_TRUE(router.type_filter().has_value());
    EXPECT_TRUE(router.type_filter()->empty());
}

TEST(EventRouter, TypeFilterIsNulloptWhenAnyProjectorTakesEveryEvent) {
    EXPECT_FALSE(EventRouter(mixed()).type_filter().has_value());
    EXPECT_FALSE(EventRouter(Filters{std::nullopt}).type_filter().has_value());
    EXPECT_FALSE(EventRouter(Filters{std::vector<std::string>{"A"}, std::nullopt}).type_filter().has_value());
}

TEST(EventRouter, TypeFilterIsTheUnionOfTheListedTypesEachOnce) {
    const EventRouter router(Filters{std::vector<std::string>{"B", "A"}, std::vector<std::string>{"C", "B"},
                                     std::vector<std::string>{"A"}});
    const auto filter = router.type_filter();
    ASSERT_TRUE(filter.has_value());
    std::vector<std::string> types = *filter;
    std::sort(types.begin(), types.end());
    EXPECT_EQ(types, (std::vector<std::string>{"A", "B", "C"}));
    EXPECT_EQ(filter->size(), 3u);  // no duplicates
}

TEST(EventRouter, EveryTypeInTheTypeFilterHasATargetAndNoOtherTypeHasOne) {
    const EventRouter router(Filters{std::vector<std::string>{"X", "Y"}, std::vector<std::string>{"Z"}});
    const auto filter = router.type_filter();
    ASSERT_TRUE(filter.has_value());
    for (const std::string& type : *filter) EXPECT_FALSE(router.targets(type).empty()) << type;
    EXPECT_TRUE(router.targets("W").empty());
}

TEST(EventRouter, ManyProjectorsOnOneTypeKeepRegistrationOrder) {
    Filters filters;
    for (int i = 0; i < 20; ++i)
        filters.push_back(i % 3 == 0 ? Filter{} : Filter{std::vector<std::string>{"T"}});
    const EventRouter router(filters);
    std::vector<int> expected(20);
    for (int i = 0; i < 20; ++i) expected[i] = i;
    EXPECT_EQ(as_vector(router.targets("T")), expected);
    std::vector<int> unfiltered;
    for (int i = 0; i < 20; i += 3) unfiltered.push_back(i);
    EXPECT_EQ(as_vector(router.targets("other")), unfiltered);
}

}  // namespace
}  // namespace viewmig::core
