// WhatsApp end to end: signed webhooks into the real server, replies out to a fake Graph API.
#include <doctest/doctest.h>

#include "channels_helpers.hpp"
#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {
using env = channel_server;
}  // namespace

TEST_CASE("WhatsApp verification handshake") {
  env e;
  auto ok = http_call(e.port(), "GET", "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444");
  CHECK(ok.status == 200);
  CHECK(ok.body == "1158201444");
  auto bad = http_call(e.port(), "GET", "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1");
  CHECK(bad.status == 403);
}

TEST_CASE("WhatsApp: a signed message is stored, answered 200, and the reply reaches the Graph API") {
  env e;
  auto body = wa_text("966500000001", "wamid.A1", "السلام عليكم");
  auto r = post_wa(e.port(), body);
  CHECK(r.status == 200);
  // Committed before the 200: the message is in the database now.
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND provider_id = 'wamid.A1'") == 1);
  REQUIRE(e.graph.wait_for(1));
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  auto sends = wa_sends(e.graph, "966500000001");
  REQUIRE(!sends.empty());
  auto req = e.graph.requests()[0];
  CHECK(req.target == "/v21.0/106540352242922/messages");
  CHECK(req.headers["authorization"] == "Bearer graph-token");
  // The welcome carries the privacy notice and asks for consent with buttons.
  bool consent_buttons = false;
  for (auto& s : sends)
    if (s.contains("interactive")) consent_buttons = true;
  CHECK(consent_buttons);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == (long long)sends.size());
}

TEST_CASE("WhatsApp: bad or missing signature is 401 and nothing is stored") {
  env e;
  auto body = wa_text("966500000002", "wamid.B1", "hello");
  CHECK(post_wa(e.port(), body, "wrong-secret").status == 401);
  CHECK(http_call(e.port(), "POST", "/webhooks/whatsapp", body).status == 401);
  auto tampered = body;
  tampered[tampered.size() / 2] = tampered[tampered.size() / 2] == 'a' ? 'b' : 'a';
  CHECK(http_call(e.port(), "POST", "/webhooks/whatsapp", tampered,
                  {{"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(wa_secret, body)}})
            .status == 401);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM processed_webhooks") == 0);
}

TEST_CASE("WhatsApp: malformed JSON with a valid signature is 400 and nothing is stored") {
  env e;
  for (std::string body : {std::string("{"), std::string("[]"), std::string("{\"object\":\"whatsapp_business_account\",\"entry\":5}"),
                           std::string("\xff\xfe")}) {
    CHECK(post_wa(e.port(), body).status == 400);
  }
  CHECK(db_value(e.db, "SELECT count(*) FROM messages") == 0);
}

TEST_CASE("WhatsApp: an event naming no sender is recorded, and the rest of its request still goes through") {
  env e;
  // Two messages in one signed request; the second names no sender (no "from", and two
  // contacts, so none can stand in for it).
  auto j = nlohmann::json::parse(wa_text("966500000009", "wamid.G1", "السلام عليكم"));
  auto& v = j["entry"][0]["changes"][0]["value"];
  auto orphan = v["messages"][0];
  orphan.erase("from");
  orphan["id"] = "wamid.G2";
  v["messages"].push_back(orphan);
  v["contacts"].push_back({{"profile", {{"name", "x"}}}, {"wa_id", "966500000010"}});
  const auto body = j.dump();
  CHECK(post_wa(e.port(), body).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND provider_id = 'wamid.G1'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'webhook_event_unroutable' "
                       "AND target = 'whatsapp:wamid.G2' AND staff_id IS NULL") == 1);
  REQUIRE(e.graph.wait_for(1));
  CHECK(!wa_sends(e.graph, "966500000009").empty());
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("aoun_webhook_unroutable_total 1") != std::string::npos);
  // The provider's retry of the same request is a duplicate, both events.
  CHECK(post_wa(e.port(), body).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'webhook_event_unroutable'") == 1);
}

TEST_CASE("WhatsApp: a change for another number of the same Meta app is answered 200 and left alone") {
  env e;
  // One request, two changes: ours, and one for phone_number_id 999 (another number on the app).
  auto j = nlohmann::json::parse(wa_text("966500000011", "wamid.N1", "السلام عليكم"));
  auto other = j["entry"][0]["changes"][0];
  other["value"]["metadata"]["phone_number_id"] = "999";
  other["value"]["contacts"][0]["wa_id"] = "966500000012";
  other["value"]["messages"][0]["from"] = "966500000012";
  other["value"]["messages"][0]["id"] = "wamid.N2";
  j["entry"][0]["changes"].push_back(other);
  CHECK(post_wa(e.port(), j.dump()).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND provider_id = 'wamid.N1'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE provider_id = 'wamid.N2'") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000012'") == 0);
  REQUIRE(e.graph.wait_for(1));
  CHECK(wa_sends(e.graph, "966500000012").empty());
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("aoun_webhook_other_number_total 1") != std::string::npos);
}

TEST_CASE("WhatsApp: a 2 MiB webhook batch is taken whatever AOUN_BODY_LIMIT says (Meta's go up to 3 MB)") {
  staff_env e(env_vars{{"AOUN_BODY_LIMIT", "65536"}});
  auto j = nlohmann::json::parse(wa_text("966500000013", "wamid.BIG1", "السلام عليكم"));
  j["entry"][0]["changes"][0]["value"]["padding"] = std::string(2 * 1024 * 1024, 'x');  // a member we do not read
  CHECK(post_wa(e.port(), j.dump()).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE provider_id = 'wamid.BIG1'") == 1);
}

TEST_CASE("WhatsApp: every official sample payload is accepted with 200") {
  env e;
  for (const char* f : {"whatsapp_text.json", "whatsapp_button_reply.json", "whatsapp_list_reply.json",
                        "whatsapp_image.json", "whatsapp_document.json", "whatsapp_location.json",
                        "whatsapp_status_sent.json", "whatsapp_status_delivered.json", "whatsapp_status_read.json",
                        "whatsapp_status_failed.json"}) {
    CAPTURE(f);
    CHECK(post_wa(e.port(), fixture(f)).status == 200);
  }
  // The fixtures share one wamid for text/image/document/location: the later ones are duplicates.
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 2);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'text'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'choice'") == 1);
}

TEST_CASE("WhatsApp: duplicates are dropped, also after a restart") {
  env e;
  auto body = wa_text("966500000003", "wamid.C1", "مرحبا");
  CHECK(post_wa(e.port(), body).status == 200);
  REQUIRE(e.graph.wait_for(1));
  CHECK(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  auto replies = db_value(e.db, "SELECT count(*) FROM outbox");
  CHECK(post_wa(e.port(), body).status == 200);  // provider retry
  CHECK(e.restart() == 0);
  CHECK(post_wa(e.port(), body).status == 200);  // retry after our restart
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == replies);
}

TEST_CASE("WhatsApp: dedupe keys are kept 30 days, then pruned (at start, then hourly)") {
  env e;
  auto body = wa_text("966500000013", "wamid.KEEP", "مرحبا");
  CHECK(post_wa(e.port(), body).status == 200);
  // That key 29 days old, and one from a month ago.
  db_exec(e.db, "UPDATE processed_webhooks SET received_at = received_at - 29 * 86400 WHERE provider_id = 'wamid.KEEP'");
  db_exec(e.db, "INSERT INTO processed_webhooks (channel, provider_id, received_at) VALUES "
                "('whatsapp', 'wamid.OLD', CAST(strftime('%s', 'now') AS INTEGER) - 31 * 86400)");
  CHECK(e.restart() == 0);
  CHECK(eventually([&] { return db_value(e.db, "SELECT count(*) FROM processed_webhooks WHERE provider_id = 'wamid.OLD'") == 0; }));
  CHECK(db_value(e.db, "SELECT count(*) FROM processed_webhooks WHERE provider_id = 'wamid.KEEP'") == 1);
  // Within the 30 days a retry is still a duplicate.
  CHECK(post_wa(e.port(), body).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 1);
}

TEST_CASE("WhatsApp: a delivery status updates our outbound message") {
  env e;
  e.graph.set_default([](const recorded_request&) {
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT1"}]})"};
  });
  CHECK(post_wa(e.port(), wa_text("16505551234", "wamid.D1", "hi")).status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE provider_message_id = 'wamid.OUT1'") >= 1; }));
  auto status = fixture("whatsapp_status_read.json");
  auto j = json::parse(status);
  j["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = "wamid.OUT1";
  CHECK(post_wa(e.port(), j.dump()).status == 200);
  CHECK(db_text(e.db, "SELECT delivery_status FROM outbox WHERE provider_message_id = 'wamid.OUT1' LIMIT 1") == "read");
  // A late "delivered" does not move it back.
  j["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "delivered";
  CHECK(post_wa(e.port(), j.dump()).status == 200);
  CHECK(db_text(e.db, "SELECT delivery_status FROM outbox WHERE provider_message_id = 'wamid.OUT1' LIMIT 1") == "read");
}

TEST_CASE("WhatsApp: a message WhatsApp could not hand over is answered; a reaction is not") {
  channel_server e;
  const std::string from = "966500000601";
  REQUIRE(post_wa(e.port(), wa_text(from, "wamid.UNS0", "مرحبا")).status == 200);
  const auto greeted = db_value(e.db, "SELECT count(*) FROM outbox");
  auto post = [&](const std::string& wamid, const nlohmann::json& message) {
    auto j = nlohmann::json::parse(fixture("whatsapp_text.json"));
    auto& v = j["entry"][0]["changes"][0]["value"];
    v["contacts"][0]["wa_id"] = from;
    nlohmann::json m = message;
    m["from"] = from;
    m["id"] = wamid;
    m["timestamp"] = wa_now();
    v["messages"] = nlohmann::json::array({m});
    REQUIRE(post_wa(e.port(), j.dump()).status == 200);
  };
  // As the Cloud API sends it (type "unsupported", errors 131051).
  post("wamid.UNS1", {{"type", "unsupported"},
                      {"errors", {{{"code", 131051}, {"title", "Message type unknown"},
                                   {"message", "Message type unknown"},
                                   {"error_data", {{"details", "Message type is currently not supported."}}}}}}});
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == greeted + 1);
  const auto text = db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox ORDER BY id DESC LIMIT 1");
  CHECK(text.find("لم نتمكن من قراءة رسالتكم") != std::string::npos);
  // A reaction is not a message to answer, nor a vote in a poll; and the notice is not repeated
  // within ten minutes (another bot on WhatsApp would otherwise start a ping-pong).
  post("wamid.UNS2", {{"type", "reaction"}, {"reaction", {{"message_id", "wamid.UNS0"}, {"emoji", "👍"}}}});
  post("wamid.UNS3", {{"type", "unsupported"}, {"unsupported", {{"type", "poll_update"}}}});
  post("wamid.UNS4", {{"type", "unsupported"}, {"unsupported", {{"type", "view_once"}}}});
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == greeted + 1);
  CHECK(db_text(e.db, "SELECT group_concat(payload, ' ') FROM messages WHERE direction = 'in'").find("unsupported.poll_update") !=
        std::string::npos);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, from, "لم نتمكن من قراءة رسالتكم"); }));
}

namespace {
/// WhatsApp's notice that the person at `from` now writes from `to` (user_changed_number).
std::string wa_number_changed(const std::string& from, const std::string& to, const std::string& wamid) {
  auto j = nlohmann::json::parse(fixture("whatsapp_system_user_changed_number.json"));
  auto& m = j["entry"][0]["changes"][0]["value"]["messages"][0];
  m["from"] = from;
  m["id"] = wamid;
  m["timestamp"] = std::to_string(std::time(nullptr));  // the change happens now
  m["system"]["wa_id"] = to;
  m["system"]["body"] = "User Nora changed from " + from + " to " + to;
  return j.dump();
}
}  // namespace

TEST_CASE("WhatsApp: after a number change the person keeps their conversation and case, and nothing more goes to the old number") {
  staff_env e;
  wa_user before{e.port(), "966500000701"};
  walk_intake(before);
  const auto cid = conversation_of(e.db, before.from);
  REQUIRE(db_value(e.db, "SELECT count(*) FROM cases") == 1);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  const auto to_old = wa_sends(e.graph, before.from).size();

  const auto notice = wa_number_changed(before.from, "966500000702", "wamid.CHANGE1");
  CHECK(post_wa(e.port(), notice).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000701'") == 0);
  CHECK(conversation_of(e.db, "966500000702") == cid);
  CHECK(db_value(e.db, "SELECT count(*) FROM cases c JOIN beneficiaries b ON b.id = c.beneficiary_id "
                       "WHERE b.address = '966500000702'") == 1);
  // Staff see WhatsApp's own sentence in the conversation, and the change is audited.
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE provider_id = 'wamid.CHANGE1' AND kind = 'unsupported' "
                       "AND text LIKE '%966500000702' AND conversation_id = " + std::to_string(cid)) == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary_address_changed'") == 1);
  // A retry of the notice is a duplicate.
  CHECK(post_wa(e.port(), notice).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary_address_changed'") == 1);

  // From the new number the person carries on in the same conversation: a human, please.
  wa_user after{e.port(), "966500000702"};
  after.text("موظف");
  CHECK(conversation_of(e.db, after.from) == cid);
  CHECK(db_value(e.db, "SELECT count(*) FROM conversations WHERE mode = 'waiting' AND id = " + std::to_string(cid)) == 1);
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "huda", "agent", "هدى");
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", agent).status == 200);
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent,
              nlohmann::json{{"text", "أهلاً نورة، معك هدى"}})
              .status == 200);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, after.from, "معك هدى"); }));
  CHECK(wa_sends(e.graph, before.from).size() == to_old);
}

TEST_CASE("WhatsApp: someone who wrote from their new number before the notice came is one person again") {
  staff_env e;
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "huda", "agent", "هدى");
  stream_client live(e.port(), "/api/v1/stream?token=" + agent);
  REQUIRE(live.status == 101);
  REQUIRE(live.wait_for([](const nlohmann::json& ev) { return ev["type"] == "ready"; }));

  wa_user before{e.port(), "966500000711"};
  before.text("السلام عليكم");
  before.button("consent.yes", "أوافق");
  wa_user after{e.port(), "966500000712"};
  after.text("السلام عليكم");  // a stranger to us, until WhatsApp says otherwise
  const auto kept = conversation_of(e.db, before.from);
  const auto folded = conversation_of(e.db, after.from);
  REQUIRE(kept != folded);
  REQUIRE(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 2);

  CHECK(post_wa(e.port(), wa_number_changed(before.from, after.from, "wamid.CHANGE2")).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM conversations") == 1);
  CHECK(conversation_of(e.db, after.from) == kept);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE consented_at IS NOT NULL") == 1);
  // Consoles drop the folded conversation and follow the person to the kept one.
  CHECK(live.wait_for([&](const nlohmann::json& ev) {
    return ev["type"] == "conversation.merged" && ev["conversation_id"] == folded && ev["into"] == kept;
  }));
  CHECK(api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(folded), agent).status == 404);
  auto msgs = as_json(api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(kept) + "/messages", agent));
  int from_new = 0;
  for (auto& m : msgs["messages"])
    if (m["direction"] == "in" && m["text"] == "السلام عليكم") ++from_new;
  CHECK(from_new == 2);  // one from each number, in one transcript
  // The person consented from the old number: from the new one they are not asked again.
  after.text("١");
  CHECK(eventually([&] { return wa_sent_containing(e.graph, after.from, locale_text("ar", "intake.full_name")); }));
}

TEST_CASE("WhatsApp: a new number that someone else used before is not merged with the person") {
  staff_env e;
  wa_user previous_holder{e.port(), "966500000722"};
  previous_holder.text("السلام عليكم");
  // The previous holder wrote 40 days ago.
  db_exec(e.db, "UPDATE beneficiaries SET created_at = created_at - 40 * 86400, last_inbound_at = last_inbound_at - "
                "40 * 86400 WHERE address = '966500000722'");
  const auto theirs = conversation_of(e.db, previous_holder.from);
  wa_user person{e.port(), "966500000721"};
  person.text("السلام عليكم");
  const auto mine = conversation_of(e.db, person.from);
  CHECK(post_wa(e.port(), wa_number_changed(person.from, previous_holder.from, "wamid.CHANGE3")).status == 200);
  CHECK(conversation_of(e.db, "966500000722") == mine);
  CHECK(db_value(e.db, "SELECT count(*) FROM conversations") == 2);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries b JOIN conversations c ON c.beneficiary_id = b.id WHERE "
                       "b.address LIKE 'retired:%' AND c.id = " + std::to_string(theirs)) == 1);
  // Staff cannot write to the previous holder at a number that is no longer theirs. (Say they
  // wrote lately, so that taking over their conversation means to send them a notice.)
  db_exec(e.db, "UPDATE beneficiaries SET last_inbound_at = CAST(strftime('%s', 'now') AS INTEGER) WHERE address LIKE 'retired:%'");
  const auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "huda", "agent", "هدى");
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(theirs) + "/takeover", agent).status == 200);
  auto r = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(theirs) + "/messages", agent,
               nlohmann::json{{"text", "مرحبا"}});
  CHECK(r.status == 409);
  CHECK_MESSAGE(r.body.find("belongs to someone else") != std::string::npos, r.body);
  // Their replies that did not go (the welcome, the takeover notice) cannot be sent again, and
  // nothing ever left for a retired address.
  const auto dead = db_value(e.db, "SELECT max(id) FROM outbox WHERE state = 'dead' AND recipient LIKE 'retired:%'");
  REQUIRE(dead > 0);
  CHECK(api(e.port(), "POST", "/api/v1/outbox/" + std::to_string(dead) + "/retry", admin).status == 409);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(theirs) + "/template", agent,
            nlohmann::json{{"name", "aoun_followup"}})
            .status == 409);
  for (auto& req : e.graph.requests()) CHECK(req.body.find("retired:") == std::string::npos);
}

namespace {
/// A WhatsApp text as Meta sends it since BSUIDs: the user id beside the number, or alone when
/// the person took a username and the number is withheld (`from` empty).
std::string wa_text_with_user_id(const std::string& from, const std::string& user_id, const std::string& wamid,
                                 const std::string& text) {
  auto j = nlohmann::json::parse(wa_text(from.empty() ? "x" : from, wamid, text));
  auto& v = j["entry"][0]["changes"][0]["value"];
  v["contacts"][0]["user_id"] = user_id;
  v["messages"][0]["from_user_id"] = user_id;
  v["messages"][0]["timestamp"] = std::to_string(std::time(nullptr));  // written just now
  if (from.empty()) {
    v["contacts"][0].erase("wa_id");
    v["messages"][0].erase("from");
  }
  return j.dump();
}
}  // namespace

TEST_CASE("WhatsApp: a person who hides their number behind a username is still the person we know") {
  staff_env e;
  // Known by the number, with the user id beside it.
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000731", "SA.731", "wamid.U1", "السلام عليكم")).status == 200);
  REQUIRE(post_wa(e.port(), wa_button("966500000731", "wamid.U2", "consent.yes", "أوافق")).status == 200);
  const auto cid = conversation_of(e.db, "966500000731");
  // Then the number is withheld: the user id alone.
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("", "SA.731", "wamid.U3", "١")).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(db_value(e.db, "SELECT conversation_id FROM messages WHERE provider_id = 'wamid.U3'") == cid);
  // The same dialog goes on (consented, into the intake), answered at the number we know.
  CHECK(eventually([&] { return wa_sent_containing(e.graph, "966500000731", locale_text("ar", "intake.full_name")); }));
  CHECK(wa_sends(e.graph, "SA.731").empty());
}

TEST_CASE("WhatsApp: someone first seen by their user id alone is one person with their number once both come") {
  staff_env e;
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("", "SA.741", "wamid.V1", "السلام عليكم")).status == 200);
  const auto cid = conversation_of(e.db, "SA.741");
  REQUIRE(cid > 0);
  const auto bid = db_value(e.db, "SELECT id FROM beneficiaries WHERE address = 'SA.741'");
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000741", "SA.741", "wamid.V2", "مرحبا")).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  // Their record stays theirs (not one begun a moment ago for the number).
  CHECK(db_value(e.db, "SELECT id FROM beneficiaries WHERE address = '966500000741'") == bid);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000741' AND user_id = 'SA.741'") == 1);
  CHECK(conversation_of(e.db, "966500000741") == cid);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND conversation_id = " + std::to_string(cid)) == 2);
}

TEST_CASE("WhatsApp: replies to someone known only by their user id go in `recipient`") {
  staff_env e;
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("", "SA.751", "wamid.W1", "السلام عليكم")).status == 200);
  REQUIRE(eventually([&] {
    for (auto& r : e.graph.requests())
      if (r.body.find("\"recipient\":\"SA.751\"") != std::string::npos) return true;
    return false;
  }));
  for (auto& r : e.graph.requests()) CHECK(r.body.find("\"to\":\"SA.751\"") == std::string::npos);
}

TEST_CASE("WhatsApp: a new user id for someone whose number is withheld keeps them who they are") {
  staff_env e;
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000761", "SA.761", "wamid.X1", "السلام عليكم")).status == 200);
  const auto cid = conversation_of(e.db, "966500000761");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  // user_changed_user_id, the number withheld: no `from`, the previous id and the new one.
  auto j = nlohmann::json::parse(fixture("whatsapp_system_user_changed_number.json"));
  auto& m = j["entry"][0]["changes"][0]["value"]["messages"][0];
  m.erase("from");
  m["from_user_id"] = "SA.761";
  m["id"] = "wamid.X2";
  m["timestamp"] = std::to_string(std::time(nullptr));
  m["system"] = {{"type", "user_changed_user_id"}, {"body", "x"}, {"user_id", "SA.762"}, {"previous_user_id", "SA.761"}};
  REQUIRE(post_wa(e.port(), j.dump()).status == 200);
  // Meta makes a new id when the number changes, and this one is not shared: the person now
  // lives at the new id, and the number we knew is not written to any more.
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = 'SA.762'") == 1);
  CHECK(conversation_of(e.db, "SA.762") == cid);
  const auto to_number = wa_sends(e.graph, "966500000761").size();
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("", "SA.762", "wamid.X3", "مرحبا")).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(db_value(e.db, "SELECT conversation_id FROM messages WHERE provider_id = 'wamid.X3'") == cid);
  CHECK(eventually([&] { return !wa_sends(e.graph, "SA.762").empty(); }));  // answered in `recipient`
  CHECK(wa_sends(e.graph, "966500000761").size() == to_number);
}

TEST_CASE("WhatsApp: a number that writes under another user id has a new holder, who is not told the last one's case") {
  staff_env e;
  wa_user a{e.port(), "966500000771"};
  REQUIRE(post_wa(e.port(), wa_text_with_user_id(a.from, "SA.771", "wamid.Y1", "السلام عليكم")).status == 200);
  walk_intake(a);
  const auto theirs = conversation_of(e.db, a.from);
  REQUIRE(db_value(e.db, "SELECT count(*) FROM cases") == 1);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  const auto consent_asks = [&] {
    int n = 0;
    for (auto& s : wa_sends(e.graph, a.from))
      if (s.contains("interactive") && s.dump().find("consent.yes") != std::string::npos) ++n;
    return n;
  };
  const int asked_before = consent_asks();
  // The operator gave the number to someone else: WhatsApp names another user id.
  REQUIRE(post_wa(e.port(), wa_text_with_user_id(a.from, "SA.772", "wamid.Y2", "مرحبا")).status == 200);
  const auto mine = conversation_of(e.db, a.from);
  CHECK(mine != theirs);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000771' AND user_id = 'SA.772' "
                       "AND consented_at IS NULL") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries b JOIN conversations c ON c.beneficiary_id = b.id WHERE "
                       "b.address LIKE 'retired:%' AND c.id = " + std::to_string(theirs)) == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM cases WHERE mobile = ''") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary_number_reassigned'") == 1);
  // The newcomer is asked for consent, as anyone new.
  CHECK(eventually([&] { return consent_asks() == asked_before + 1; }));
}

TEST_CASE("WhatsApp: after a number change the person's new user id is theirs, whatever order WhatsApp sends things in") {
  staff_env e;
  // A notice without the new user id: the person's next message from the new number, under a
  // new id, is still them (a new number always comes with a new id).
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000781", "SA.781", "wamid.Z1", "السلام عليكم")).status == 200);
  const auto cid = conversation_of(e.db, "966500000781");
  auto notice = nlohmann::json::parse(wa_number_changed("966500000781", "966500000782", "wamid.Z2"));
  auto& sys = notice["entry"][0]["changes"][0]["value"]["messages"][0]["system"];
  sys.erase("user_id");
  sys.erase("previous_user_id");
  REQUIRE(post_wa(e.port(), notice.dump()).status == 200);
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000782", "SA.782", "wamid.Z3", "مرحبا")).status == 200);
  CHECK(conversation_of(e.db, "966500000782") == cid);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE user_id = 'SA.782'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary_number_reassigned'") == 0);

  // The first message from the new number before the notice: one person, with the new id.
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000791", "SA.791", "wamid.Z4", "السلام عليكم")).status == 200);
  const auto cid2 = conversation_of(e.db, "966500000791");
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000792", "SA.792", "wamid.Z5", "مرحبا")).status == 200);
  auto notice2 = nlohmann::json::parse(wa_number_changed("966500000791", "966500000792", "wamid.Z6"));
  auto& sys2 = notice2["entry"][0]["changes"][0]["value"]["messages"][0]["system"];
  sys2["user_id"] = "SA.792";
  sys2["previous_user_id"] = "SA.791";
  REQUIRE(post_wa(e.port(), notice2.dump()).status == 200);
  CHECK(conversation_of(e.db, "966500000792") == cid2);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000792' AND user_id = 'SA.792'") == 1);
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000792", "SA.792", "wamid.Z7", "شكرا")).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 2);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary_number_reassigned'") == 0);
}

TEST_CASE("WhatsApp: a number's new holder who first wrote under their user id alone carries on; an old message changes nothing") {
  staff_env e;
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000801", "SA.801", "wamid.AA1", "السلام عليكم")).status == 200);
  const auto last_holder = conversation_of(e.db, "966500000801");
  // The newcomer writes first with their id alone, consents, then with the number too.
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("", "SA.802", "wamid.AA2", "السلام عليكم")).status == 200);
  const auto newcomer = conversation_of(e.db, "SA.802");
  REQUIRE(post_wa(e.port(), wa_button("SA.802", "wamid.AA3", "consent.yes", "أوافق")).status == 200);
  auto both = nlohmann::json::parse(wa_text_with_user_id("966500000801", "SA.802", "wamid.AA4", "١"));
  REQUIRE(post_wa(e.port(), both.dump()).status == 200);
  CHECK(conversation_of(e.db, "966500000801") == newcomer);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000801' AND user_id = 'SA.802' "
                       "AND consented_at IS NOT NULL") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries b JOIN conversations c ON c.beneficiary_id = b.id WHERE "
                       "b.address LIKE 'retired:%' AND c.id = " + std::to_string(last_holder)) == 1);
  // A message of the last holder's, written an hour ago and delivered now, is filed and moves
  // nothing: the number stays the newcomer's.
  auto late = nlohmann::json::parse(wa_text_with_user_id("966500000801", "SA.801", "wamid.AA5", "قديمة"));
  late["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = std::to_string(std::time(nullptr) - 3600);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  const auto rows_before = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(post_wa(e.port(), late.dump()).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000801' AND user_id = 'SA.802'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary_number_reassigned'") == 1);
  // It is filed with the last holder, who wrote it, not in the newcomer's conversation; and
  // not answered (the number is not theirs any more), nor queued for staff who could not reply.
  CHECK(db_value(e.db, "SELECT conversation_id FROM messages WHERE provider_id = 'wamid.AA5'") == last_holder);
  CHECK(db_value(e.db, "SELECT count(*) FROM conversations WHERE mode IN ('bot', 'resolved') AND queued_at IS NULL "
                       "AND id = " + std::to_string(last_holder)) == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == rows_before);
  // Danger words from them still bring a person to look, though nothing can be sent to them.
  auto danger = nlohmann::json::parse(wa_text_with_user_id("966500000801", "SA.801", "wamid.AA6", "أبي أنتحر"));
  danger["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = std::to_string(std::time(nullptr) - 3600);
  REQUIRE(post_wa(e.port(), danger.dump()).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM conversations WHERE mode = 'waiting' AND priority = 1 AND "
                       "queue_reason = 'danger' AND id = " + std::to_string(last_holder)) == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == rows_before);
}

TEST_CASE("WhatsApp: a message written from the old number before a change, delivered after the notice, reaches the person") {
  staff_env e;
  wa_user before{e.port(), "966500000811"};
  before.text("السلام عليكم");
  before.button("consent.yes", "أوافق");
  const auto cid = conversation_of(e.db, before.from);
  const auto settled = [&] {
    return eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; });
  };
  REQUIRE(settled());
  const auto to_old = wa_sends(e.graph, before.from).size();
  const auto to_new = wa_sends(e.graph, "966500000812").size();

  const auto notice = wa_number_changed(before.from, "966500000812", "wamid.LATE0");
  const std::int64_t changed_at =
      std::stoll(nlohmann::json::parse(notice)["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"].get<std::string>());
  REQUIRE(post_wa(e.port(), notice).status == 200);
  // Written two minutes before the change, delivered (or retried by Meta) after it.
  const auto written = [&](const std::string& wamid, std::int64_t at, const std::string& text) {
    auto j = nlohmann::json::parse(wa_text(before.from, wamid, text));
    j["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = std::to_string(at);
    return j.dump();
  };
  REQUIRE(post_wa(e.port(), written("wamid.LATE1", changed_at - 120, "١")).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(db_value(e.db, "SELECT conversation_id FROM messages WHERE provider_id = 'wamid.LATE1'") == cid);
  // Staff see which number it came from.
  CHECK(db_text(e.db, "SELECT json_extract(payload, '$.written_from') FROM messages WHERE provider_id = 'wamid.LATE1'") ==
        before.from);
  // It is a turn of the person's dialog (the main menu's "1": the intake), answered at the new number.
  CHECK(eventually([&] { return wa_sent_containing(e.graph, "966500000812", locale_text("ar", "intake.full_name")); }));
  REQUIRE(settled());
  CHECK(wa_sends(e.graph, before.from).size() == to_old);
  CHECK(wa_sends(e.graph, "966500000812").size() > to_new);
  // One written an hour before the change (a retry Meta kept for long): filed with them, not a
  // turn (an old "2" must not answer the question asked now).
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(post_wa(e.port(), written("wamid.LATE3", changed_at - 3600, "٢")).status == 200);
  CHECK(db_value(e.db, "SELECT conversation_id FROM messages WHERE provider_id = 'wamid.LATE3'") == cid);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == rows);

  // Written after the change: the old number's next holder, a stranger asked for consent there.
  REQUIRE(post_wa(e.port(), written("wamid.LATE2", changed_at + 60, "السلام عليكم")).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 2);
  CHECK(conversation_of(e.db, before.from) != cid);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000811' AND consented_at IS NULL") == 1);
  CHECK(eventually([&] { return wa_sends(e.graph, before.from).size() > to_old; }));

  // Once Meta has stopped retrying (a week), the old number is forgotten: at start, then hourly.
  REQUIRE(db_value(e.db, "SELECT count(*) FROM address_moves WHERE from_address = '966500000811'") == 1);
  db_exec(e.db, "UPDATE address_moves SET recorded_at = recorded_at - 8 * 86400 - 1");
  CHECK(e.restart() == 0);
  CHECK(eventually([&] { return db_value(e.db, "SELECT count(*) FROM address_moves") == 0; }));
}

TEST_CASE("WhatsApp: a late message under the old number's user id does not make the person a stranger at the new one") {
  staff_env e;
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000821", "SA.821", "wamid.BB1", "السلام عليكم")).status == 200);
  const auto cid = conversation_of(e.db, "966500000821");
  auto notice = nlohmann::json::parse(wa_number_changed("966500000821", "966500000822", "wamid.BB2"));
  auto& m = notice["entry"][0]["changes"][0]["value"]["messages"][0];
  m["system"]["user_id"] = "SA.822";
  m["system"]["previous_user_id"] = "SA.821";
  const std::int64_t changed_at = std::stoll(m["timestamp"].get<std::string>());
  REQUIRE(post_wa(e.port(), notice.dump()).status == 200);
  // Written from the old number under its user id before the change, delivered now.
  auto late = nlohmann::json::parse(wa_text_with_user_id("966500000821", "SA.821", "wamid.BB3", "هل وصلتكم رسالتي؟"));
  late["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = std::to_string(changed_at - 30);
  REQUIRE(post_wa(e.port(), late.dump()).status == 200);
  CHECK(db_value(e.db, "SELECT conversation_id FROM messages WHERE provider_id = 'wamid.BB3'") == cid);
  // The old id was not taken for theirs: their next message, under their new id, is still them.
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000822", "SA.822", "wamid.BB4", "شكرا")).status == 200);
  CHECK(conversation_of(e.db, "966500000822") == cid);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '966500000822' AND user_id = 'SA.822'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'beneficiary_number_reassigned'") == 0);
}

TEST_CASE("WhatsApp: a reply to a number's last holder, written in the same batch that shows the number changed hands, is not sent") {
  staff_env e;
  // The last holder (SA.831) has consented and is at the main menu.
  REQUIRE(post_wa(e.port(), wa_text_with_user_id("966500000831", "SA.831", "wamid.CC1", "السلام عليكم")).status == 200);
  REQUIRE(post_wa(e.port(), wa_button("966500000831", "wamid.CC2", "consent.yes", "أوافق")).status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  const auto sent_before = wa_sends(e.graph, "966500000831").size();
  // One webhook, two messages: the last holder's "1" (which the bot answers with the intake's
  // first question), then the number's new holder, under another user id.
  auto batch = nlohmann::json::parse(wa_text_with_user_id("966500000831", "SA.831", "wamid.CC3", "١"));
  auto second = nlohmann::json::parse(wa_text_with_user_id("966500000831", "SA.832", "wamid.CC4", "مرحبا"));
  auto& v = batch["entry"][0]["changes"][0]["value"];
  v["messages"].push_back(second["entry"][0]["changes"][0]["value"]["messages"][0]);
  REQUIRE(post_wa(e.port(), batch.dump()).status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  // The intake's first message, written for the last holder, did not go to the number: it is
  // dead, set aside with its record.
  REQUIRE(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'dead' AND recipient LIKE 'retired:%' AND "
                         "last_error LIKE 'number_reassigned%'") == 1);
  const auto theirs = db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox WHERE state = 'dead'");
  CHECK(theirs.find("سنسألكم") != std::string::npos);
  CHECK_FALSE(wa_sent_containing(e.graph, "966500000831", theirs.substr(0, theirs.find('\n'))));
  // The newcomer got their own welcome.
  CHECK(wa_sends(e.graph, "966500000831").size() > sent_before);
}
