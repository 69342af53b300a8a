// Delivery receipts kept until the outbox records the send they name (bot/early_receipts.hpp).
#include "bot/early_receipts.hpp"

#include <doctest/doctest.h>

using aoun::bot::early_receipts;
using namespace std::chrono_literals;

TEST_CASE("early_receipts: the furthest status wins, per channel and id, until forgotten") {
  early_receipts r;
  const auto t = early_receipts::clock::now();
  CHECK(r.empty());
  r.keep("whatsapp", "wamid.1", {"delivered", ""}, t);
  r.keep("whatsapp", "wamid.1", {"sent", ""}, t);  // late and behind: no step back
  CHECK(r.find("whatsapp", "wamid.1")->status == "delivered");
  r.keep("whatsapp", "wamid.1", {"failed", "131047 Re-engagement message"}, t);
  r.keep("whatsapp", "wamid.1", {"read", ""}, t);  // failed is final
  auto got = r.find("whatsapp", "wamid.1");
  REQUIRE(got);
  CHECK(got->status == "failed");
  CHECK(got->error == "131047 Re-engagement message");
  // The same id on another channel is another message.
  CHECK(!r.find("sms", "wamid.1"));
  // Statuses we do not rank are not kept.
  r.keep("sms", "SM1", {"queued", ""}, t);
  CHECK(!r.find("sms", "SM1"));
  CHECK(r.size() == 1);
  // find() leaves it for a job that may run twice; forget() is for after the commit.
  CHECK(r.find("whatsapp", "wamid.1"));
  r.forget("whatsapp", "wamid.1");
  CHECK(!r.find("whatsapp", "wamid.1"));
  CHECK(r.empty());
}

TEST_CASE("early_receipts: bounded in time and in number") {
  early_receipts r(3, 600s);
  const auto t = early_receipts::clock::now() - 700s;  // kept long ago
  r.keep("whatsapp", "old", {"sent", ""}, t);
  CHECK(!r.find("whatsapp", "old"));  // older than keep_for: never handed out
  r.keep("whatsapp", "a", {"sent", ""});
  CHECK(!r.find("whatsapp", "old"));
  CHECK(r.size() == 1);  // and dropped by the next keep
  r.keep("whatsapp", "b", {"sent", ""});
  r.keep("whatsapp", "c", {"sent", ""});
  r.keep("whatsapp", "d", {"sent", ""});
  CHECK(r.size() == 3);
  CHECK(!r.find("whatsapp", "a"));  // the oldest went first
  CHECK(r.find("whatsapp", "d"));
  // A new one at capacity pushes out the oldest ("b"); the ones forgotten after it leave room.
  for (int i = 0; i < 1000; ++i) {
    r.keep("telegram", std::to_string(i), {"sent", ""});
    r.forget("telegram", std::to_string(i));
  }
  CHECK(r.size() == 2);
  CHECK(!r.find("whatsapp", "b"));
  CHECK(r.find("whatsapp", "c"));
  CHECK(r.find("whatsapp", "d"));
}
