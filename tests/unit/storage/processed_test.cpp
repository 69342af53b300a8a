#include <doctest/doctest.h>

#include "storage/conversations.hpp"
#include "storage/schema.hpp"

using namespace aoun::storage;

namespace {

std::unique_ptr<connection> fresh() {
  auto c = connection::open(":memory:", connection::mode::read_write);
  REQUIRE(c.has_value());
  REQUIRE(migrate(**c).has_value());
  return std::move(*c);
}

std::int64_t count(connection& c, const std::string& sql) {
  auto q = c.prepare(sql);
  REQUIRE(q.has_value());
  REQUIRE(q->step().value());
  return q->int64(0);
}

}  // namespace

TEST_CASE("prune_processed deletes the oldest keys before the cut, a chunk at a time") {
  auto c = fresh();
  // 25 keys at t = 100..124 on two channels, and one at the cut itself.
  for (int i = 0; i < 25; ++i)
    REQUIRE(mark_processed(*c, i % 2 ? "whatsapp" : "telegram", "id-" + std::to_string(i), 100 + i).value());
  REQUIRE(mark_processed(*c, "sms", "SM-at-cut", 120).value());

  // Before 120: ids 0..19 (20 keys), in chunks of 8: 8, 8, 4.
  CHECK(prune_processed(*c, 120, 8).value() == 8);
  CHECK(count(*c, "SELECT min(received_at) FROM processed_webhooks") == 108);  // the oldest went first
  CHECK(prune_processed(*c, 120, 8).value() == 8);
  CHECK(prune_processed(*c, 120, 8).value() == 4);
  CHECK(prune_processed(*c, 120, 8).value() == 0);
  CHECK(count(*c, "SELECT count(*) FROM processed_webhooks") == 6);
  CHECK(count(*c, "SELECT min(received_at) FROM processed_webhooks") == 120);

  // A pruned id is new again; one kept is still a duplicate.
  CHECK(mark_processed(*c, "telegram", "id-0", 200).value());
  CHECK_FALSE(mark_processed(*c, "sms", "SM-at-cut", 200).value());
  CHECK_FALSE(mark_processed(*c, "whatsapp", "id-21", 200).value());
}

TEST_CASE("the dedupe key cut is found through its index") {
  auto c = fresh();
  auto q = c->prepare(
      "EXPLAIN QUERY PLAN SELECT channel, provider_id FROM processed_webhooks WHERE received_at < 1 "
      "ORDER BY received_at LIMIT 10");
  REQUIRE(q.has_value());
  std::string plan;
  while (q->step().value()) plan += q->text(3) + "\n";
  CAPTURE(plan);
  CHECK(plan.find("processed_by_time") != std::string::npos);
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);
}
