// The outbox's claim: head of line per recipient, and one send at a time per recipient.
#include <doctest/doctest.h>

#include "storage/outbox.hpp"
#include "tests/unit/storage/support.hpp"

using namespace aoun::storage;
using aoun::storage::testing::fresh_connection;

namespace {

std::int64_t enqueue(connection& c, const std::string& recipient, const std::string& state) {
  outbox_row r;
  r.channel = "whatsapp";
  r.recipient = recipient;
  r.payload = "{}";
  r.state = state;
  r.created_at = 1;
  auto id = outbox_enqueue(c, r);
  REQUIRE(id.has_value());
  return *id;
}

std::vector<std::int64_t> claim_ids(connection& c) {
  auto rows = outbox_claim(c, 1000, 64);
  REQUIRE(rows.has_value());
  std::vector<std::int64_t> ids;
  for (auto& r : *rows) ids.push_back(r.id);
  return ids;
}

}  // namespace

TEST_CASE("outbox claim: a recipient with a send in flight gets nothing more; the others are not held up") {
  auto c = fresh_connection();
  // Alice: an old dead letter that staff revived, behind which newer messages went on: one of
  // them is in flight. Bob: one message waiting.
  const auto revived = enqueue(*c, "alice", "pending");
  const auto in_flight = enqueue(*c, "alice", "sending");
  const auto bob = enqueue(*c, "bob", "pending");
  CHECK(claim_ids(*c) == std::vector<std::int64_t>{bob});
  // Alice's head is not due either: the loop must not wake for it again and again.
  auto backlog = outbox_backlog_of(*c);
  REQUIRE(backlog.has_value());
  CHECK(backlog->any_pending);
  CHECK(!backlog->next_due_ms);
  // Once her message in flight is recorded, the revived one goes.
  REQUIRE(!outbox_mark_sent(*c, in_flight, "wamid.1", 2));
  CHECK(claim_ids(*c) == std::vector<std::int64_t>{revived});
}

TEST_CASE("outbox claim: the oldest unsent row of each recipient, and only when it is pending and due") {
  auto c = fresh_connection();
  const auto a1 = enqueue(*c, "alice", "pending");
  enqueue(*c, "alice", "pending");  // behind a1
  const auto b1 = enqueue(*c, "bob", "sending");
  enqueue(*c, "bob", "pending");  // behind a send in flight
  CHECK(claim_ids(*c) == std::vector<std::int64_t>{a1});
  CHECK(claim_ids(*c).empty());  // a1 is sending now: alice waits for it
  REQUIRE(!outbox_retry(*c, b1, 5000, "http 503"));  // bob's head back to pending, due later
  CHECK(claim_ids(*c).empty());
  auto backlog = outbox_backlog_of(*c);
  REQUIRE(backlog.has_value());
  CHECK(backlog->next_due_ms == 5000);
}

TEST_CASE("outbox claim: a channel whose rate limit is saturated is left for later, the others are claimed") {
  auto c = fresh_connection();
  outbox_row r;
  r.payload = "{}";
  r.state = "pending";
  r.created_at = 1;
  r.channel = "sms";
  r.recipient = "+966500000001";
  const auto sms = outbox_enqueue(*c, r).value();
  r.channel = "whatsapp";
  r.recipient = "966500000002";
  const auto wa = outbox_enqueue(*c, r).value();
  auto rows = outbox_claim(*c, 1000, 64, ",sms,");
  REQUIRE(rows.has_value());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].id == wa);
  // The row left out is due, but it is not what the worker's timer waits for: with it counted,
  // the worker would wake at once, claim nothing, and again, a write job each time.
  auto backlog = outbox_backlog_of(*c, ",sms,");
  REQUIRE(backlog.has_value());
  CHECK(backlog->any_pending);
  CHECK(!backlog->next_due_ms);
  backlog = outbox_backlog_of(*c);
  REQUIRE(backlog.has_value());
  CHECK(backlog->next_due_ms == 0);
  // Not skipped any more: claimed.
  rows = outbox_claim(*c, 1000, 64, "");
  REQUIRE(rows.has_value());
  REQUIRE(rows->size() == 1);
  CHECK((*rows)[0].id == sms);
}
