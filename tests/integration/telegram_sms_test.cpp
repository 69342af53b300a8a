// Telegram and SMS webhooks: authentication, every official sample, duplicates across a restart.
#include <doctest/doctest.h>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {
using env = channel_server;

// The fixture's form body, signed for our public URL (fixtures/signatures.md signs another URL).
http_result post_sms_fixture(unsigned short port, const std::string& name,
                             const std::map<std::string, std::string>& overrides = {}) {
  auto body = fixture(name);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  std::map<std::string, std::string> params;
  std::size_t i = 0;
  auto decode = [](std::string s) {
    std::string o;
    for (std::size_t k = 0; k < s.size(); ++k) {
      if (s[k] == '+') o += ' ';
      else if (s[k] == '%' && k + 2 < s.size()) {
        o += static_cast<char>(std::stoi(s.substr(k + 1, 2), nullptr, 16));
        k += 2;
      } else o += s[k];
    }
    return o;
  };
  while (i <= body.size()) {
    auto j = body.find('&', i);
    if (j == std::string::npos) j = body.size();
    auto part = body.substr(i, j - i);
    auto eq = part.find('=');
    if (eq != std::string::npos) params[decode(part.substr(0, eq))] = decode(part.substr(eq + 1));
    i = j + 1;
  }
  for (auto& [k, v] : overrides) params[k] = v;
  return post_sms(port, params);
}

// The Bot API's my_chat_member update for a private chat: the person blocks ("kicked") or
// restarts ("member") the bot.
std::string tg_membership(long long update_id, long long chat, const char* status) {
  const json bot = {{"id", 42}, {"is_bot", true}, {"first_name", "Aoun"}};
  return json{{"update_id", update_id},
              {"my_chat_member",
               {{"chat", {{"id", chat}, {"type", "private"}, {"first_name", "Sara"}}},
                {"from", {{"id", chat}, {"is_bot", false}, {"first_name", "Sara"}}},
                {"date", 1441645600},
                {"old_chat_member", {{"status", "member"}, {"user", bot}}},
                {"new_chat_member", {{"status", status}, {"user", bot}}}}}}
      .dump();
}
}  // namespace

TEST_CASE("Telegram: the secret token header is required") {
  env e;
  auto body = tg_text(1, 42, "مرحبا");
  CHECK(post_tg(e.port(), body, "wrong").status == 401);
  CHECK(http_call(e.port(), "POST", "/webhooks/telegram", body).status == 401);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages") == 0);
  CHECK(post_tg(e.port(), body).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 1);
}

TEST_CASE("Telegram: every official sample is accepted; malformed bodies are 400") {
  env e;
  for (const char* f : {"telegram_message.json", "telegram_callback_query.json", "telegram_callback_query_message.json",
                        "telegram_contact.json", "telegram_photo.json", "telegram_document.json"}) {
    CAPTURE(f);
    CHECK(post_tg(e.port(), fixture(f)).status == 200);
  }
  CHECK(post_tg(e.port(), "{").status == 400);
  CHECK(post_tg(e.port(), "{\"update_id\":\"x\"}").status == 400);
  // update_id 10000 appears in three samples: two of them are duplicates of the first.
  CHECK(db_value(e.db, "SELECT count(*) FROM processed_webhooks WHERE channel = 'telegram'") == 4);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'contact'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'media'") == 1);
}

TEST_CASE("Telegram: an update is processed once, also after a restart") {
  env e;
  auto body = tg_text(9001, 55, "hello");
  CHECK(post_tg(e.port(), body).status == 200);
  CHECK(post_tg(e.port(), body).status == 200);
  CHECK(e.restart() == 0);
  CHECK(post_tg(e.port(), body).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 1);
}

TEST_CASE("SMS: Twilio's signature is required") {
  env e;
  std::map<std::string, std::string> p{{"MessageSid", "SM00000000000000000000000000000001"}, {"From", "+966500000000"},
                                       {"To", "+966110000000"}, {"Body", "مرحبا"}};
  CHECK(post_sms(e.port(), p, "wrong-token").status == 401);
  CHECK(http_call(e.port(), "POST", "/webhooks/sms", "From=%2B966500000000&Body=x",
                  {{"Content-Type", "application/x-www-form-urlencoded"}})
            .status == 401);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages") == 0);
  // Counted, and logged (at most once a minute) with what to check: refusals one after another
  // usually mean our configuration is wrong, and each is a message lost.
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("aoun_webhook_signature_refused_total 2") != std::string::npos);
  CHECK(eventually([&] { return e.srv->errors().find("\"webhook_signature_refused\"") != std::string::npos; }));
  CHECK(e.srv->errors().find("AOUN_PUBLIC_URL must be the URL Twilio calls") != std::string::npos);
  CHECK(post_sms(e.port(), p).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 1);
}

TEST_CASE("SMS: every official sample is accepted, and a duplicate MessageSid is dropped across a restart") {
  env e;
  for (const char* f : {"twilio_inbound.txt", "twilio_inbound_mms.txt", "twilio_status_delivered.txt",
                        "twilio_status_undelivered.txt"}) {
    CAPTURE(f);
    CHECK(post_sms_fixture(e.port(), f).status == 200);
  }
  // The MMS sample reuses the SMS sample's MessageSid: it is dropped as a duplicate.
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 1);
  CHECK(post_sms_fixture(e.port(), "twilio_inbound_mms.txt", {{"MessageSid", "MM00000000000000000000000000000002"}}).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 2);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in' AND kind = 'media'") == 1);
  CHECK(e.restart() == 0);
  CHECK(post_sms_fixture(e.port(), "twilio_inbound.txt").status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE direction = 'in'") == 2);
}

TEST_CASE("a channel without secrets is off: its webhook answers 404") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db");
  CHECK(http_call(srv.port(), "POST", "/webhooks/whatsapp", "{}").status == 404);
  CHECK(http_call(srv.port(), "GET", "/webhooks/whatsapp?hub.mode=subscribe").status == 404);
  CHECK(http_call(srv.port(), "POST", "/webhooks/telegram", "{}").status == 404);
  CHECK(http_call(srv.port(), "POST", "/webhooks/sms", "a=b").status == 404);
}

TEST_CASE("Telegram: a chat's messages are paced (AOUN_TELEGRAM_CHAT_RATE), but a button's answer does not hold back the reply") {
  struct {
    temp_dir dir;
    fake_provider graph, tg, twilio;
    std::string db = dir.path + "/aoun.db";
  } e;
  auto vars = channel_env(e.graph, e.tg, e.twilio);
  // One message per 5 s in a chat (Telegram's own is 1/s): wide margins on a loaded machine
  // between "paced as a message" (5 s) and "not paced" (at once).
  vars["AOUN_TELEGRAM_CHAT_RATE"] = "0.2";
  server_process srv(e.db, vars);
  const long long chat = 777002;
  auto sends_to_chat = [&] {
    std::vector<std::chrono::steady_clock::time_point> at;
    for (auto& r : e.tg.requests())
      if (r.target.find("/sendMessage") != std::string::npos) at.push_back(r.at);
    return at;
  };
  REQUIRE(post_tg(srv.port(), tg_text(6001, chat, "/start")).status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; },
                     std::chrono::seconds(30)));
  auto first = sends_to_chat();
  REQUIRE(first.size() >= 2);  // the welcome and the consent question
  for (std::size_t i = 1; i < first.size(); ++i)
    CHECK(first[i] - first[i - 1] >= std::chrono::milliseconds(4500));  // AOUN_TELEGRAM_CHAT_RATE=0.2
  std::this_thread::sleep_for(std::chrono::milliseconds(5200));  // the chat's gap has passed

  REQUIRE(post_tg(srv.port(), tg_press(6002, chat, "consent.yes", "cbq-6002")).status == 200);
  REQUIRE(eventually([&] { return sends_to_chat().size() > first.size(); }));
  std::optional<std::chrono::steady_clock::time_point> ack;
  for (auto& r : e.tg.requests())
    if (r.target.find("/answerCallbackQuery") != std::string::npos) ack = r.at;
  REQUIRE(ack);
  const auto reply = sends_to_chat()[first.size()];
  CHECK(*ack <= reply);  // the spinner stops first
  // Not the chat's gap (5 s) later, as it would be if the answer counted as a message in it.
  CHECK(reply - *ack < std::chrono::milliseconds(2500));
}

TEST_CASE("SMS: a beneficiary who texts STOP gets nothing more by SMS until START") {
  env e;
  const std::string from = "+966500000501";
  int sid = 0;
  auto text = [&](const std::string& body) {
    REQUIRE(post_sms(e.port(), {{"MessageSid", "SMopt" + std::to_string(++sid)}, {"From", from}, {"To", "+15005550006"},
                                {"Body", body}, {"NumMedia", "0"}})
                .status == 200);
  };
  auto outbox = [&] { return db_value(e.db, "SELECT count(*) FROM outbox"); };
  text("مرحبا");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == outbox(); }));
  const auto sent_before = e.twilio.requests().size();
  REQUIRE(sent_before > 0);

  const auto rows = outbox();
  text("STOP");
  CHECK(outbox() == rows);  // no dialog turn: Twilio confirms the opt-out itself
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + from + "' AND opted_out_at IS NOT NULL") == 1);
  // Written again while opted out: the replies are kept, dead with the reason, and not sent.
  text("أبي مساعدة");
  REQUIRE(outbox() > rows);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(rows) +
                           " AND state = 'dead' AND last_error LIKE 'opted_out:%'") == outbox() - rows);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(e.twilio.requests().size() == sent_before);
  // Staff cannot send it again either, while the STOP stands.
  const auto admin = login(e.port());
  const auto dead = db_value(e.db, "SELECT max(id) FROM outbox");
  CHECK(api(e.port(), "POST", "/api/v1/outbox/" + std::to_string(dead) + "/retry", admin).status == 409);
  CHECK(db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(dead)) == "dead");

  // Staff cannot write to them either: told why, nothing written.
  const auto cid = db_value(e.db, "SELECT c.id FROM conversations c JOIN beneficiaries b ON b.id = c.beneficiary_id "
                                  "WHERE b.address = '" + from + "'");
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", admin).status == 200);
  const auto taken = outbox();  // the "staff joined" notice: dead too
  auto reply = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", admin,
                   json{{"text", "نحن هنا"}});
  CHECK(reply.status == 409);
  CHECK(reply.body.find("STOP") != std::string::npos);
  CHECK(outbox() == taken);
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/release", admin).status == 200);

  // START lifts it, and is a message like any other: it is answered.
  const auto stopped = outbox();
  text("start");
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + from + "' AND opted_out_at IS NOT NULL") == 0);
  REQUIRE(outbox() > stopped);
  REQUIRE(eventually([&] { return e.twilio.requests().size() > sent_before; }));
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(stopped) + " AND state = 'dead'") == 0);
}

TEST_CASE("SMS: a staff reply longer than an SMS can carry is refused, not sent cut") {
  env e;
  const std::string from = "+966500000502";
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMlong1"}, {"From", from}, {"To", "+15005550006"}, {"Body", "مرحبا"},
                              {"NumMedia", "0"}})
              .status == 200);
  const auto admin = login(e.port());
  const auto cid = db_value(e.db, "SELECT c.id FROM conversations c JOIN beneficiaries b ON b.id = c.beneficiary_id "
                                  "WHERE b.address = '" + from + "'");
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", admin).status == 200);
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  std::string text;
  for (int i = 0; i < 1601; ++i) text += "ع";
  auto reply = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", admin, json{{"text", text}});
  CHECK(reply.status == 400);
  CHECK(reply.body.find("1600") != std::string::npos);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == rows);
  text.resize(text.size() - 2);  // 1,600 characters: sent whole
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", admin, json{{"text", text}}).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == rows + 1);
}

TEST_CASE("SMS: STOP also stops the replies still waiting their turn, and the rest of a reply chain") {
  env e;
  const std::string from = "+966500000503";
  std::atomic<int> calls{0};
  e.twilio.set_default([&](const recorded_request&) {
    scripted_response r{201, R"({"sid":"SMout)" + std::to_string(++calls) + R"(","status":"queued"})"};
    r.delay = std::chrono::milliseconds(1500);  // the first replies are in flight a while
    return r;
  });
  int sid = 0;
  auto text = [&](const std::string& body) {
    REQUIRE(post_sms(e.port(), {{"MessageSid", "SMw" + std::to_string(++sid)}, {"From", from}, {"To", "+15005550006"},
                                {"Body", body}, {"NumMedia", "0"}})
                .status == 200);
  };
  text("مرحبا");
  const auto chain = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(chain >= 2);  // the welcome and what follows: handed to the worker together
  REQUIRE(eventually([&] { return calls >= 1; }));
  text("1");  // its replies wait behind the ones in flight
  const auto waiting = db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'pending'");
  REQUIRE(waiting > 0);
  text("STOP");
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'pending'") == 0);
  // The one request already at Twilio cannot be called back; the rest of its chain is refused
  // when its turn comes, and what was waiting never goes.
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sending'") == 0; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(calls == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'dead' AND last_error LIKE 'opted_out:%'") ==
        db_value(e.db, "SELECT count(*) FROM outbox") - 1);
}

TEST_CASE("SMS: a STOP that comes while a reply waits its turn at the gateway's pace holds that reply too") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  const std::string db = dir.path + "/aoun.db";
  auto vars = channel_env(graph, tg, twilio);
  vars["AOUN_SMS_RATE"] = "0.25";  // a segment every 4 s
  server_process srv(db, vars);
  auto sms = [&](const std::string& sid, const std::string& from, const std::string& body) {
    REQUIRE(post_sms(srv.port(), {{"MessageSid", sid}, {"From", from}, {"To", "+15005550006"}, {"Body", body}, {"NumMedia", "0"}})
                .status == 200);
  };
  // The welcome goes at once; what follows it (the privacy notice, many segments of Arabic)
  // then waits seconds for its turn, handed to the worker (`sending`) and past the check made
  // when its turn began.
  const std::string from = "+966500000504";
  sms("SMq2", from, "مرحبا");
  // The welcome at the gateway; what follows it had half a second to make its check and start
  // its wait of seconds.
  REQUIRE(eventually([&] { return twilio.requests().size() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  REQUIRE(db_value(db, "SELECT count(*) FROM outbox WHERE recipient = '" + from + "' AND state = 'sending'") >= 1);
  sms("SMq3", from, "STOP");
  REQUIRE(eventually([&] {
    return db_value(db, "SELECT count(*) FROM outbox WHERE recipient = '" + from + "' AND state IN ('pending', 'sending')") == 0;
  }, std::chrono::seconds(30)));
  CHECK(twilio.requests().size() == 1);  // the welcome, gone before the STOP
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 1);
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE recipient = '" + from + "' AND state = 'dead' AND last_error LIKE 'opted_out:%'") ==
        db_value(db, "SELECT count(*) FROM outbox WHERE recipient = '" + from + "'") - 1);
}

TEST_CASE("SMS: Twilio refusing a recipient who opted out with it (21610) marks them opted out here too") {
  env e;
  e.twilio.set_default([](const recorded_request&) {
    return scripted_response{400, R"({"code":21610,"message":"Attempt to send to unsubscribed recipient","status":400})"};
  });
  const std::string from = "+966500000502";
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMx1"}, {"From", from}, {"To", "+15005550006"}, {"Body", "مرحبا"}, {"NumMedia", "0"}})
              .status == 200);
  const auto first = db_value(e.db, "SELECT min(id) FROM outbox");
  REQUIRE(eventually([&] { return db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(first)) == "dead"; }));
  CHECK(db_text(e.db, "SELECT last_error FROM outbox WHERE id = " + std::to_string(first)).find("code 21610") != std::string::npos);
  REQUIRE(eventually([&] {
    return db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + from + "' AND opted_out_at IS NOT NULL") == 1;
  }));
  // What comes next is not tried at all.
  const auto tried = e.twilio.requests().size();
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMx2"}, {"From", from}, {"To", "+15005550006"}, {"Body", "1"}, {"NumMedia", "0"}})
              .status == 200);
  REQUIRE(db_value(e.db, "SELECT count(*) FROM outbox") > rows);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(rows) +
                           " AND (state <> 'dead' OR last_error NOT LIKE 'opted_out:%')") == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(e.twilio.requests().size() == tried);
}

TEST_CASE("SMS: a 21610 that comes in a status callback (a Messaging Service's way) marks them opted out too") {
  env e;
  int n = 0;
  e.twilio.set_default([&](const recorded_request&) {
    return scripted_response{201, R"({"sid":"SMout)" + std::to_string(++n) + R"(","status":"accepted"})", "application/json", {}};
  });
  const std::string from = "+966500000503";
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMy1"}, {"From", from}, {"To", "+15005550006"}, {"Body", "مرحبا"}, {"NumMedia", "0"}})
              .status == 200);
  REQUIRE(eventually([&] {
    return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == db_value(e.db, "SELECT count(*) FROM outbox");
  }));
  const auto welcome = db_value(e.db, "SELECT count(*) FROM outbox");  // SMout1 .. SMout<welcome>
  const auto opted = [&] {
    return db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + from + "' AND opted_out_at IS NOT NULL");
  };
  // Delivered: nothing changes.
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMout1"}, {"MessageStatus", "delivered"}, {"To", from}, {"From", "+15005550006"}})
              .status == 200);
  CHECK(opted() == 0);
  // Failed with 21610: opted out here too, and what waits for them is not sent.
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMout1"}, {"MessageStatus", "failed"}, {"ErrorCode", "21610"}, {"To", from},
                              {"From", "+15005550006"}}).status == 200);
  CHECK(opted() == 1);
  const auto tried = e.twilio.requests().size();
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMy2"}, {"From", from}, {"To", "+15005550006"}, {"Body", "1"}, {"NumMedia", "0"}})
              .status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(rows) +
                           " AND (state <> 'dead' OR last_error NOT LIKE 'opted_out:%')") == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(e.twilio.requests().size() == tried);
  // START, then a late 21610 for the welcome's last message (sent before the START): older
  // news than the START, nothing changes.
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMy3"}, {"From", from}, {"To", "+15005550006"}, {"Body", "START"}, {"NumMedia", "0"}})
              .status == 200);
  CHECK(opted() == 0);
  REQUIRE(welcome >= 2);
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMout" + std::to_string(welcome)}, {"MessageStatus", "failed"}, {"ErrorCode", "21610"},
                              {"To", from}, {"From", "+15005550006"}}).status == 200);
  CHECK(db_text(e.db, "SELECT delivery_status FROM outbox WHERE provider_message_id = 'SMout" + std::to_string(welcome) + "'") ==
        "failed");
  CHECK(opted() == 0);
}

TEST_CASE("SMS: a 21610 that comes before the send is recorded (an early receipt) opts them out too") {
  env e;
  const std::string from = "+966500000504";
  // Twilio reports the first message failed with 21610 *before* it answers the send that gives
  // us its sid: the status callback is committed while no row carries that sid yet.
  std::atomic<int> n{0};
  std::atomic<int> early_status{0};
  const unsigned short port = e.port();
  e.twilio.set_default([&, port](const recorded_request&) {
    const int k = ++n;
    const std::string sid = "SMearly" + std::to_string(k);
    if (k == 1)
      early_status = post_sms(port, {{"MessageSid", sid}, {"MessageStatus", "failed"}, {"ErrorCode", "21610"}, {"To", from},
                                     {"From", "+15005550006"}}).status;
    return scripted_response{201, R"({"sid":")" + sid + R"(","status":"accepted"})", "application/json", {}};
  });
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMz1"}, {"From", from}, {"To", "+15005550006"}, {"Body", "مرحبا"}, {"NumMedia", "0"}})
              .status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  CHECK(early_status == 200);
  REQUIRE(eventually([&] {
    return db_text(e.db, "SELECT COALESCE(delivery_status, '') FROM outbox WHERE provider_message_id = 'SMearly1'") == "failed";
  }));
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + from + "' AND opted_out_at IS NOT NULL") == 1);
  // What is written for them next is not sent.
  const auto tried = e.twilio.requests().size();
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(post_sms(e.port(), {{"MessageSid", "SMz2"}, {"From", from}, {"To", "+15005550006"}, {"Body", "1"}, {"NumMedia", "0"}})
              .status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(rows) +
                           " AND (state <> 'dead' OR last_error NOT LIKE 'opted_out:%')") == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(e.twilio.requests().size() == tried);
}

TEST_CASE("Telegram: danger words added by editing a message still get the emergency numbers") {
  env e;
  auto u = json::parse(fixture("telegram_message.json"));
  u["update_id"] = 720001;
  u["message"]["text"] = "السلام عليكم";
  REQUIRE(post_tg(e.port(), u.dump()).status == 200);
  const auto before = db_value(e.db, "SELECT count(*) FROM outbox");
  json edited = u;
  edited["update_id"] = 720002;
  edited["edited_message"] = edited["message"];
  edited.erase("message");
  edited["edited_message"]["text"] = "السلام عليكم، أبي أنتحر";
  edited["edited_message"]["edit_date"] = 1441645600;
  REQUIRE(post_tg(e.port(), edited.dump()).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == before + 1);
  CHECK(db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox ORDER BY id DESC LIMIT 1").find("911") !=
        std::string::npos);
  CHECK(db_text(e.db, "SELECT mode FROM conversations") == "waiting");
  CHECK(db_value(e.db, "SELECT priority FROM conversations") == 1);
  // An edit without them is recorded for staff, and nothing is said.
  edited["update_id"] = 720003;
  edited["edited_message"]["text"] = "السلام عليكم ورحمة الله";
  REQUIRE(post_tg(e.port(), edited.dump()).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == before + 1);
}

TEST_CASE("Telegram: a file over 20 MB is not taken as a case document; the person is asked for a smaller copy") {
  // Telegram lets a bot download 20 MB at most: such a file would sit in the case unopenable.
  env e;
  long long id = 740000;
  const long long chat = 4242;
  auto say = [&](const std::string& text) { REQUIRE(post_tg(e.port(), tg_text(++id, chat, text)).status == 200); };
  auto step = [&] {
    return db_text(e.db, "SELECT json_extract(dialog_state, '$.flow') || '/' || json_extract(dialog_state, '$.step') FROM conversations");
  };
  auto document = [&](long long bytes) {
    auto u = json::parse(fixture("telegram_document.json"));
    u["update_id"] = ++id;
    u["message"]["chat"]["id"] = chat;
    u["message"]["from"]["id"] = chat;
    u["message"]["document"]["file_size"] = bytes;
    REQUIRE(post_tg(e.port(), u.dump()).status == 200);
  };
  for (const char* text : {"السلام عليكم", "أوافق", "١", "نورة محمد السبيعي", "١٧٥٧٤٩١١٨٦", "0501234567", "الرياض", "١",
                           "سرقوا سيارتي من أمام البيت وأحتاج استشارة"})
    say(text);
  REQUIRE(step() == "intake/documents");

  document(25LL << 20);
  CHECK(step() == "intake/documents");
  CHECK(db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox ORDER BY id DESC LIMIT 1").find("أكبر من ٢٠ ميغابايت") !=
        std::string::npos);
  // Staff still see it in the transcript, with its size.
  CHECK(db_value(e.db, "SELECT json_extract(payload, '$.media.size') FROM messages WHERE kind = 'media' ORDER BY id LIMIT 1") ==
        (25LL << 20));

  // Exactly 20 MB is within the limit, and taken.
  document(20LL << 20);
  CHECK(step() == "intake/documents_more");
}

TEST_CASE("Telegram: a person who blocks the bot gets nothing more, and staff are told, until they write again") {
  env e;
  std::atomic<bool> blocked{false};
  e.tg.set_default([&](const recorded_request& r) {
    if (blocked && r.target.find("/sendMessage") != std::string::npos)
      return scripted_response{403, R"({"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"})",
                               "application/json", {}};
    return scripted_response{200, R"({"ok":true,"result":{"message_id":1}})", "application/json", {}};
  });
  const long long chat = 5151;
  long long id = 750000;
  auto say = [&](const std::string& text) { REQUIRE(post_tg(e.port(), tg_text(++id, chat, text)).status == 200); };
  auto membership = [&](const char* status) { REQUIRE(post_tg(e.port(), tg_membership(++id, chat, status)).status == 200); };
  auto outbox = [&] { return db_value(e.db, "SELECT count(*) FROM outbox"); };
  auto is_blocked = [&] {
    return db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + std::to_string(chat) + "' AND opted_out_at IS NOT NULL") == 1;
  };
  auto sends = [&] {
    std::size_t n = 0;
    for (const auto& r : e.tg.requests()) n += r.target.find("/sendMessage") != std::string::npos ? 1 : 0;
    return n;
  };
  say("السلام عليكم");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == outbox(); }));

  // 1. Blocking the bot arrives as my_chat_member: recorded for staff, no reply, flag set.
  const auto rows = outbox();
  membership("kicked");
  CHECK(is_blocked());
  CHECK(outbox() == rows);
  CHECK(db_text(e.db, "SELECT json_extract(payload, '$.raw_type') FROM messages WHERE direction = 'in' ORDER BY id DESC LIMIT 1") ==
        "my_chat_member:kicked");
  // Staff are told why they cannot write; nothing is written.
  const auto admin = login(e.port());
  const auto cid = conversation_of(e.db, std::to_string(chat));
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", admin).status == 200);
  CHECK(db_text(e.db, "SELECT last_error FROM outbox ORDER BY id DESC LIMIT 1").rfind("blocked:", 0) == 0);  // "staff joined"
  const auto taken = outbox();
  const auto sent_before = sends();
  auto reply = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", admin, json{{"text", "نحن هنا"}});
  CHECK(reply.status == 409);
  CHECK(reply.body.find("blocked the bot") != std::string::npos);
  CHECK(outbox() == taken);
  // Nor can a refused row be sent again.
  CHECK(api(e.port(), "POST", "/api/v1/outbox/" + std::to_string(db_value(e.db, "SELECT max(id) FROM outbox")) + "/retry", admin)
            .status == 409);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(sends() == sent_before);

  // An edit, or a reaction, proves nothing: it may be made in a chat that still blocks the bot.
  {
    auto edit = json::parse(tg_text(++id, chat, "عدّلتها"));
    edit["edited_message"] = edit["message"];
    edit.erase("message");
    REQUIRE(post_tg(e.port(), edit.dump()).status == 200);
    REQUIRE(post_tg(e.port(), json{{"update_id", ++id},
                                   {"message_reaction", {{"chat", {{"id", chat}, {"type", "private"}}}, {"message_id", 1},
                                                         {"date", 1750000000}, {"old_reaction", json::array()},
                                                         {"new_reaction", json::array()}}}}
                                      .dump())
                .status == 200);
    CHECK(is_blocked());
  }

  // 2. Restarting the bot lifts it: staff can write again.
  membership("member");
  CHECK_FALSE(is_blocked());
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", admin, json{{"text", "أهلًا بكم"}})
            .status == 200);
  REQUIRE(eventually([&] { return sends() == sent_before + 1; }));
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/release", admin).status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));

  // 3. A block we did not hear of: Telegram refuses the send (403). The reason is kept for
  //    staff, the flag set, and the next replies are not tried.
  blocked = true;
  const auto rows3 = outbox();
  const auto sends3 = sends();
  say("ابي مساعدة");
  REQUIRE(eventually([&] { return is_blocked(); }));
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE last_error LIKE '%Forbidden: bot was blocked by the user%'") == 1);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  const auto refused_rows = outbox();
  // One attempt, dead with Telegram's reason (the refusal of what follows is the SMS STOP's
  // machinery, tested with it above).
  CHECK(sends() == sends3 + 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(rows3) + " AND state = 'dead'") ==
        refused_rows - rows3);
  const auto refused_sends = sends();
  // They unblock the bot and write (Telegram lets nobody write to a bot they block): writing is
  // itself the sign the chat is open again, and that message's replies go out.
  blocked = false;
  say("١");
  CHECK_FALSE(is_blocked());
  REQUIRE(eventually([&] { return sends() > refused_sends; }));
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(refused_rows) + " AND state = 'dead'") == 0);
}

TEST_CASE("Telegram: a refusal that comes back after the person wrote again does not block them") {
  // The person blocked the bot while a reply was on its way, then unblocked it and wrote. The
  // 403 for that reply lands after their new message: it is older news, and their new message
  // must be answered.
  env e;
  std::atomic<int> refuse_next{0};
  e.tg.set_default([&](const recorded_request& r) {
    if (r.target.find("/sendMessage") != std::string::npos && refuse_next.exchange(0) == 1)
      return scripted_response{403, R"({"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"})",
                               "application/json", {}, std::chrono::milliseconds(1500)};
    return scripted_response{200, R"({"ok":true,"result":{"message_id":1}})", "application/json", {}};
  });
  const long long chat = 5252;
  long long id = 760000;
  auto say = [&](const std::string& text) { REQUIRE(post_tg(e.port(), tg_text(++id, chat, text)).status == 200); };
  auto settled = [&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; };
  say("السلام عليكم");
  REQUIRE(eventually(settled));
  refuse_next = 1;
  say("ابي مساعدة");
  REQUIRE(eventually([&] { return refuse_next == 0; }));  // its reply is at Telegram, held
  const auto before = db_value(e.db, "SELECT max(id) FROM outbox");
  say("١");  // they unblocked the bot, and wrote
  REQUIRE(eventually(settled));
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE last_error LIKE '%Forbidden%'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + std::to_string(chat) + "' AND opted_out_at IS NOT NULL") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(before) + " AND state = 'sent'") ==
        db_value(e.db, "SELECT count(*) FROM outbox WHERE id > " + std::to_string(before)));
}

TEST_CASE("Telegram: a block delivered after a later message of the person's is past news") {
  env e;
  const long long chat = 5353;
  auto membership = [&](long long update_id, const char* status) {
    REQUIRE(post_tg(e.port(), tg_membership(update_id, chat, status)).status == 200);
  };
  auto is_blocked = [&] {
    return db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + std::to_string(chat) + "' AND opted_out_at IS NOT NULL") == 1;
  };
  REQUIRE(post_tg(e.port(), tg_text(770010, chat, "السلام عليكم")).status == 200);
  membership(770009, "kicked");  // sent before the greeting, delivered after it
  CHECK_FALSE(is_blocked());
  membership(770011, "kicked");
  CHECK(is_blocked());
  // Nor does an old block, delivered late, undo the newer one it is older than.
  membership(770008, "kicked");
  CHECK(is_blocked());
  // And a message written before the block, delivered after it, does not unblock: nothing is
  // sent to someone who blocked the bot since.
  const auto last_row = db_value(e.db, "SELECT coalesce(max(id), 0) FROM outbox");
  REQUIRE(post_tg(e.port(), tg_text(770010 + 0, chat, "late")).status == 200);  // a duplicate: dropped
  REQUIRE(post_tg(e.port(), tg_text(770007, chat, "مرحبا")).status == 200);
  CHECK(is_blocked());
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE text = 'مرحبا'") == 1);  // recorded all the same
  // (Rows written before may still be on their way to being refused: only new ones count.)
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'dead' AND id > " + std::to_string(last_row)) == 0);
  // A message after the block is the person writing again: unblocked.
  REQUIRE(post_tg(e.port(), tg_text(770012, chat, "رجعت")).status == 200);
  CHECK_FALSE(is_blocked());
}

TEST_CASE("Telegram: a dice, a poll or a story in a private chat is answered that the bot cannot read it; a pin is not") {
  env e;
  auto msg = [](int update, const json& extra) {
    auto j = json::parse(fixture("telegram_message.json"));
    j["update_id"] = update;
    j["message"]["message_id"] = update;
    j["message"].erase("text");
    for (auto& [k, v] : extra.items()) j["message"][k] = v;
    return j.dump();
  };
  auto hello = json::parse(fixture("telegram_message.json"));
  hello["update_id"] = 720001;
  REQUIRE(post_tg(e.port(), hello.dump()).status == 200);
  const auto greeted = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(post_tg(e.port(), msg(720002, {{"dice", {{"emoji", "🎲"}, {"value", 4}}}})).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == greeted + 1);
  CHECK(db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox ORDER BY id DESC LIMIT 1").find("لم نتمكن من قراءة رسالتكم") !=
        std::string::npos);
  // Not again within ten minutes, and never for a service message such as a pin.
  REQUIRE(post_tg(e.port(), msg(720003, {{"poll", {{"id", "p1"}, {"question", "?"}}}})).status == 200);
  REQUIRE(post_tg(e.port(), msg(720004, {{"pinned_message", {{"message_id", 1}}}})).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == greeted + 1);
  db_exec(e.db, "UPDATE outbox SET created_at = created_at - 700");
  db_exec(e.db, "UPDATE messages SET created_at = created_at - 700");
  REQUIRE(post_tg(e.port(), msg(720005, {{"pinned_message", {{"message_id", 1}}}})).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == greeted + 1);
  REQUIRE(post_tg(e.port(), msg(720006, {{"story", {{"id", 5}, {"chat", {{"id", 1}}}}}})).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == greeted + 2);
}

TEST_CASE("Telegram: staff see that a message was forwarded, from whom and when; the person's own are not marked") {
  env e;
  auto own = json::parse(fixture("telegram_message.json"));
  own["update_id"] = 730001;
  own["message"]["text"] = "السلام عليكم";
  REQUIRE(post_tg(e.port(), own.dump()).status == 200);
  auto fwd = json::parse(fixture("telegram_message.json"));
  fwd["update_id"] = 730002;
  fwd["message"]["message_id"] = 730002;
  fwd["message"]["text"] = "إذا بلغت أحدًا فسترى ما يحدث";
  fwd["message"]["forward_origin"] = {{"type", "user"}, {"date", 1700000000},
                                      {"sender_user", {{"id", 99}, {"first_name", "Fahd"}}}};
  REQUIRE(post_tg(e.port(), fwd.dump()).status == 200);
  const auto cid = db_value(e.db, "SELECT id FROM conversations");
  auto r = api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(cid) + "/messages", login(e.port()));
  REQUIRE(r.status == 200);
  int forwarded = 0, own_seen = 0;
  const auto body = as_json(r);
  for (const auto& m : body["messages"]) {
    if (m["direction"] != "in") continue;
    if (m["text"] == "السلام عليكم") {
      ++own_seen;
      CHECK_FALSE(m.contains("forwarded"));
    } else if (m.contains("forwarded")) {
      ++forwarded;
      CHECK(m["forwarded"]["from"] == "Fahd");
      CHECK(m["forwarded"]["at"] == 1700000000);
    }
  }
  CHECK(own_seen == 1);
  CHECK(forwarded == 1);
}

TEST_CASE("Telegram: a button's answer that fails is tried twice, not eight times, and the reply goes") {
  struct {
    temp_dir dir;
    fake_provider graph, tg, twilio;
    std::string db = dir.path + "/aoun.db";
  } e;
  auto vars = channel_env(e.graph, e.tg, e.twilio);
  vars["AOUN_OUTBOX_BACKOFF_MS"] = "1000";  // as in production (500 ms): retries take their time
  // Telegram fails every answerCallbackQuery (5xx), and sends messages fine.
  e.tg.set_default([](const recorded_request& r) {
    if (r.target.find("/answerCallbackQuery") != std::string::npos)
      return scripted_response{502, R"({"ok":false,"error_code":502,"description":"Bad Gateway"})"};
    return scripted_response{200, R"({"ok":true,"result":{"message_id":1}})"};
  });
  server_process srv(e.db, vars);
  const long long chat = 777003;
  REQUIRE(post_tg(srv.port(), tg_text(6101, chat, "/start")).status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  const auto before = db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'");
  REQUIRE(post_tg(srv.port(), tg_press(6102, chat, "consent.yes", "cbq-6102")).status == 200);
  // The menu that follows consent goes; the answer, which only stops a spinner Telegram gives
  // up on within seconds, is not tried again and again.
  CHECK(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") > before; },
                   std::chrono::seconds(8)));
  CHECK(db_value(e.db, "SELECT attempts FROM outbox WHERE payload LIKE '%cbq-6102%'") == 2);
  CHECK(db_text(e.db, "SELECT state FROM outbox WHERE payload LIKE '%cbq-6102%'") == "dead");
}
