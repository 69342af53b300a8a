// storage/media_copies: the copies of beneficiaries' files (bot/media_archive.cpp fetches them).
#include <doctest/doctest.h>

#include "storage/conversations.hpp"
#include "storage/media_copies.hpp"
#include "tests/unit/storage/support.hpp"

using namespace aoun::storage;
using aoun::storage::testing::fresh_connection;

namespace {

std::int64_t person(connection& c, const std::string& address) {
  auto b = upsert_beneficiary(c, "whatsapp", address, "", 100, true);
  REQUIRE(b.has_value());
  return b->id;
}

std::string text_of(connection& c, const std::string& sql) {
  auto q = c.prepare(sql);
  REQUIRE(q.has_value());
  auto r = q->step();
  REQUIRE(r.has_value());
  REQUIRE(*r);
  return q->is_null(0) ? "NULL" : q->text(0);
}

}  // namespace

TEST_CASE("media copies: a fetch that ends after its row was erased writes into no one else's row") {
  auto c = fresh_connection();
  const auto a = person(*c, "966500000001");
  const auto b = person(*c, "966500000002");
  REQUIRE_FALSE(want_media_copy(*c, "whatsapp", "media.A", a, 100));
  auto due = due_media_copies(*c, 100, 8);
  REQUIRE(due.has_value());
  REQUIRE(due->size() == 1);
  const media_copy_due of_a = due->front();  // the archive starts fetching A's file

  REQUIRE_FALSE(erase_beneficiary(*c, a, 110));  // A asks for their data to be erased meanwhile
  REQUIRE_FALSE(want_media_copy(*c, "whatsapp", "media.B", b, 120));
  // SQLite gives the deleted row's id to the next one: B's row is named as A's was.
  REQUIRE(text_of(*c, "SELECT id FROM media_copies WHERE media_id = 'media.B'") == std::to_string(of_a.id));

  // A's fetch ends: neither its bytes nor its failure land on B's row.
  REQUIRE_FALSE(keep_media_copy(*c, of_a, "image/jpeg", "", "A's ID card"));
  CHECK(text_of(*c, "SELECT state FROM media_copies WHERE media_id = 'media.B'") == "wanted");
  CHECK(text_of(*c, "SELECT bytes FROM media_copies WHERE media_id = 'media.B'") == "NULL");
  REQUIRE_FALSE(media_copy_attempt_failed(*c, of_a, "provider_error", std::nullopt));
  CHECK(text_of(*c, "SELECT state || ':' || attempts FROM media_copies WHERE media_id = 'media.B'") == "wanted:0");

  // B's own fetch is kept, and found by B's media id.
  auto b_due = due_media_copies(*c, 200, 8);
  REQUIRE(b_due.has_value());
  REQUIRE(b_due->size() == 1);
  REQUIRE_FALSE(keep_media_copy(*c, b_due->front(), "application/pdf", "", "B's report"));
  auto kept = find_media_copy(*c, "whatsapp", "media.B");
  REQUIRE(kept.has_value());
  REQUIRE(kept->has_value());
  CHECK((*kept)->bytes == "B's report");
  CHECK_FALSE(find_media_copy(*c, "whatsapp", "media.A")->has_value());
}

TEST_CASE("media copies: a failed attempt is due again later, a final one is given up, a second ask is a no-op") {
  auto c = fresh_connection();
  const auto a = person(*c, "966500000001");
  REQUIRE_FALSE(want_media_copy(*c, "telegram", "file.1", a, 100));
  REQUIRE_FALSE(want_media_copy(*c, "telegram", "file.1", a, 150));  // asked again: one row
  auto due = due_media_copies(*c, 100, 8);
  REQUIRE(due->size() == 1);
  REQUIRE_FALSE(media_copy_attempt_failed(*c, due->front(), "network", 400));
  CHECK(due_media_copies(*c, 399, 8)->empty());
  CHECK(next_media_copy_at(*c)->value_or(0) == 400);
  due = due_media_copies(*c, 400, 8);
  REQUIRE(due->size() == 1);
  CHECK(due->front().attempts == 1);
  REQUIRE_FALSE(media_copy_attempt_failed(*c, due->front(), "provider_error (http 404)", std::nullopt));
  CHECK(text_of(*c, "SELECT state FROM media_copies") == "failed");
  CHECK(due_media_copies(*c, 100000, 8)->empty());
  CHECK_FALSE(next_media_copy_at(*c)->has_value());
}

TEST_CASE("media copies: the files a person sent are listed for copying, not text, replies or erased ones") {
  auto c = fresh_connection();
  const auto a = person(*c, "966500000001");
  auto conv = conversation_for(*c, a, 100);
  REQUIRE(conv.has_value());
  auto add = [&](const std::string& direction, const std::string& kind, const std::string& payload) {
    message_row m;
    m.conversation_id = conv->id;
    m.direction = direction;
    m.sender = direction == "in" ? "beneficiary" : "bot";
    m.kind = kind;
    m.payload = payload;
    m.created_at = 100;
    REQUIRE(insert_message(*c, m).has_value());
  };
  add("in", "media", R"({"media":{"kind":"image","id":"m.1","mime":"image/jpeg","filename":"","size":5000}})");
  add("in", "text", R"({})");
  add("in", "media", R"({"media":{"kind":"document","id":"","mime":"application/pdf","filename":"x.pdf"}})");
  add("out", "media", R"({"media":{"kind":"document","id":"m.out","mime":"application/pdf","filename":"x.pdf"}})");
  add("in", "media", R"({"media":{"kind":"document","id":"m.2","mime":"application/pdf","filename":"y.pdf"}})");
  auto files = files_sent_by(*c, a, 10);
  REQUIRE(files.has_value());
  REQUIRE(files->size() == 2);
  CHECK(files->at(0).media_id == "m.1");
  CHECK(files->at(0).size == 5000);
  CHECK(files->at(1).media_id == "m.2");
  CHECK(files->at(1).size == 0);
  CHECK(files_sent_by(*c, a, 1)->size() == 1);
  // One already asked for is not listed again: the limit goes to those that still need a copy.
  REQUIRE_FALSE(want_media_copy(*c, "whatsapp", "m.1", a, 100));
  files = files_sent_by(*c, a, 1);
  REQUIRE(files->size() == 1);
  CHECK(files->at(0).media_id == "m.2");

  REQUIRE_FALSE(erase_beneficiary(*c, a, 110));  // an erasure leaves no media id behind
  CHECK(files_sent_by(*c, a, 10)->empty());
}

TEST_CASE("media copies: a live download is kept for a copy wanted or given up, never for one not asked for") {
  auto c = fresh_connection();
  const auto a = person(*c, "966500000001");
  REQUIRE_FALSE(want_media_copy(*c, "whatsapp", "m.wanted", a, 100));
  REQUIRE_FALSE(want_media_copy(*c, "whatsapp", "m.failed", a, 100));
  auto due = due_media_copies(*c, 100, 8);
  REQUIRE(due->size() == 2);
  REQUIRE_FALSE(media_copy_attempt_failed(*c, due->at(1), "network", std::nullopt));
  REQUIRE(text_of(*c, "SELECT state FROM media_copies WHERE media_id = 'm.failed'") == "failed");

  REQUIRE_FALSE(keep_live_copy(*c, "whatsapp", "m.wanted", "image/jpeg", "", "one"));
  REQUIRE_FALSE(keep_live_copy(*c, "whatsapp", "m.failed", "application/pdf", "", "two"));
  REQUIRE_FALSE(keep_live_copy(*c, "whatsapp", "m.unasked", "image/jpeg", "", "three"));  // before consent
  REQUIRE_FALSE(keep_live_copy(*c, "telegram", "m.wanted", "image/jpeg", "", "four"));     // another channel's id
  CHECK((*find_media_copy(*c, "whatsapp", "m.wanted"))->bytes == "one");
  CHECK((*find_media_copy(*c, "whatsapp", "m.failed"))->bytes == "two");
  CHECK(text_of(*c, "SELECT count(*) FROM media_copies") == "2");
  // The worker's own fetch of the first, ending later, finds nothing left to keep.
  REQUIRE_FALSE(keep_media_copy(*c, due->at(0), "image/jpeg", "", "late"));
  CHECK((*find_media_copy(*c, "whatsapp", "m.wanted"))->bytes == "one");
}
