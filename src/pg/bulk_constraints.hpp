// The keys of tables the declarative engine bulk-loads: prepare_initial keeps their primary key
// and unique constraints as "bulk_constraint" DDL (see schema_copy.hpp), and the worker that ends
// replay_initial adds them, in the transaction that marks the replay replayed — so increments
// and completion always find them (a projector whose shared rows start being written with every
// batch gets its shared tables' keys then, for the reads by key that follow), and a duplicate key fails the step with PostgreSQL's own
// "could not create unique index ... Key (...)=(...) is duplicated." (calling replay_initial again
// retries; abort() gives up).
#pragma once

#include "pg/catalog.hpp"

#include <optional>
#include <string>
#include <vector>

namespace viewmig::pg {

// Adds the replay's pending bulk constraints (of `tables` only, when given); returns how many.
int add_bulk_constraints(const Replay& replay, const std::optional<std::vector<std::string>>& tables = std::nullopt);

}  // namespace viewmig::pg
