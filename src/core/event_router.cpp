// Event type → projector routing (see event_router.hpp).
#include "core/event_router.hpp"

#include <algorithm>

namespace viewmig::core {

EventRouter::EventRouter(const std::vector<std::optional<std::vector<std::string>>>& filters) {
    for (int i = 0; i < static_cast<int>(filters.size()); ++i)
        if (!filters[i]) unfiltered_.push_back(i);
    for (int i = 0; i < static_cast<int>(filters.size()); ++i) {
        if (!filters[i]) continue;
        for (const auto& type : *filters[i]) {
            auto [it, inserted] = by_type_.try_emplace(type, unfiltered_);
            Targets& t = it->second;
            if (std::find(t.begin(), t.end(), i) == t.end()) {
                t.insert(std::upper_bound(t.begin(), t.end(), i), i);
            }
        }
    }
}

const EventRouter::Targets& EventRouter::targets(std::string_view event_type) const {
    auto it = by_type_.find(event_type);
    return it == by_type_.end() ? unfiltered_ : it->second;
}

std::optional<std::vector<std::string>> EventRouter::type_filter() const {
    if (!unfiltered_.empty()) return std::nullopt;
    std::vector<std::string> types;
    for (const auto& [type, targets] : by_type_) types.push_back(type);
    return types;
}

}  // namespace viewmig::core
