#include <doctest/doctest.h>

#include "storage/conversations.hpp"
#include "storage/outbox.hpp"
#include "storage/schema.hpp"
#include "tests/unit/storage/support.hpp"

using namespace aoun::storage;
using aoun::storage::testing::fresh_connection;

namespace {

void exec(connection& c, const std::string& sql) { REQUIRE(!c.exec_script(sql.c_str())); }

std::string text(connection& c, const std::string& sql) {
  auto q = c.prepare(sql);
  REQUIRE(q.has_value());
  REQUIRE(q->step().value());
  return q->text(0);
}

// The cut: activity at `cut` or earlier is old enough; at cut + 1 it is not.
constexpr std::int64_t cut = 1'800'000'000;  // 2027-01-15; everything here is years after 1970

struct person {
  std::int64_t id = 0, conversation = 0;
};

/// A beneficiary who wrote once at `at` (their name and ID in the transcript) and got the bot's
/// reply at the same second, the way a webhook job writes them.
person wrote_at(connection& c, const std::string& address, std::int64_t at) {
  auto b = upsert_beneficiary(c, "whatsapp", address, "Huda", at, true);
  REQUIRE(b.has_value());
  auto conv = conversation_for(c, b->id, at);
  REQUIRE(conv.has_value());
  message_row in;
  in.conversation_id = conv->id;
  in.direction = "in";
  in.sender = "beneficiary";
  in.text = "Huda, 1000000008";
  in.created_at = at;
  REQUIRE(insert_message(c, in).has_value());
  message_row out = in;
  out.direction = "out";
  out.sender = "bot";
  out.text = "Thank you, Huda";
  REQUIRE(insert_message(c, out).has_value());
  conv->last_message_at = at;
  conv->updated_at = at;
  REQUIRE(!save_conversation(c, *conv));
  return {b->id, conv->id};
}

/// A case of `p` created at `created` and moved to `step` at `changed` (as staff_api does).
std::int64_t case_of(connection& c, const person& p, const std::string& reference, std::int64_t created,
                     const std::string& step, std::int64_t changed) {
  case_row k;
  k.reference = reference;
  k.beneficiary_id = p.id;
  k.conversation_id = p.conversation;
  k.channel = "whatsapp";
  k.full_name = "Huda Ali";
  k.national_id = "1000000008";
  k.mobile = "966500000001";
  k.city = "Riyadh";
  k.service_type = "legal";
  k.description = "what happened";
  k.created_at = created;
  auto id = insert_case(c, k);
  REQUIRE(id.has_value());
  if (step != "submitted") {
    exec(c, "UPDATE cases SET step = '" + step + "', updated_at = " + std::to_string(changed) +
                " WHERE id = " + std::to_string(*id));
    REQUIRE(!insert_case_event(c, *id, std::string("evaluating"), step, std::nullopt, "called her brother", changed));
  }
  return *id;
}

std::vector<std::int64_t> due(connection& c, std::int64_t before = cut) {
  auto s = scan_retention(c, 0, before, 1000);
  REQUIRE(s.has_value());
  return s->due;
}

bool is_due(connection& c, std::int64_t id, std::int64_t before = cut) {
  auto r = retention_due(c, id, before);
  REQUIRE(r.has_value());
  return *r;
}

}  // namespace

TEST_CASE("retention: last activity exactly at the cut is due, one second inside it is kept") {
  auto c = fresh_connection();
  auto at = wrote_at(*c, "966500000001", cut);
  auto inside = wrote_at(*c, "966500000002", cut + 1);
  CHECK(due(*c) == std::vector<std::int64_t>{at.id});
  CHECK(is_due(*c, at.id));
  CHECK_FALSE(is_due(*c, inside.id));
  // A second later the second one is due too.
  CHECK(due(*c, cut + 1) == std::vector<std::int64_t>{at.id, inside.id});
}

TEST_CASE("retention: a beneficiary with no case and old activity is due (inquiries only, or declined)") {
  auto c = fresh_connection();
  auto p = wrote_at(*c, "966500000001", cut - 400 * 86400);
  CHECK(due(*c) == std::vector<std::int64_t>{p.id});
  // Someone who never got as far as a conversation (the beneficiary row alone).
  auto b = upsert_beneficiary(*c, "sms", "+966500000009", "", cut - 10, true);
  REQUIRE(b.has_value());
  CHECK(due(*c) == std::vector<std::int64_t>{p.id, b->id});
}

TEST_CASE("retention: an open case keeps the beneficiary, whatever its age; only 'closed' is final") {
  auto c = fresh_connection();
  const std::int64_t long_ago = cut - 800 * 86400;
  for (const char* step : {"submitted", "collecting_info", "evaluating", "approved", "rejected"}) {
    CAPTURE(step);
    auto p = wrote_at(*c, std::string("9665000000") + step, long_ago);
    case_of(*c, p, std::string("AWN-") + step, long_ago, step, long_ago);
    CHECK_FALSE(is_due(*c, p.id));
  }
  CHECK(due(*c).empty());
  // One closed case and one still open: kept.
  auto both = wrote_at(*c, "966500000077", long_ago);
  case_of(*c, both, "AWN-both-1", long_ago, "closed", long_ago);
  case_of(*c, both, "AWN-both-2", long_ago, "evaluating", long_ago);
  CHECK_FALSE(is_due(*c, both.id));
}

TEST_CASE("retention: only closed cases, closed long ago, are due; a recent closing counts as activity") {
  auto c = fresh_connection();
  auto old = wrote_at(*c, "966500000001", cut - 500 * 86400);
  case_of(*c, old, "AWN-1", cut - 500 * 86400, "closed", cut - 200);
  case_of(*c, old, "AWN-2", cut - 400 * 86400, "closed", cut);
  // Wrote long ago, but staff closed the case (no message to them) just inside the cut.
  auto recent = wrote_at(*c, "966500000002", cut - 500 * 86400);
  case_of(*c, recent, "AWN-3", cut - 500 * 86400, "closed", cut + 1);
  CHECK(due(*c) == std::vector<std::int64_t>{old.id});
}

TEST_CASE("retention: a recent inbound message keeps the beneficiary") {
  auto c = fresh_connection();
  auto p = wrote_at(*c, "966500000001", cut - 400 * 86400);
  REQUIRE(is_due(*c, p.id));
  wrote_at(*c, "966500000001", cut + 60);  // the same beneficiary writes again
  CHECK_FALSE(is_due(*c, p.id));
  CHECK(due(*c).empty());
}

TEST_CASE("retention: a recent staff or bot message keeps the beneficiary") {
  auto c = fresh_connection();
  auto p = wrote_at(*c, "966500000001", cut - 400 * 86400);
  REQUIRE(is_due(*c, p.id));
  message_row m;
  m.conversation_id = p.conversation;
  m.direction = "out";
  m.sender = "staff";
  m.text = "We have news about your request";
  m.created_at = cut + 5;
  REQUIRE(insert_message(*c, m).has_value());
  CHECK_FALSE(is_due(*c, p.id));
}

TEST_CASE("retention: each kind of activity alone keeps the beneficiary") {
  // Everything at the cut, then one timestamp moved one second inside it.
  struct source {
    const char* name;
    const char* sql;
  };
  const source sources[] = {
      {"created_at", "UPDATE beneficiaries SET created_at = created_at + 1"},
      {"last_inbound_at", "UPDATE beneficiaries SET last_inbound_at = last_inbound_at + 1"},
      {"conversation created_at", "UPDATE conversations SET created_at = created_at + 1"},
      {"conversation updated_at (a staff action)", "UPDATE conversations SET updated_at = updated_at + 1"},
      {"conversation last_message_at", "UPDATE conversations SET last_message_at = last_message_at + 1"},
      {"conversation resolved_at", "UPDATE conversations SET resolved_at = resolved_at + 1"},
      {"newest transcript row", "UPDATE messages SET created_at = created_at + 1 WHERE id = (SELECT max(id) FROM messages)"},
      {"a case's last step", "UPDATE cases SET updated_at = updated_at + 1"},
  };
  for (const auto& s : sources) {
    CAPTURE(s.name);
    auto c = fresh_connection();
    auto p = wrote_at(*c, "966500000001", cut);
    exec(*c, "UPDATE conversations SET resolved_at = " + std::to_string(cut));
    case_of(*c, p, "AWN-1", cut, "closed", cut);
    REQUIRE(is_due(*c, p.id));
    exec(*c, s.sql);
    CHECK_FALSE(is_due(*c, p.id));
  }
}

TEST_CASE("retention: a conversation waiting for staff or held by staff keeps the beneficiary") {
  auto c = fresh_connection();
  for (const char* mode : {"waiting", "staff"}) {
    CAPTURE(mode);
    auto p = wrote_at(*c, std::string("96650000_") + mode, cut - 400 * 86400);
    REQUIRE(is_due(*c, p.id));
    exec(*c, std::string("UPDATE conversations SET mode = '") + mode + "' WHERE id = " + std::to_string(p.conversation));
    CHECK_FALSE(is_due(*c, p.id));
  }
  auto resolved = wrote_at(*c, "966500000003", cut - 400 * 86400);
  exec(*c, "UPDATE conversations SET mode = 'resolved' WHERE id = " + std::to_string(resolved.conversation));
  CHECK(due(*c) == std::vector<std::int64_t>{resolved.id});
}

TEST_CASE("retention: an erased beneficiary is not due again, unless they came back afterwards") {
  auto c = fresh_connection();
  auto p = wrote_at(*c, "966500000001", cut - 400 * 86400);
  auto erased = erase_if_retention_due(*c, p.id, cut, cut + 3600);
  REQUIRE(erased.has_value());
  CHECK(*erased);
  CHECK(due(*c).empty());
  CHECK(due(*c, cut + 400 * 86400).empty());  // however late the sweep

  // "Delete my data": the reply saying so is written at the very second of the erasure.
  auto d = wrote_at(*c, "966500000002", cut - 400 * 86400);
  REQUIRE(!erase_beneficiary(*c, d.id, cut - 399 * 86400));
  wrote_at(*c, "966500000002", cut - 399 * 86400);
  CHECK(due(*c).empty());

  // Back a day after the erasure with new personal data, then silent: due again in time.
  wrote_at(*c, "966500000001", cut + 86400);
  CHECK(due(*c, cut + 86400 - 1).empty());
  CHECK(due(*c, cut + 86400) == std::vector<std::int64_t>{p.id});
}

TEST_CASE("retention: the write job asks again, so a message after the sweep's read prevents the erasure") {
  auto c = fresh_connection();
  auto p = wrote_at(*c, "966500000001", cut - 400 * 86400);
  auto s = scan_retention(*c, 0, cut, 100);
  REQUIRE(s.has_value());
  REQUIRE(s->due == std::vector<std::int64_t>{p.id});
  // Between the read and the write the beneficiary writes again.
  wrote_at(*c, "966500000001", cut + 7200);
  auto erased = erase_if_retention_due(*c, p.id, cut, cut + 7300);
  REQUIRE(erased.has_value());
  CHECK_FALSE(*erased);
  CHECK(text(*c, "SELECT display_name FROM beneficiaries") == "Huda");
  CHECK(text(*c, "SELECT text FROM messages ORDER BY id LIMIT 1") == "Huda, 1000000008");
  CHECK(text(*c, "SELECT COALESCE(erased_at, 'never') FROM beneficiaries") == "never");

  // So does a staff member taking the conversation over.
  auto q = wrote_at(*c, "966500000002", cut - 400 * 86400);
  exec(*c, "UPDATE conversations SET mode = 'staff' WHERE id = " + std::to_string(q.conversation));
  erased = erase_if_retention_due(*c, q.id, cut, cut + 7300);
  REQUIRE(erased.has_value());
  CHECK_FALSE(*erased);

  CHECK(retention_due(*c, 999, cut).error() == errc::not_found);
  CHECK(erase_if_retention_due(*c, 999, cut, cut).error() == errc::not_found);
}

TEST_CASE("retention: an erasure wipes what 'delete my data' wipes, and keeps what reports need") {
  auto c = fresh_connection();
  auto p = wrote_at(*c, "966500000001", cut - 400 * 86400);
  auto k = case_of(*c, p, "AWN-1", cut - 400 * 86400, "closed", cut - 400 * 86400);
  REQUIRE(!insert_case_document(*c, {k, std::nullopt, "image", "media-1", "image/jpeg", "id.jpg", cut - 400 * 86400}));
  REQUIRE(!insert_volunteer(*c, {p.id, "Huda", "Riyadh", "teaching", "weekends", cut - 400 * 86400}));
  REQUIRE(open_survey(*c, p.conversation, k, std::nullopt, "whatsapp", std::string("legal"), "case_closed",
                      cut - 400 * 86400)
              .has_value());
  REQUIRE(!survey_answer(*c, p.conversation, "overall", 4));
  REQUIRE(!survey_complete(*c, p.conversation, "thank you Huda", cut - 400 * 86400));

  // The outbox's copies of the two transcript rows: one sent, one given up on.
  for (const char* state : {"sent", "dead"}) {
    outbox_row o;
    o.message_id = std::string(state) == "sent" ? 1 : 2;
    o.conversation_id = p.conversation;
    o.channel = "whatsapp";
    o.recipient = "966500000001";
    o.payload = R"({"text":"Huda Ali, 1000000008"})";
    o.created_at = cut - 400 * 86400;
    auto id = outbox_enqueue(*c, o);
    REQUIRE(id.has_value());
    exec(*c, "UPDATE outbox SET state = '" + std::string(state) + "' WHERE id = " + std::to_string(*id));
  }

  auto erased = erase_if_retention_due(*c, p.id, cut, cut + 10);
  REQUIRE(erased.has_value());
  REQUIRE(*erased);
  CHECK(text(*c, "SELECT group_concat(text, '|') FROM messages") == "|");
  CHECK(text(*c, "SELECT group_concat(state || payload, '|') FROM outbox") == "sent{}|dead{}");
  CHECK(text(*c, "SELECT display_name || '/' || erased_at FROM beneficiaries") == "/" + std::to_string(cut + 10));
  CHECK(text(*c, "SELECT full_name || national_id || mobile || city || description FROM cases") == "[erased]");
  CHECK(text(*c, "SELECT count(*) FROM case_documents") == "0");
  CHECK(text(*c, "SELECT group_concat(to_step || ':' || note) FROM case_events") == "closed:");
  CHECK(text(*c, "SELECT count(*) FROM volunteers") == "0");
  CHECK(text(*c, "SELECT COALESCE(comment, 'none') || '/' || overall FROM surveys") == "none/4");
  // Reports still count the case, its step and its service.
  CHECK(text(*c, "SELECT reference || '/' || step || '/' || service_type FROM cases") == "AWN-1/closed/legal");
}

TEST_CASE("retention: a sweep step seeks beneficiaries by id and every lookup uses an index") {
  auto c = fresh_connection();
  auto q = c->prepare("EXPLAIN QUERY PLAN " + TEST_retention_scan_sql());
  REQUIRE(q.has_value());
  std::string plan;
  while (q->step().value()) plan += q->text(3) + "\n";
  CAPTURE(plan);
  CHECK(plan.find("SEARCH b USING INTEGER PRIMARY KEY") != std::string::npos);
  CHECK(plan.find("conversations_by_beneficiary") != std::string::npos);
  CHECK(plan.find("messages_by_conversation") != std::string::npos);
  CHECK(plan.find("COVERING INDEX cases_by_beneficiary") != std::string::npos);
  CHECK(plan.find("SCAN") == std::string::npos);  // no table read whole, per beneficiary or at all
  CHECK(plan.find("TEMP B-TREE") == std::string::npos);
}

TEST_CASE("retention: a sweep in steps sees every beneficiary once") {
  auto c = fresh_connection();
  std::vector<std::int64_t> expected;
  for (int i = 0; i < 23; ++i) {
    auto p = wrote_at(*c, "9665000001" + std::to_string(10 + i), i % 3 ? cut - 10 : cut + 10);
    if (i % 3) expected.push_back(p.id);
  }
  std::int64_t after = 0;
  std::vector<std::int64_t> found;
  std::vector<std::size_t> steps;
  for (;;) {
    auto s = scan_retention(*c, after, cut, 5);
    REQUIRE(s.has_value());
    steps.push_back(s->seen);
    found.insert(found.end(), s->due.begin(), s->due.end());
    if (s->seen < 5) break;
    CHECK(s->last_id > after);
    after = s->last_id;
  }
  CHECK(steps == std::vector<std::size_t>{5, 5, 5, 5, 3});
  CHECK(found == expected);
}

TEST_CASE("erasure leaves a reply not yet sent alone, and finds the sent ones through indexes") {
  auto c = fresh_connection();
  auto p = wrote_at(*c, "966500000001", cut);
  outbox_row o;
  o.message_id = 2;
  o.conversation_id = p.conversation;
  o.channel = "whatsapp";
  o.recipient = "966500000001";
  o.payload = R"({"text":"Thank you, Huda"})";
  o.created_at = cut;
  REQUIRE(outbox_enqueue(*c, o).has_value());
  REQUIRE(!erase_beneficiary(*c, p.id, cut));
  CHECK(text(*c, "SELECT state || payload FROM outbox") == R"(pending{"text":"Thank you, Huda"})");

  auto q = c->prepare(
      "EXPLAIN QUERY PLAN UPDATE outbox SET payload = '{}' WHERE message_id IN (SELECT m.id FROM conversations c "
      "JOIN messages m ON m.conversation_id = c.id WHERE c.beneficiary_id = 1) AND state <> 'pending' AND state <> 'sending'");
  REQUIRE(q.has_value());
  std::string plan;
  while (q->step().value()) plan += q->text(3) + "\n";
  CAPTURE(plan);
  CHECK(plan.find("outbox_by_message") != std::string::npos);
  CHECK(plan.find("SCAN") == std::string::npos);
}
