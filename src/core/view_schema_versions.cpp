// View-schema version rules (see view_schema_versions.hpp).
#include "core/view_schema_versions.hpp"

#include <algorithm>

namespace viewmig::core {

VersionPlan plan_versions(int current, std::vector<int> defined) {
    std::sort(defined.begin(), defined.end());
    if (defined.empty())
        return VersionError{"no view-schema version is defined", "Define one with viewmig.define_view_schema_version(1, ARRAY['projector'])."};
    const int newest = defined.back();
    if (newest < current)
        return VersionError{"the newest defined view-schema version (" + std::to_string(newest) +
                                ") is older than the current version (" + std::to_string(current) + ")",
                            "Versions only go forward: define version " + std::to_string(current + 1) + "."};
    if (newest == current) return NothingToMigrate{};
    MigrationTarget plan{newest, {}};
    for (int v = current + 1; v <= newest; ++v) {
        if (!std::binary_search(defined.begin(), defined.end(), v))
            return VersionError{"view-schema version " + std::to_string(v) + " is not defined (the versions skip from " +
                                    std::to_string(v - 1) + " to a later one)",
                                "Define every version between the current (" + std::to_string(current) + ") and the newest (" +
                                    std::to_string(newest) + ")."};
        plan.versions.push_back(v);
    }
    return plan;
}

std::string replace_suffix(const std::string& ddl, const std::string& suffix) {
    std::string out;
    const std::string placeholder = kSuffix;
    std::size_t at = 0;
    for (;;) {
        const std::size_t next = ddl.find(placeholder, at);
        if (next == std::string::npos) break;
        out.append(ddl, at, next - at).append(suffix);
        at = next + placeholder.size();
    }
    return out.append(ddl, at, std::string::npos);
}

}  // namespace viewmig::core
