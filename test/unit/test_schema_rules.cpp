// Which names may be used as replay or archive schema (src/core/schema_rules.hpp). viewmig later
// DROPs these schemas, so every refusal here protects a schema that must never be dropped.
#include "core/schema_rules.hpp"

#include <gtest/gtest.h>

#include <string>

namespace viewmig::core {
namespace {

SchemaRoles roles(std::optional<std::string> other = "archive_schema") {
    return SchemaRoles{"view_schema", "events", std::move(other)};
}

void expect_refused(std::string_view candidate, const SchemaRoles& r, std::string_view reason_part) {
    const auto reason = forbidden_schema_reason(candidate, r);
    ASSERT_TRUE(reason.has_value()) << "\"" << candidate << "\" should be refused";
    EXPECT_FALSE(reason->empty());
    EXPECT_NE(reason->find(reason_part), std::string::npos) << "\"" << candidate << "\": " << *reason;
}

void expect_allowed(std::string_view candidate, const SchemaRoles& r) {
    const auto reason = forbidden_schema_reason(candidate, r);
    EXPECT_FALSE(reason.has_value()) << "\"" << candidate << "\" refused: " << reason.value_or("");
}

TEST(ForbiddenSchema, TheViewSchemaIsNeverAReplayOrArchiveSchema) {
    expect_refused("view_schema", roles(), "view schema");
}

TEST(ForbiddenSchema, TheEventTablesSchemaIsNeverAReplayOrArchiveSchema) {
    expect_refused("events", roles(), "event table");
}

TEST(ForbiddenSchema, ReplayAndArchiveSchemaMustDiffer) {
    expect_refused("archive_schema", roles("archive_schema"), "must differ");
    expect_refused("replay_schema", roles("replay_schema"), "must differ");
}

TEST(ForbiddenSchema, WithoutAnOtherSchemaOnlyTheFixedRulesApply) {
    expect_allowed("archive_schema", roles(std::nullopt));
    expect_refused("view_schema", roles(std::nullopt), "view schema");
}

TEST(ForbiddenSchema, PublicIsRefused) { expect_refused("public", roles(), "public"); }

TEST(ForbiddenSchema, ViewmigsOwnSchemaIsRefused) { expect_refused("viewmig", roles(), "viewmig"); }

TEST(ForbiddenSchema, InformationSchemaIsRefusedAsASystemSchema) {
    expect_refused("information_schema", roles(), "system schema");
}

TEST(ForbiddenSchema, EveryPgPrefixedNameIsReserved) {
    for (const char* name : {"pg_catalog", "pg_toast", "pg_temp_3", "pg_toast_temp_3", "pg_", "pg_my_replay"})
        expect_refused(name, roles(), "pg_");
}

TEST(ForbiddenSchema, TheEmptyNameIsRefused) {
    expect_refused("", roles(), "empty");
    // even when a role is (wrongly) empty too, the reason is the empty name
    expect_refused("", SchemaRoles{"", "", std::string()}, "empty");
}

TEST(ForbiddenSchema, AnOrdinaryNameIsAllowed) {
    expect_allowed("replay_schema", roles());
    expect_allowed("archive_2024", roles(std::nullopt));
    expect_allowed("blog_replay", roles());
}

TEST(ForbiddenSchema, ANameNeedingQuotingIsAllowedTheCallerQuotesIt) {
    expect_allowed("Replay Schema", roles());
    expect_allowed("replay-schema", roles());
    expect_allowed("\"odd\"", roles());
}

TEST(ForbiddenSchema, NamesAreComparedExactlyAsPostgresDoes) {
    // Quoted identifiers are case-sensitive: "Public" is not public, "PG_x" is not reserved
    // (PostgreSQL itself reserves only the lowercase pg_ prefix).
    expect_allowed("Public", roles());
    expect_allowed("VIEWMIG", roles());
    expect_allowed("PG_replay", roles());
    expect_allowed("View_Schema", roles());
    expect_allowed("view_schema2", roles());
    expect_allowed("pgreplay", roles());
    expect_allowed("my_pg_schema", roles());
    expect_allowed(" public", roles());
}

TEST(ForbiddenSchema, RolesThatNeedQuotingAreProtectedToo) {
    const SchemaRoles r{"My Views", "Event Store", std::string("My Archive")};
    expect_refused("My Views", r, "view schema");
    expect_refused("Event Store", r, "event table");
    expect_refused("My Archive", r, "must differ");
    expect_allowed("my views", r);
}

}  // namespace
}  // namespace viewmig::core
