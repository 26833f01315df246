// Index statements rendered for background schema migrations: every identifier goes through
// the quoting function, options appear only when set, and the three build forms differ only in
// CONCURRENTLY / ONLY.
#include "core/index_definition.hpp"

#include <gtest/gtest.h>

using viewmig::core::IndexBuild;
using viewmig::core::IndexSpec;
using viewmig::core::render_create_index;
using viewmig::core::render_drop_index;

namespace {

// Marks every quoted identifier, so tests see exactly what was quoted.
std::string mark(const std::string& s) { return "<" + s + ">"; }

IndexSpec orders_customer() {
    IndexSpec s;
    s.schema = "shop";
    s.table = "orders";
    s.name = "orders_customer_idx";
    s.columns = {"customer"};
    return s;
}

}  // namespace

TEST(IndexDefinition, PlainConcurrentBuild) {
    EXPECT_EQ(render_create_index(orders_customer(), IndexBuild::Concurrently, mark),
              "CREATE INDEX CONCURRENTLY IF NOT EXISTS <orders_customer_idx> ON <shop>.<orders> USING <btree> (<customer>)");
}

TEST(IndexDefinition, EveryOptionInPostgresOrder) {
    IndexSpec s = orders_customer();
    s.unique = true;
    s.method = "hash";
    s.columns = {"customer", "state"};
    s.include = {"total", "id"};
    s.where = "state = 'open'";
    EXPECT_EQ(render_create_index(s, IndexBuild::Concurrently, mark),
              "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS <orders_customer_idx> ON <shop>.<orders> USING <hash> "
              "(<customer>, <state>) INCLUDE (<total>, <id>) WHERE (state = 'open')");
}

TEST(IndexDefinition, BuildFormsDifferOnlyInConcurrentlyAndOnly) {
    const IndexSpec s = orders_customer();
    EXPECT_EQ(render_create_index(s, IndexBuild::OnlyParent, mark),
              "CREATE INDEX IF NOT EXISTS <orders_customer_idx> ON ONLY <shop>.<orders> USING <btree> (<customer>)");
    EXPECT_EQ(render_create_index(s, IndexBuild::Plain, mark),
              "CREATE INDEX IF NOT EXISTS <orders_customer_idx> ON <shop>.<orders> USING <btree> (<customer>)");
}

TEST(IndexDefinition, HostileNamesStayInsideTheQuoting) {
    IndexSpec s = orders_customer();
    s.name = "x; DROP TABLE shop.orders";
    s.columns = {"a\"b"};
    const std::string sql = render_create_index(s, IndexBuild::Concurrently, mark);
    EXPECT_NE(sql.find("<x; DROP TABLE shop.orders>"), std::string::npos);
    EXPECT_NE(sql.find("(<a\"b>)"), std::string::npos);
}

TEST(IndexDefinition, DropIsConcurrentAndQualified) {
    EXPECT_EQ(render_drop_index("shop", "orders_old_idx", mark), "DROP INDEX CONCURRENTLY IF EXISTS <shop>.<orders_old_idx>");
}
