#include <doctest/doctest.h>

#include "storage/conversations.hpp"
#include "storage/schema.hpp"
#include "tests/unit/storage/support.hpp"

using namespace aoun::storage;
using aoun::storage::testing::fresh_connection;

namespace {

std::int64_t count(connection& c, const std::string& sql) {
  auto q = c.prepare(sql);
  REQUIRE(q.has_value());
  REQUIRE(q->step().value());
  return q->int64(0);
}

}  // namespace

TEST_CASE("a sweep in key order finds every dedupe key recorded before the cut, and only those") {
  auto c = fresh_connection();
  // 25 keys at t = 100..124 over two channels, and one at the cut itself (120).
  for (int i = 0; i < 25; ++i)
    REQUIRE(mark_processed(*c, i % 2 ? "whatsapp" : "webchat", "id-" + std::to_string(100 + i), 100 + i).value());
  REQUIRE(mark_processed(*c, "sms", "SM-at-cut", 120).value());

  // Steps of 7 keys: 26 keys → 7, 7, 7, 5 (the last step, shorter than the limit, ends it).
  std::string channel, id;
  std::vector<std::pair<std::string, std::string>> old;
  std::vector<std::size_t> steps;
  std::pair<std::string, std::string> previous;
  for (;;) {
    auto s = scan_processed(*c, channel, id, 120 + processed_keep_seconds, 7);
    REQUIRE(s.has_value());
    steps.push_back(s->seen);
    old.insert(old.end(), s->old.begin(), s->old.end());
    if (s->seen < 7) break;
    CHECK(std::make_pair(s->last_channel, s->last_id) > previous);  // always forward
    previous = {s->last_channel, s->last_id};
    channel = s->last_channel;
    id = s->last_id;
  }
  CHECK(steps == std::vector<std::size_t>{7, 7, 7, 5});
  REQUIRE(old.size() == 20);  // t = 100..119
  for (const auto& [ch, key] : old) CHECK(std::stoi(key.substr(3)) < 120);

  CHECK(delete_processed(*c, old).value() == 20);
  CHECK(delete_processed(*c, old).value() == 0);  // gone already
  CHECK(count(*c, "SELECT count(*) FROM processed_webhooks") == 6);
  CHECK(count(*c, "SELECT min(received_at) FROM processed_webhooks") == 120);

  // A deleted id is new again; one kept is still a duplicate.
  CHECK(mark_processed(*c, "webchat", "id-100", 200).value());
  CHECK_FALSE(mark_processed(*c, "sms", "SM-at-cut", 200).value());
  CHECK_FALSE(mark_processed(*c, "whatsapp", "id-121", 200).value());
}

TEST_CASE("Telegram's dedupe keys go after three days, before Telegram can draw an update_id again") {
  // Telegram keeps an update 24 hours, and after a week without updates draws the next
  // update_id at random: a key kept longer could drop a new message as a duplicate.
  auto c = fresh_connection();
  const std::int64_t now = 10 * 86400;
  REQUIRE(mark_processed(*c, "telegram", "500000", now - 3 * 86400 - 1).value());  // past its three days
  REQUIRE(mark_processed(*c, "telegram", "500001", now - 2 * 86400).value());      // Telegram may still retry it
  REQUIRE(mark_processed(*c, "whatsapp", "wamid.A", now - 8 * 86400).value());     // Meta's week, and more
  auto s = scan_processed(*c, "", "", now, 100);
  REQUIRE(s.has_value());
  CHECK(s->seen == 3);
  REQUIRE(s->old.size() == 1);
  CHECK(s->old[0] == std::make_pair(std::string("telegram"), std::string("500000")));
  CHECK(processed_keep_seconds_for("whatsapp") == 30 * 86400);
  CHECK(processed_keep_seconds_for("sms") == 30 * 86400);
}

TEST_CASE("a sweep step seeks by the primary key instead of scanning the table") {
  auto c = fresh_connection();
  auto q = c->prepare(
      "EXPLAIN QUERY PLAN SELECT channel, provider_id, received_at FROM processed_webhooks "
      "WHERE (channel, provider_id) > ('a', 'b') ORDER BY channel, provider_id LIMIT 10");
  REQUIRE(q.has_value());
  std::string plan;
  while (q->step().value()) plan += q->text(3) + "\n";
  CAPTURE(plan);
  CHECK(plan.find("SEARCH") != std::string::npos);
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);
}
