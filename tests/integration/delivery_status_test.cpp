// Providers' delivery statuses for our own messages: Unifonic's delivery receipts (a webhook
// Unifonic does not sign, so its URL carries our secret), the statuses of every provider scoped
// to the channel that sent the message, and a failure told to staff live, with its reason.
#include <doctest/doctest.h>

#include <atomic>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {

const std::string dlr_token = "unifonic-dlr-0123456789abcdef";

// Unifonic as the outbound SMS gateway, answered by the `twilio` fake provider (inbound SMS is
// always Twilio's), each send given the next MessageID from `next_id`.
std::map<std::string, std::string> unifonic_vars(const fake_provider& gateway) {
  return {{"AOUN_SMS_GATEWAY", "unifonic"},
          {"AOUN_UNIFONIC_APP_SID", "unifonic-app-sid"},
          {"AOUN_UNIFONIC_SENDER", "Aoun"},
          {"AOUN_UNIFONIC_API_BASE", gateway.base()},
          {"AOUN_UNIFONIC_DLR_TOKEN", dlr_token}};
}

http_result post_dlr(unsigned short port, const std::string& query, const std::string& body,
                     const std::string& type = "application/x-www-form-urlencoded") {
  return http_call(port, "POST", "/webhooks/sms/unifonic" + query, body, {{"Content-Type", type}});
}

std::string outbox_status(const std::string& db, const std::string& provider_id) {
  return db_text(db, "SELECT COALESCE(delivery_status, '<null>') FROM outbox WHERE provider_message_id = '" +
                         provider_id + "'");
}

json transcript(unsigned short port, const std::string& token, long long conversation) {
  return as_json(api(port, "GET", "/api/v1/conversations/" + std::to_string(conversation) + "/messages", token));
}

json message_with_id(const json& messages, long long id) {
  for (const auto& m : messages["messages"])
    if (m["id"] == id) return m;
  return nullptr;
}

// A WhatsApp beneficiary greets the bot; the fake Graph API answers every reply with `wamid`.
// Returns once every reply is sent: the first reply's message and conversation ids.
struct first_reply {
  long long message_id = 0, conversation = 0;
};
first_reply welcomed_with_id(staff_env& e, wa_user& b, const std::string& wamid) {
  e.graph.set_default([wamid](const recorded_request&) {
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":")" + wamid + R"("}]})",
                             "application/json", {}};
  });
  b.text("السلام عليكم");
  const std::string mine = "FROM outbox WHERE provider_message_id = '" + wamid + "'";
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) " + mine + " AND state = 'sent'") >= 1; }));
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  return {db_value(e.db, "SELECT message_id " + mine + " ORDER BY id LIMIT 1"),
          db_value(e.db, "SELECT conversation_id " + mine + " ORDER BY id LIMIT 1")};
}

}  // namespace

TEST_CASE("Unifonic: a delivery receipt needs the URL's token, and marks our SMS delivered or failed") {
  fake_provider unifonic;
  std::atomic<long long> next_id{3100000000001};
  unifonic.set_default([&](const recorded_request&) {
    return scripted_response{200, R"({"success":true,"message":"","errorCode":"ER-00","data":{"MessageID":)" +
                                      std::to_string(next_id++) + R"(,"Status":"Sent"}})",
                             "application/json", {}};
  });
  staff_env e(unifonic_vars(unifonic));
  auto token = login(e.port());
  stream_client live(e.port(), "/api/v1/stream?token=" + token);
  REQUIRE(live.status == 101);
  REQUIRE(live.wait_for([](const json& ev) { return ev["type"] == "ready"; }));

  // A beneficiary writes by SMS (Twilio); the bot's replies leave through Unifonic.
  CHECK(post_sms(e.port(), {{"MessageSid", "SM00000000000000000000000000000901"},
                            {"From", "+966500000901"},
                            {"To", "+966110000000"},
                            {"Body", "السلام عليكم"}})
            .status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") >= 1; }));
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  const auto reqs = unifonic.requests();
  REQUIRE_FALSE(reqs.empty());
  CHECK(reqs[0].target == "/rest/SMS/messages");
  CHECK(reqs[0].body.find("AppSid=unifonic-app-sid") != std::string::npos);
  CHECK(reqs[0].body.find("Recipient=966500000901") != std::string::npos);
  CHECK(outbox_status(e.db, "unifonic:3100000000001") == "sent");
  const long long message_id =
      db_value(e.db, "SELECT message_id FROM outbox WHERE provider_message_id = 'unifonic:3100000000001'");
  const long long conversation = db_value(e.db, "SELECT conversation_id FROM outbox WHERE provider_message_id = 'unifonic:3100000000001'");

  const std::string delivered = "MessageID=3100000000001&DLR=Delivered&Recipient=966500000901&TimeCreated=2026-11-27+10%3A15%3A02";
  // No token, a wrong one, a token of another length, one sent as a header: 401, nothing changes.
  CHECK(post_dlr(e.port(), "", delivered).status == 401);
  CHECK(post_dlr(e.port(), "?token=unifonic-dlr-0123456789abcdeX", delivered).status == 401);
  CHECK(post_dlr(e.port(), "?token=" + dlr_token + "0", delivered).status == 401);
  CHECK(http_call(e.port(), "POST", "/webhooks/sms/unifonic", delivered,
                  {{"Content-Type", "application/x-www-form-urlencoded"}, {"Authorization", "Bearer " + dlr_token}})
            .status == 401);
  CHECK(outbox_status(e.db, "unifonic:3100000000001") == "sent");

  // With the token: delivered, in the database, the staff API and live on the console's stream.
  auto ok = post_dlr(e.port(), "?token=" + dlr_token, delivered);
  CHECK(ok.status == 200);
  CHECK(outbox_status(e.db, "unifonic:3100000000001") == "delivered");
  CHECK(live.wait_for([&](const json& ev) {
    return ev["type"] == "message.status" && ev["message_id"] == message_id && ev["delivery_status"] == "delivered" &&
           ev["conversation_id"] == conversation;
  }));
  CHECK(message_with_id(transcript(e.port(), token, conversation), message_id)["delivery_status"] == "delivered");
  // A repeat changes nothing and is still 200 (Unifonic retries until it gets one).
  CHECK(post_dlr(e.port(), "?token=" + dlr_token, delivered).status == 200);

  // Undeliverable, as JSON this time, for the second reply: failed.
  const auto second = db_text(e.db, "SELECT provider_message_id FROM outbox WHERE state = 'sent' ORDER BY id LIMIT 1 OFFSET 1");
  REQUIRE(second.rfind("unifonic:", 0) == 0);  // stored under its gateway's name
  CHECK(post_dlr(e.port(), "?token=" + dlr_token,
                 R"({"MessageID":)" + second.substr(9) + R"(,"DLR":"Undeliverable","Recipient":"966500000901"})",
                 "application/json")
            .status == 200);
  CHECK(outbox_status(e.db, second) == "failed");
  // And as query parameters with no body.
  CHECK(post_dlr(e.port(), "?token=" + dlr_token + "&MessageID=3100000000001&DLR=Undeliverable", "").status == 200);
  CHECK(outbox_status(e.db, "unifonic:3100000000001") == "failed");

  // Malformed receipts: 400, and no row changes (a third reply is still only "sent").
  const auto third = db_text(e.db, "SELECT provider_message_id FROM outbox WHERE state = 'sent' ORDER BY id LIMIT 1 OFFSET 2");
  const auto states = [&] {
    return db_text(e.db, "SELECT group_concat(id || ':' || COALESCE(delivery_status, '') || ':' || COALESCE(last_error, ''), ',') "
                         "FROM outbox");
  };
  const auto before = states();
  const std::string id3 = third.empty() ? "3100000000003" : third.substr(9);
  CHECK(post_dlr(e.port(), "?token=" + dlr_token, "DLR=Undeliverable&Recipient=966500000901").status == 400);
  CHECK(post_dlr(e.port(), "?token=" + dlr_token, "[{\"MessageID\":" + id3 + ",\"DLR\":\"Undeliverable\"}]",
                 "application/json")
            .status == 400);
  CHECK(post_dlr(e.port(), "?token=" + dlr_token, "MessageID=" + id3 + "%20&DLR=Undeliverable").status == 400);
  CHECK(states() == before);
  CHECK(http_call(e.port(), "GET", "/webhooks/sms/unifonic?token=" + dlr_token).status == 405);
}

TEST_CASE("Unifonic: a receipt only touches an SMS; another channel's message with the same id is left alone") {
  fake_provider unifonic;
  unifonic.set_default([](const recorded_request&) {
    return scripted_response{200, R"({"success":true,"data":{"MessageID":"555"}})", "application/json", {}};
  });
  staff_env e(unifonic_vars(unifonic));
  // The fake Graph API answers every message with the very id a Unifonic receipt would name:
  // ids are the providers' own strings, so only the channel tells them apart.
  e.graph.set_default([](const recorded_request&) {
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"unifonic:777"}]})",
                             "application/json", {}};
  });
  wa_user b{e.port(), "966500000902"};
  b.text("السلام عليكم");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE provider_message_id = 'unifonic:777'") >= 1; }));
  CHECK(post_dlr(e.port(), "?token=" + dlr_token, "MessageID=777&DLR=Undeliverable").status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE provider_message_id = 'unifonic:777' AND delivery_status = 'failed'") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE provider_message_id = 'unifonic:777' AND delivery_status = 'sent'") >= 1);
}

TEST_CASE("Unifonic: without AOUN_UNIFONIC_DLR_TOKEN the receipt webhook is off (404)") {
  staff_env e;
  CHECK(post_dlr(e.port(), "?token=" + dlr_token, "MessageID=1&DLR=Delivered").status == 404);
  CHECK(post_dlr(e.port(), "", "MessageID=1&DLR=Delivered").status == 404);
}

TEST_CASE("a provider's 'failed' status reaches staff live, with its reason, and stays in the transcript") {
  staff_env e;
  auto token = login(e.port());
  wa_user b{e.port(), "966500000903"};
  const auto [message_id, conversation] = welcomed_with_id(e, b, "wamid.FAIL1");
  // Every reply carries the fake's one id, so the status fails them all.
  const auto failed_total =
      "aoun_delivery_failed_total " +
      std::to_string(db_value(e.db, "SELECT count(*) FROM outbox WHERE provider_message_id = 'wamid.FAIL1'")) + "\n";
  stream_client live(e.port(), "/api/v1/stream?token=" + token);
  REQUIRE(live.status == 101);
  REQUIRE(live.wait_for([](const json& ev) { return ev["type"] == "ready"; }));

  auto j = json::parse(fixture("whatsapp_status_failed.json"));
  j["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = "wamid.FAIL1";
  CHECK(post_wa(e.port(), j.dump()).status == 200);
  CHECK(live.wait_for([&](const json& ev) {
    return ev["type"] == "message.status" && ev["message_id"] == message_id && ev["delivery_status"] == "failed" &&
           ev.value("delivery_error", "").find("131047") != std::string::npos;
  }));
  const auto m = message_with_id(transcript(e.port(), token, conversation), message_id);
  CHECK(m["delivery_status"] == "failed");
  // Counted for whoever watches /metrics.
  CHECK(http_call(e.port(), "GET", "/metrics").body.find(failed_total) != std::string::npos);
  CHECK(m.value("delivery_error", "") == "131047 Re-engagement message");
  // 131047: WhatsApp's 24-hour window had closed, so it is closed here too: staff are offered
  // the template rather than replies that would fail alike.
  CHECK(as_json(api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(conversation), token))["window_open"] == false);

  // A status that changes nothing (a late "delivered" after "failed") sends no event.
  const auto before = live.events().size();
  j["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = "delivered";
  j["entry"][0]["changes"][0]["value"]["statuses"][0].erase("errors");
  CHECK(post_wa(e.port(), j.dump()).status == 200);
  CHECK(db_text(e.db, "SELECT delivery_status FROM outbox WHERE provider_message_id = 'wamid.FAIL1' ORDER BY id LIMIT 1") ==
        "failed");
  CHECK(http_call(e.port(), "GET", "/metrics").body.find(failed_total) != std::string::npos);  // not again
  // Something that does send an event, to know the stream has caught up.
  b.text("القائمة");
  REQUIRE(live.wait_for([&](const json& ev) { return ev["type"] == "message.new" && ev["message"]["text"] == "القائمة"; }));
  int statuses_after = 0;
  const auto all = live.events();
  for (std::size_t i = before; i < all.size(); ++i)
    if (all[i]["type"] == "message.status" && all[i]["message_id"] == message_id) ++statuses_after;
  CHECK(statuses_after == 0);
}

TEST_CASE("a provider's 'failed' keeps the flag of a message that may have gone out twice") {
  staff_env e;
  auto token = login(e.port());
  wa_user b{e.port(), "966500000904"};
  const auto [message_id, conversation] = welcomed_with_id(e, b, "wamid.UNC1");
  // As a restart after a crash mid-send leaves it (docs/outbox.md, "The guarantee").
  db_exec(e.db, "UPDATE outbox SET last_error = 'uncertain: in flight when the server stopped' "
                "WHERE provider_message_id = 'wamid.UNC1'");
  auto j = json::parse(fixture("whatsapp_status_failed.json"));
  j["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = "wamid.UNC1";
  CHECK(post_wa(e.port(), j.dump()).status == 200);
  CHECK(db_text(e.db, "SELECT last_error FROM outbox WHERE provider_message_id = 'wamid.UNC1' ORDER BY id LIMIT 1") ==
        "uncertain; 131047 Re-engagement message");
  // and staff read it so in the transcript.
  CHECK(message_with_id(transcript(e.port(), token, conversation), message_id).value("delivery_error", "") ==
        "uncertain; 131047 Re-engagement message");
}

TEST_CASE("a status that comes before the outbox recorded the send is applied once it is") {
  staff_env e;
  auto token = login(e.port());
  stream_client live(e.port(), "/api/v1/stream?token=" + token);
  REQUIRE(live.status == 101);
  REQUIRE(live.wait_for([](const json& ev) { return ev["type"] == "ready"; }));
  // The fake Graph API reports the first message failed *before* it answers the send that
  // gives us its id: the status webhook is committed while no row carries that id yet.
  std::atomic<int> calls{0};
  std::atomic<int> early_status{0};
  const unsigned short port = e.port();
  e.graph.set_default([&, port](const recorded_request&) {
    const int n = ++calls;
    const std::string wamid = "wamid.EARLY" + std::to_string(n);
    if (n == 1) {
      auto j = json::parse(fixture("whatsapp_status_failed.json"));
      j["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = wamid;
      early_status = post_wa(port, j.dump()).status;
    }
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":")" + wamid + R"("}]})"};
  });
  wa_user b{e.port(), "966500000905"};
  b.text("السلام عليكم");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  CHECK(early_status == 200);
  const std::string first = "FROM outbox WHERE provider_message_id = 'wamid.EARLY1'";
  REQUIRE(eventually([&] { return db_text(e.db, "SELECT COALESCE(delivery_status, '') " + first) == "failed"; }));
  CHECK(db_text(e.db, "SELECT last_error " + first) == "131047 Re-engagement message");
  // The other replies, whose statuses never came, are merely sent.
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE delivery_status = 'failed'") == 1);
  const auto message_id = db_value(e.db, "SELECT message_id " + first);
  CHECK(live.wait_for([&](const json& ev) {
    return ev["type"] == "message.status" && ev["message_id"] == message_id && ev["delivery_status"] == "failed" &&
           ev.value("delivery_error", "") == "131047 Re-engagement message";
  }));
  const auto metrics = http_call(e.port(), "GET", "/metrics").body;
  CHECK(metrics.find("aoun_delivery_receipts_early_total 1\n") != std::string::npos);
  CHECK(metrics.find("aoun_delivery_failed_total 1\n") != std::string::npos);
}
