// Sequent 7's version rules for migrate_online, and the %SUFFIX% placeholder.
#include "core/view_schema_versions.hpp"

#include <gtest/gtest.h>

using namespace viewmig::core;

TEST(ViewSchemaVersions, NewestAfterCurrentIsTheTarget) {
    const VersionPlan p = plan_versions(1, {3, 1, 2});
    ASSERT_TRUE(std::holds_alternative<MigrationTarget>(p));
    EXPECT_EQ(std::get<MigrationTarget>(p).target, 3);
    EXPECT_EQ(std::get<MigrationTarget>(p).versions, (std::vector<int>{2, 3}));
}

TEST(ViewSchemaVersions, FirstMigrationFromZero) {
    const VersionPlan p = plan_versions(0, {1});
    ASSERT_TRUE(std::holds_alternative<MigrationTarget>(p));
    EXPECT_EQ(std::get<MigrationTarget>(p).versions, (std::vector<int>{1}));
}

TEST(ViewSchemaVersions, SameVersionIsNothingToDo) {
    EXPECT_TRUE(std::holds_alternative<NothingToMigrate>(plan_versions(2, {1, 2})));
}

TEST(ViewSchemaVersions, SkippingAVersionIsAnError) {
    const VersionPlan p = plan_versions(1, {1, 3});
    ASSERT_TRUE(std::holds_alternative<VersionError>(p));
    EXPECT_NE(std::get<VersionError>(p).message.find("version 2 is not defined"), std::string::npos);
}

TEST(ViewSchemaVersions, GoingBackwardsIsAnError) {
    const VersionPlan p = plan_versions(3, {1, 2});
    ASSERT_TRUE(std::holds_alternative<VersionError>(p));
    EXPECT_NE(std::get<VersionError>(p).message.find("older than the current"), std::string::npos);
}

TEST(ViewSchemaVersions, NoVersionsIsAnError) { EXPECT_TRUE(std::holds_alternative<VersionError>(plan_versions(0, {}))); }

TEST(ViewSchemaSuffix, EveryPlaceholderIsReplaced) {
    EXPECT_EQ(replace_suffix("CREATE TABLE a%SUFFIX% (x int); CREATE INDEX a_x%SUFFIX% ON a%SUFFIX% (x)", "_2"),
              "CREATE TABLE a_2 (x int); CREATE INDEX a_x_2 ON a_2 (x)");
    EXPECT_EQ(replace_suffix("CREATE TABLE a%SUFFIX% (x int)", ""), "CREATE TABLE a (x int)");
    EXPECT_EQ(replace_suffix("no placeholder", "_2"), "no placeholder");
    EXPECT_EQ(replace_suffix("%SUFFIX%%SUFFIX%", "_9"), "_9_9");
}
