// Retention end to end: beneficiaries on WhatsApp, their rows moved back in time in the real
// database file, and the server's sweep at its next start (docs/privacy.md).
#include <doctest/doctest.h>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {

constexpr const char* national_id = "1757491186";

/// The intake of tests/transcripts/01; returns the new case's reference.
std::string help_request(staff_env& e, wa_user& b) {
  walk_intake(b);
  auto ref = db_text(e.db, "SELECT k.reference FROM cases k JOIN beneficiaries b ON b.id = k.beneficiary_id "
                           "WHERE b.address = '" + b.from + "'");
  REQUIRE(!ref.empty());
  return ref;
}

void close_case(staff_env& e, const std::string& token, const std::string& ref) {
  for (json body : {json{{"to", "collecting_info"}, {"verification_method", "document_check"}},
                    json{{"to", "evaluating"}}, json{{"to", "approved"}}, json{{"to", "closed"}}}) {
    auto r = api(e.port(), "POST", "/api/v1/cases/" + ref + "/transition", token, body);
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
}

/// Moves every timestamp of the beneficiary at `address` `days` back, as if it all had
/// happened that long ago.
void backdate(staff_env& e, const std::string& address, int days) {
  const std::string d = std::to_string(days * 86400);
  const std::string who = "(SELECT id FROM beneficiaries WHERE address = '" + address + "')";
  const std::string convs = "(SELECT id FROM conversations WHERE beneficiary_id = " + who + ")";
  db_exec(e.db, "BEGIN;"
                "UPDATE beneficiaries SET created_at = created_at - " + d + ", last_inbound_at = last_inbound_at - " + d +
                    " WHERE id = " + who + ";"
                "UPDATE conversations SET created_at = created_at - " + d + ", updated_at = updated_at - " + d +
                    ", last_message_at = last_message_at - " + d + ", queued_at = queued_at - " + d +
                    ", first_staff_reply_at = first_staff_reply_at - " + d + ", resolved_at = resolved_at - " + d +
                    " WHERE beneficiary_id = " + who + ";"
                "UPDATE messages SET created_at = created_at - " + d + " WHERE conversation_id IN " + convs + ";"
                "UPDATE outbox SET created_at = created_at - " + d + ", sent_at = sent_at - " + d +
                    " WHERE conversation_id IN " + convs + ";"
                "UPDATE cases SET created_at = created_at - " + d + ", updated_at = updated_at - " + d +
                    " WHERE beneficiary_id = " + who + ";"
                "UPDATE case_events SET at = at - " + d + " WHERE case_id IN (SELECT id FROM cases WHERE beneficiary_id = " +
                    who + ");"
                "COMMIT;");
}

long long nonempty_texts(staff_env& e, const std::string& address) {
  return db_value(e.db, "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                        "JOIN beneficiaries b ON b.id = c.beneficiary_id WHERE b.address = '" + address +
                        "' AND m.text <> ''");
}

}  // namespace

TEST_CASE("retention: a beneficiary silent past AOUN_RETENTION_DAYS is erased at the next start; "
          "one within it, or with an open case, keeps everything") {
  staff_env e(env_vars{{"AOUN_RETENTION_DAYS", "30"}});
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");

  // Past retention: a help request, closed by staff 31 days ago.
  wa_user old{e.port(), "966500000031"};
  auto old_ref = help_request(e, old);
  close_case(e, agent, old_ref);
  // Within retention: the same, 29 days ago.
  wa_user recent{e.port(), "966500000032"};
  auto recent_ref = help_request(e, recent);
  close_case(e, agent, recent_ref);
  // Past retention, but the case is still being evaluated.
  wa_user open{e.port(), "966500000033"};
  auto open_ref = help_request(e, open);
  auto r = api(e.port(), "POST", "/api/v1/cases/" + open_ref + "/transition", agent,
               json{{"to", "collecting_info"}, {"verification_method", "interview"}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));

  backdate(e, old.from, 31);
  backdate(e, recent.from, 29);
  backdate(e, open.from, 31);
  const auto recent_texts = nonempty_texts(e, recent.from);
  const auto open_texts = nonempty_texts(e, open.from);
  REQUIRE(nonempty_texts(e, old.from) > 10);
  const auto old_conversation = conversation_of(e.db, old.from);

  CHECK(e.restart() == 0);
  REQUIRE(eventually([&] { return e.srv->errors().find("\"retention_sweep_done\"") != std::string::npos; }));
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE erased_at IS NOT NULL") == 1);

  // The one past retention: transcript, case fields and the outbox's copies are gone.
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + old.from + "' AND erased_at IS NOT NULL") == 1);
  CHECK(nonempty_texts(e, old.from) == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE conversation_id = " + std::to_string(old_conversation) +
                           " AND payload LIKE '%" + national_id + "%'") == 0);
  auto token = login(e.port());
  auto transcript = as_json(api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(old_conversation) + "/messages", token));
  REQUIRE(transcript["messages"].size() > 10);
  for (auto& m : transcript["messages"]) CHECK(m["text"] == "");
  auto k = as_json(api(e.port(), "GET", "/api/v1/cases/" + old_ref, token));
  CHECK(k["full_name"] == "[erased]");
  CHECK(k["national_id"] == "");
  CHECK(k["step"] == "closed");  // reports still count it

  // The others keep everything.
  CHECK(nonempty_texts(e, recent.from) == recent_texts);
  CHECK(nonempty_texts(e, open.from) == open_texts);
  for (const auto& ref : {recent_ref, open_ref})
    CHECK(as_json(api(e.port(), "GET", "/api/v1/cases/" + ref, token))["national_id"] == national_id);

  // Audited, counted, logged by id only.
  const auto old_id = db_value(e.db, "SELECT id FROM beneficiaries WHERE address = '" + old.from + "'");
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary.erase' AND staff_id IS NULL AND "
                       "target = 'beneficiary:" + std::to_string(old_id) + "' AND detail LIKE '%retention%'") == 1);
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("\naoun_retention_erased_total 1\n") != std::string::npos);
  auto log = e.srv->errors();
  CHECK(log.find("\"beneficiary_erased\"") != std::string::npos);
  CHECK(log.find(national_id) == std::string::npos);
  CHECK(log.find(old.from) == std::string::npos);

  // Erased once: the next start erases no one again.
  CHECK(e.restart() == 0);
  REQUIRE(eventually([&] { return e.srv->errors().find("\"retention_sweep_done\"") != std::string::npos; }));
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("\naoun_retention_erased_total 0\n") != std::string::npos);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary.erase'") == 1);
}

TEST_CASE("delete my data while replies still wait to go: they go with their text, then forget it") {
  staff_env e;
  // The Graph API holds every send until told: the whole intake's replies, the summary with
  // the name among them, are still in the outbox (one in flight, the rest behind it) when
  // the person asks for the erasure.
  std::atomic<bool> hold{true};
  e.graph.set_default([&](const recorded_request&) {
    for (int i = 0; hold && i < 400; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    static std::atomic<int> n{0};
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.HELD)" +
                                      std::to_string(++n) + R"("}]})"};
  });
  wa_user b{e.port(), "966500000035"};
  walk_intake(b);
  b.text("احذف بياناتي");
  b.button("erase.yes", "نعم");
  REQUIRE(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + b.from + "' AND erased_at IS NOT NULL") == 1);
  REQUIRE(db_value(e.db, "SELECT count(*) FROM outbox WHERE payload LIKE '%السبيعي%' AND state IN ('pending', 'sending')") >= 1);
  hold = false;
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }, std::chrono::seconds(20)));
  // Every reply went, in order, the summary with what they typed in it ...
  CHECK(wa_sent_containing(e.graph, b.from, "السبيعي"));
  CHECK(wa_sent_containing(e.graph, b.from, "حذفنا"));
  // ... and no copy of it stays behind for staff to list.
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE payload LIKE '%السبيعي%'") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE erase_when_done = 1 AND payload <> '{}'") == 0);
}

TEST_CASE("delete my data: erased at once, in the transaction of the reply saying so; audited, counted, logged by id") {
  staff_env e;
  wa_user b{e.port(), "966500000034"};
  auto ref = help_request(e, b);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  // The summary repeated the name (the ID only by its last four digits).
  REQUIRE(db_value(e.db, "SELECT count(*) FROM outbox WHERE payload LIKE '%السبيعي%'") >= 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE payload LIKE '%" + std::string(national_id) + "%'") == 0);
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("\naoun_erasures_requested_total 0\n") != std::string::npos);

  b.text("احذف بياناتي");
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE erased_at IS NOT NULL") == 0);  // asks first
  b.button("erase.yes", "نعم");
  // Acknowledged means committed: the erasure is already on disk when the webhook's 200 comes.
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + b.from + "' AND erased_at IS NOT NULL") == 1);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, "حذفنا"); }));

  // What is left of the transcript is the reply that says so.
  CHECK(db_value(e.db, "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                       "JOIN beneficiaries b ON b.id = c.beneficiary_id WHERE b.address = '" + b.from +
                       "' AND m.text <> '' AND m.text NOT LIKE '%حذفنا%'") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE payload LIKE '%السبيعي%'") == 0);
  auto token = login(e.port());
  auto k = as_json(api(e.port(), "GET", "/api/v1/cases/" + ref, token));
  CHECK(k["full_name"] == "[erased]");
  CHECK(k["national_id"] == "");

  const auto id = db_value(e.db, "SELECT id FROM beneficiaries WHERE address = '" + b.from + "'");
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary.erase' AND staff_id IS NULL AND "
                       "target = 'beneficiary:" + std::to_string(id) + "' AND detail = '{\"channel\":\"whatsapp\",\"reason\":\"requested\"}'") == 1);
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("\naoun_erasures_requested_total 1\n") != std::string::npos);
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("\naoun_retention_erased_total 0\n") != std::string::npos);
  auto log = e.srv->errors();
  CHECK(log.find("\"beneficiary_erased\"") != std::string::npos);
  CHECK(log.find("\"requested\"") != std::string::npos);
  CHECK(log.find(national_id) == std::string::npos);
  CHECK(log.find(b.from) == std::string::npos);
}
