// The whole help-request intake over each provider channel's real webhook, against fake
// providers: the case lands in the database with the fields the beneficiary gave.
#include <doctest/doctest.h>

#include "channels_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {

using env = channel_server;

std::string case_field(const std::string& db, const std::string& channel, const std::string& field) {
  return db_text(db, "SELECT " + field + " FROM cases WHERE channel = '" + channel + "' ORDER BY id DESC LIMIT 1");
}

}  // namespace

TEST_CASE("intake over WhatsApp: buttons, Arabic-Indic digits, the mobile taken from the channel") {
  env e;
  int n = 0;
  auto say = [&](const std::string& text) {
    CHECK(post_wa(e.port(), wa_text("966501234567", "wamid.I" + std::to_string(++n), text)).status == 200);
  };
  auto press = [&](const std::string& id, const std::string& title) {
    CHECK(post_wa(e.port(), wa_button("966501234567", "wamid.I" + std::to_string(++n), id, title)).status == 200);
  };
  say("السلام عليكم");
  press("consent.yes", "أوافق");
  say("١");  // menu: request help
  say("نورة محمد السبيعي");
  say("١٧٥٧٤٩١١٨٦");
  press("mobile.use", "نعم، هذا الرقم");
  say("الرياض");
  press("service.legal", "استشارة قانونية");
  say("سرقوا سيارتي من أمام البيت وأحتاج استشارة");
  say("تخطي");
  press("intake.confirm", "تأكيد");

  REQUIRE(db_value(e.db, "SELECT count(*) FROM cases") == 1);
  CHECK(case_field(e.db, "whatsapp", "full_name") == "نورة محمد السبيعي");
  CHECK(case_field(e.db, "whatsapp", "national_id") == "1757491186");
  CHECK(case_field(e.db, "whatsapp", "mobile") == "+966501234567");
  CHECK(case_field(e.db, "whatsapp", "city") == "الرياض");
  CHECK(case_field(e.db, "whatsapp", "service_type") == "legal");
  CHECK(case_field(e.db, "whatsapp", "description") == "سرقوا سيارتي من أمام البيت وأحتاج استشارة");
  CHECK(case_field(e.db, "whatsapp", "step") == "submitted");
  auto ref = case_field(e.db, "whatsapp", "reference");
  CHECK(ref.rfind("AWN-", 0) == 0);
  // The last reply the beneficiary gets carries the reference number.
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  bool told = false;
  for (auto& s : wa_sends(e.graph, "966501234567"))
    if (wa_body(s).find(ref) != std::string::npos) told = true;
  CHECK(told);
}

TEST_CASE("intake over Telegram: inline-keyboard presses are acknowledged, the mobile is asked for") {
  env e;
  long long update = 5000;
  const long long chat = 777001;
  auto say = [&](const std::string& text) { CHECK(post_tg(e.port(), tg_text(++update, chat, text)).status == 200); };
  auto press = [&](const std::string& data) {
    auto j = json::parse(fixture("telegram_callback_query_message.json"));
    j["update_id"] = ++update;
    j["callback_query"]["id"] = "cbq-" + std::to_string(update);
    j["callback_query"]["from"]["id"] = chat;
    j["callback_query"]["message"]["chat"]["id"] = chat;
    j["callback_query"]["data"] = data;
    CHECK(post_tg(e.port(), j.dump()).status == 200);
  };
  say("/start");
  press("consent.yes");
  say("1");
  say("Khalid Al-Harbi");
  say("2000000006");  // an iqama: starts with 2, passes the checksum
  say("0551234567");
  say("Jeddah");
  press("service.psychological");
  say("Someone broke into my home and I cannot sleep");
  press("docs.skip");
  press("intake.confirm");

  REQUIRE(db_value(e.db, "SELECT count(*) FROM cases") == 1);
  CHECK(case_field(e.db, "telegram", "national_id") == "2000000006");
  CHECK(case_field(e.db, "telegram", "mobile") == "+966551234567");
  CHECK(case_field(e.db, "telegram", "service_type") == "psychological");
  CHECK(case_field(e.db, "telegram", "city") == "Jeddah");
  // Every button press got its answerCallbackQuery, and replies went out with sendMessage.
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  int acks = 0, sends = 0;
  for (auto& r : e.tg.requests()) {
    CHECK(r.target.rfind("/bot123:ABC/", 0) == 0);
    if (r.target.find("/answerCallbackQuery") != std::string::npos) ++acks;
    if (r.target.find("/sendMessage") != std::string::npos) ++sends;
  }
  CHECK(acks == 4);
  // One sendMessage per reply the bot wrote, no more, no fewer (every outbox row but the
  // button answers).
  CHECK(sends >= 11);
  CHECK(sends == db_value(e.db, "SELECT count(*) FROM outbox WHERE channel = 'telegram' AND "
                                "json_extract(payload, '$.callback_query_id') IS NULL"));
}

TEST_CASE("intake over SMS: numbered answers, replies through the Twilio Messages API") {
  env e;
  int n = 0;
  auto say = [&](const std::string& text) {
    char sid[40];
    std::snprintf(sid, sizeof sid, "SM%032d", ++n);
    auto r = post_sms(e.port(), {{"MessageSid", sid}, {"From", "+966509876543"}, {"To", "+966110000000"},
                                     {"Body", text}, {"NumMedia", "0"}, {"AccountSid", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}});
    CHECK(r.status == 200);
    CHECK(r.headers["content-type"].find("xml") != std::string::npos);
  };
  say("مرحبا");
  say("1");  // consent
  say("1");  // request help
  say("فهد العتيبي");
  say("1757491186");
  say("1");  // use this number
  say("الدمام");
  say("4");  // financial aid
  say("تعرضت لاحتيال مالي وخسرت مدخراتي");
  say("تخطي");
  say("1");  // confirm

  REQUIRE(db_value(e.db, "SELECT count(*) FROM cases") == 1);
  CHECK(case_field(e.db, "sms", "mobile") == "+966509876543");
  CHECK(case_field(e.db, "sms", "service_type") == "financial");
  CHECK(case_field(e.db, "sms", "city") == "الدمام");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state <> 'sent'") == 0; }));
  auto reqs = e.twilio.requests();
  REQUIRE(!reqs.empty());
  CHECK(reqs[0].target == "/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json");
  CHECK(reqs[0].headers["authorization"].rfind("Basic ", 0) == 0);
  CHECK(reqs[0].body.find("To=%2B966509876543") != std::string::npos);
}
