// Which view-schema version migrate_online builds, from the current version and the defined
// ones (Sequent 7's rules): nothing to do when the newest defined version is the current one;
// an error when the defined versions skip one or go backwards. Also the %SUFFIX% placeholder.
#pragma once

#include <string>
#include <variant>
#include <vector>

namespace viewmig::core {

struct MigrationTarget {
    int target;                 // the newest defined version
    std::vector<int> versions;  // the versions after the current one, ascending
};
struct NothingToMigrate {};
struct VersionError {
    std::string message, hint;
};

using VersionPlan = std::variant<MigrationTarget, NothingToMigrate, VersionError>;

// `defined` in any order; `current` is 0 before the first migration.
VersionPlan plan_versions(int current, std::vector<int> defined);

inline constexpr const char* kSuffix = "%SUFFIX%";

// `ddl` with every %SUFFIX% replaced by `suffix` ("" or "_2").
std::string replace_suffix(const std::string& ddl, const std::string& suffix);

}  // namespace viewmig::core
