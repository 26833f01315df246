// Decides which projectors receive an event, by event type, without allocating per event.
// Projectors registered with event_types = NULL receive every event; the others only the types
// they listed. Targets keep registration order, so projectors see events in a fixed order.
#pragma once

#include <boost/container/flat_map.hpp>
#include <boost/container/small_vector.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace viewmig::core {

class EventRouter {
public:
    using Targets = boost::container::small_vector<int, 4>;

    // filters[i] is projector i's event types, or nullopt for "every event".
    explicit EventRouter(const std::vector<std::optional<std::vector<std::string>>>& filters);

    // Projector indexes (ascending) that receive an event of `event_type`.
    const Targets& targets(std::string_view event_type) const;

    // The event types worth reading when no projector takes every event; nullopt otherwise
    // (then the scan can not filter by type).
    std::optional<std::vector<std::string>> type_filter() const;

private:
    Targets unfiltered_;
    boost::container::flat_map<std::string, Targets, std::less<>> by_type_;
};

}  // namespace viewmig::core
