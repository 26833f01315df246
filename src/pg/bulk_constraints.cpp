// See bulk_constraints.hpp.
#include "pg/bulk_constraints.hpp"

#include "pg/schema_copy.hpp"
#include "pg/spi.hpp"

namespace viewmig::pg {

int add_bulk_constraints(const Replay& replay, const std::optional<std::vector<std::string>>& tables) {
    QueryResult ddl = spi_run(
        "SELECT table_name, object_name, definition FROM viewmig.replay_deferred_ddl "
        "WHERE replay_id = $1 AND kind = 'bulk_constraint' AND NOT done AND ($2::name[] IS NULL OR table_name = ANY($2)) "
        "ORDER BY table_name, object_name",
        {int8_param(replay.id), text_array_param(tables)});
    const std::string path = replay_first_path(replay.view_schema, replay.replay_schema);
    for (const Row& d : ddl.rows) {
        exec_with_search_path(path, *d[2]);
        spi_run_as_owner("UPDATE viewmig.replay_deferred_ddl SET done = true "
                         "WHERE replay_id = $1 AND kind = 'bulk_constraint' AND table_name = $2 AND object_name = $3",
                         {int8_param(replay.id), text_param(d[0]), text_param(d[1])});
    }
    return static_cast<int>(ddl.rows.size());
}

}  // namespace viewmig::pg
