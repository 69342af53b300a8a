#include "channels/whatsapp.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "channels/crypto.hpp"
#include "channels/detail/util.hpp"
#include "tests/unit/channels/fixture.hpp"

using namespace aoun::channels;
using aoun::test::fixture;
using aoun::test::json_fixture;
using nlohmann::json;

namespace {
const whatsapp::config cfg{"vt", "test_app_secret", "TOKEN", "106540352242922",
                           "https://graph.facebook.com/v21.0"};

inbound only_event(const std::string& file) {
  const auto r = whatsapp::parse(fixture(file));
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  return r.events.front();
}

outgoing with_choices(std::size_t n) {
  outgoing m;
  m.to = "16505551234";
  m.text = "اختر الخدمة";
  for (std::size_t i = 0; i < n; ++i) m.choices.push_back({"id" + std::to_string(i), "خيار " + std::to_string(i + 1), ""});
  return m;
}
}  // namespace

TEST_CASE("whatsapp: official signature vector and fixture vectors") {
  CHECK(whatsapp::verify_signature("test", "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914", "secret"));
  CHECK(whatsapp::verify_signature(fixture("whatsapp_text.json"),
                                   "sha256=1c041e1c07f50386213ac582d2e17d24d70f1ed42949a6e5a5607057b805b5fc", "test_app_secret"));
  CHECK(whatsapp::verify_signature(fixture("whatsapp_button_reply.json"),
                                   "sha256=ae4dd413a543433d93d4fac08f3fb3ee8a82570718db0931cd170c4072e69708", "test_app_secret"));
  CHECK(whatsapp::verify_signature(fixture("whatsapp_status_delivered.json"),
                                   "sha256=60addc43b450efd0c598368e29d7cd53d94dacd3b90a56f71340697081a2bf2a", "test_app_secret"));
  // Uppercase hex is the same digest.
  CHECK(whatsapp::verify_signature("test", "sha256=0329A06B62CD16B33EB6792BE8C60B158D89A2EE3A876FCE9A881EBB488C0914", "secret"));
}

TEST_CASE("whatsapp: bad and missing signatures are rejected") {
  const std::string good = "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";
  CHECK_FALSE(whatsapp::verify_signature("test", "", "secret"));
  CHECK_FALSE(whatsapp::verify_signature("test", good, ""));
  CHECK_FALSE(whatsapp::verify_signature("test ", good, "secret"));               // body changed
  CHECK_FALSE(whatsapp::verify_signature("test", good, "secreT"));                // wrong secret
  CHECK_FALSE(whatsapp::verify_signature("test", good.substr(7), "secret"));      // no prefix
  CHECK_FALSE(whatsapp::verify_signature("test", "sha1=" + good.substr(7), "secret"));
  CHECK_FALSE(whatsapp::verify_signature("test", good.substr(0, good.size() - 1), "secret"));  // short
  CHECK_FALSE(whatsapp::verify_signature("test", good + "0", "secret"));          // long
  std::string bad_hex = good;
  bad_hex.back() = 'g';
  CHECK_FALSE(whatsapp::verify_signature("test", bad_hex, "secret"));
  std::string flipped = good;
  flipped.back() = '5';
  CHECK_FALSE(whatsapp::verify_signature("test", flipped, "secret"));
  // The fixture signature does not survive a re-serialisation of the JSON.
  const std::string reserialised = json::parse(fixture("whatsapp_text.json")).dump();
  CHECK_FALSE(whatsapp::verify_signature(reserialised,
                                         "sha256=1c041e1c07f50386213ac582d2e17d24d70f1ed42949a6e5a5607057b805b5fc", "test_app_secret"));
}

TEST_CASE("whatsapp: verification handshake (whatsapp_verify_get.txt)") {
  CHECK(whatsapp::verify_handshake("subscribe", "YOUR_VERIFY_TOKEN", "1158201444", "YOUR_VERIFY_TOKEN") ==
        std::optional<std::string>("1158201444"));
  CHECK_FALSE(whatsapp::verify_handshake("subscribe", "wrong", "1158201444", "YOUR_VERIFY_TOKEN"));
  CHECK_FALSE(whatsapp::verify_handshake("unsubscribe", "YOUR_VERIFY_TOKEN", "1", "YOUR_VERIFY_TOKEN"));
  CHECK_FALSE(whatsapp::verify_handshake("subscribe", "", "1", ""));
  CHECK_FALSE(whatsapp::verify_handshake("", "", "", "x"));
}

TEST_CASE("whatsapp: text fixture") {
  const auto e = only_event("whatsapp_text.json");
  CHECK(e.channel == kind::whatsapp);
  CHECK(e.type == inbound_type::text);
  CHECK(e.provider_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
  CHECK(e.from == "16505551234");
  CHECK(e.display_name == "Sheena Nelson");
  CHECK(e.timestamp == 1749416383);
  CHECK(e.text == "Does it come in another color?");
  CHECK(e.reply_to.empty());
  CHECK_FALSE(e.forwarded);
}

TEST_CASE("whatsapp: a forwarded message says so (context.forwarded or frequently_forwarded)") {
  for (const char* flag : {"forwarded", "frequently_forwarded"}) {
    CAPTURE(flag);
    auto j = nlohmann::json::parse(fixture("whatsapp_text.json"));
    j["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {{flag, true}};
    const auto r = whatsapp::parse(j.dump());
    REQUIRE(r.ok);
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].forwarded);
    CHECK(r.events[0].forwarded_from.empty());  // WhatsApp does not say by whom
  }
  auto j = nlohmann::json::parse(fixture("whatsapp_text.json"));
  j["entry"][0]["changes"][0]["value"]["messages"][0]["context"] = {{"forwarded", false}, {"id", "wamid.X"}};
  CHECK_FALSE(whatsapp::parse(j.dump()).events.at(0).forwarded);
}

TEST_CASE("whatsapp: button_reply and list_reply fixtures are choices") {
  auto e = only_event("whatsapp_button_reply.json");
  CHECK(e.type == inbound_type::choice);
  CHECK(e.choice_id == "change");
  CHECK(e.text == "Change");
  CHECK(e.reply_to == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NkMzNUQ3QUI2RjE0MDg0NjQA");
  CHECK(e.timestamp == 1750275992);
  e = only_event("whatsapp_list_reply.json");
  CHECK(e.type == inbound_type::choice);
  CHECK(e.choice_id == "<ROW_ID>");
  CHECK(e.text == "<ROW_TITLE>");
  CHECK(e.raw_type == "interactive.list_reply");
}

TEST_CASE("whatsapp: image and document fixtures are media") {
  auto e = only_event("whatsapp_image.json");
  CHECK(e.type == inbound_type::media);
  CHECK(e.media_kind == "image");
  CHECK(e.media_id == "2754859441498128");
  CHECK(e.media_mime == "image/jpeg");
  CHECK(e.text == "This is a caption");
  e = only_event("whatsapp_document.json");
  CHECK(e.type == inbound_type::media);
  CHECK(e.media_kind == "document");
  CHECK(e.media_id == "1234567890987654321");
  CHECK(e.media_mime == "application/pdf");
  CHECK(e.media_filename == "filename.pdf");
  CHECK(e.text == "caption");
}

TEST_CASE("whatsapp: location fixture") {
  const auto e = only_event("whatsapp_location.json");
  CHECK(e.type == inbound_type::location);
  CHECK(e.latitude == doctest::Approx(37.4611978));
  CHECK(e.longitude == doctest::Approx(-122.2164385));
  CHECK(e.text == "Facebook HQ\n1 Hacker Way, Menlo Park, CA 94025");
}

TEST_CASE("whatsapp: status fixtures") {
  const char* files[] = {"whatsapp_status_sent.json", "whatsapp_status_delivered.json",
                         "whatsapp_status_read.json", "whatsapp_status_failed.json"};
  const char* statuses[] = {"sent", "delivered", "read", "failed"};
  for (int i = 0; i < 4; ++i) {
    CAPTURE(files[i]);
    const auto e = only_event(files[i]);
    CHECK(e.type == inbound_type::status);
    CHECK(e.status == statuses[i]);
    CHECK(e.status_for == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3NkMzNUQ3QUI2RjE0MDg0NjQA");
    CHECK(e.provider_id == e.status_for + ":" + statuses[i]);
    CHECK(e.from == "16505551234");
    CHECK(e.timestamp > 0);
  }
  CHECK(only_event("whatsapp_status_failed.json").status_error == "131047 Re-engagement message");
  CHECK(only_event("whatsapp_status_delivered.json").status_error.empty());
}

TEST_CASE("whatsapp: several entries, changes, messages and statuses in one POST") {
  const json text = json_fixture("whatsapp_text.json");
  const json status = json_fixture("whatsapp_status_read.json");
  json doc = text;
  json& value = doc["entry"][0]["changes"][0]["value"];
  json second = value["messages"][0];
  second["id"] = "wamid.2";
  second["text"]["body"] = "ثانية";
  value["messages"].push_back(second);
  value["statuses"] = status["entry"][0]["changes"][0]["value"]["statuses"];
  doc["entry"].push_back(json_fixture("whatsapp_image.json")["entry"][0]);
  doc["entry"][0]["changes"].push_back(json_fixture("whatsapp_location.json")["entry"][0]["changes"][0]);
  const auto r = whatsapp::parse(doc.dump());
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 5);
  CHECK(r.events[0].type == inbound_type::text);
  CHECK(r.events[1].provider_id == "wamid.2");
  CHECK(r.events[1].text == "ثانية");
  CHECK(r.events[2].type == inbound_type::status);
  CHECK(r.events[3].type == inbound_type::location);
  CHECK(r.events[4].type == inbound_type::media);
}

TEST_CASE("whatsapp: template quick-reply button, contacts, unknown types") {
  json doc = json_fixture("whatsapp_text.json");
  json& m = doc["entry"][0]["changes"][0]["value"]["messages"][0];
  m.erase("text");
  m["type"] = "button";
  m["button"] = {{"payload", "survey:5"}, {"text", "ممتاز"}};
  auto r = whatsapp::parse(doc.dump());
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].type == inbound_type::choice);
  CHECK(r.events[0].choice_id == "survey:5");
  CHECK(r.events[0].text == "ممتاز");

  m.erase("button");
  m["type"] = "contacts";
  m["contacts"] = json::array({{{"name", {{"formatted_name", "Sheena"}}},
                                {"phones", json::array({{{"phone", "+1 650-555-1234"}, {"wa_id", "16505551234"}, {"type", "CELL"}}})}}});
  r = whatsapp::parse(doc.dump());
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].type == inbound_type::contact);
  CHECK(r.events[0].contact_phone == "+1 650-555-1234");
  CHECK(r.events[0].contact_is_sender);
  CHECK(r.events[0].text == "Sheena");
  m["contacts"][0]["phones"][0]["wa_id"] = "966500000000";
  r = whatsapp::parse(doc.dump());
  CHECK_FALSE(r.events.at(0).contact_is_sender);

  for (const char* t : {"reaction", "order", "system", "unsupported", "hologram"}) {
    CAPTURE(t);
    m.erase("contacts");
    m["type"] = t;
    m[t] = {{"emoji", "x"}};
    r = whatsapp::parse(doc.dump());
    REQUIRE(r.ok);
    REQUIRE(r.events.size() == 1);
    CHECK(r.events[0].type == inbound_type::unsupported);
    CHECK(r.events[0].raw_type == t);
    CHECK(r.events[0].provider_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
    m.erase(t);
  }
  // An interactive nfm_reply (flow) is recorded, not routed.
  m["type"] = "interactive";
  m["interactive"] = {{"type", "nfm_reply"}, {"nfm_reply", {{"response_json", "{}"}}}};
  r = whatsapp::parse(doc.dump());
  CHECK(r.events.at(0).type == inbound_type::unsupported);
}

TEST_CASE("whatsapp: user_id is the sender when wa_id is hidden") {
  json doc = json_fixture("whatsapp_text.json");
  json& value = doc["entry"][0]["changes"][0]["value"];
  value["contacts"][0].erase("wa_id");
  value["contacts"][0]["user_id"] = "SA.123456";
  value["messages"][0].erase("from");
  value["messages"][0]["from_user_id"] = "SA.123456";
  const auto r = whatsapp::parse(doc.dump());
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].from == "SA.123456");
  CHECK(r.events[0].display_name == "Sheena Nelson");
}

TEST_CASE("whatsapp: a changed number names the old address and the new one") {
  auto ev = only_event("whatsapp_system_user_changed_number.json");
  CHECK(ev.type == inbound_type::unsupported);  // recorded, never a dialog turn
  CHECK(ev.raw_type == "system.user_changed_number");
  CHECK(ev.from == "966500000202");
  CHECK(ev.previous_addresses == std::vector<std::string>{"966500000101", "SA.OLD.1"});
  CHECK(ev.user_id == "SA.NEW.1");
  CHECK(ev.text == "User Sheena Nelson changed from 966500000101 to 966500000202");
  CHECK(ev.provider_id == "wamid.HBgMOTY2NTAwMDAwMTAxFQIAEhggU1lTVEVNMDEA");

  json doc = json_fixture("whatsapp_system_user_changed_number.json");
  json& sys = doc["entry"][0]["changes"][0]["value"]["messages"][0]["system"];
  // Before Graph v12 the new number was `new_wa_id`.
  sys.erase("wa_id");
  sys["new_wa_id"] = "966500000303";
  sys.erase("previous_user_id");
  auto r = whatsapp::parse(doc.dump());
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].from == "966500000303");
  CHECK(r.events[0].previous_addresses == std::vector<std::string>{"966500000101"});

  // Only the user id changed (a hidden number): from the previous id to the new one.
  json& m = doc["entry"][0]["changes"][0]["value"]["messages"][0];
  m.erase("from");
  m["from_user_id"] = "SA.OLD.1";
  sys = {{"type", "user_changed_user_id"}, {"body", "x"}, {"user_id", "SA.NEW.1"}, {"previous_user_id", "SA.OLD.1"}};
  r = whatsapp::parse(doc.dump());
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].raw_type == "system.user_changed_user_id");
  CHECK(r.events[0].from == "SA.NEW.1");
  CHECK(r.events[0].previous_addresses == std::vector<std::string>{"SA.OLD.1"});

  // Another system notice (the identity key changed, say) moves nobody.
  sys = {{"type", "user_identity_changed"}, {"body", "y"}, {"identity", "abc"}};
  r = whatsapp::parse(doc.dump());
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].raw_type == "system.user_identity_changed");
  CHECK(r.events[0].previous_addresses.empty());
  // A notice with the new number equal to the old one, or none at all, moves nobody either.
  m["from"] = "966500000101";
  sys = {{"type", "user_changed_number"}, {"wa_id", "966500000101"}};
  CHECK(whatsapp::parse(doc.dump()).events.at(0).previous_addresses.empty());
  sys = {{"type", "user_changed_number"}};
  CHECK(whatsapp::parse(doc.dump()).events.at(0).previous_addresses.empty());
}

TEST_CASE("whatsapp: the business-scoped user id is kept beside the phone number") {
  json doc = json_fixture("whatsapp_text.json");
  json& value = doc["entry"][0]["changes"][0]["value"];
  CHECK(whatsapp::parse(doc.dump()).events.at(0).user_id.empty());  // a payload from before BSUIDs
  value["messages"][0]["from_user_id"] = "SA.777";
  auto ev = whatsapp::parse(doc.dump()).events.at(0);
  CHECK(ev.from == value["messages"][0]["from"].get<std::string>());
  CHECK(ev.user_id == "SA.777");
  // Only in the contacts entry.
  value["messages"][0].erase("from_user_id");
  value["contacts"][0]["user_id"] = "SA.778";
  CHECK(whatsapp::parse(doc.dump()).events.at(0).user_id == "SA.778");
  // The number hidden: the user id is the sender.
  value["contacts"][0].erase("wa_id");
  value["messages"][0].erase("from");
  value["messages"][0]["from_user_id"] = "SA.778";
  ev = whatsapp::parse(doc.dump()).events.at(0);
  CHECK(ev.from == "SA.778");
  CHECK(ev.user_id == "SA.778");
}

TEST_CASE("whatsapp: someone known only by their user id is written to in `recipient`, not `to`") {
  outgoing m;
  m.to = "SA.13491208655302741918";
  m.text = "مرحبا";
  auto body = json::parse(whatsapp::render(m, cfg).body);
  CHECK(body["recipient"] == "SA.13491208655302741918");
  CHECK_FALSE(body.contains("to"));
  CHECK(body["recipient_type"] == "individual");
  CHECK(body["text"]["body"] == "مرحبا");
  m.to = "966500000001";
  body = json::parse(whatsapp::render(m, cfg).body);
  CHECK(body["to"] == "966500000001");
  CHECK_FALSE(body.contains("recipient"));
  CHECK(whatsapp::is_user_id("US.ENT.11815799212886844830"));
  for (const char* phone : {"+16505551234", "16505551234", "+1 650-555-1234", "", "SA", "sa.123"}) {
    CAPTURE(phone);
    CHECK_FALSE(whatsapp::is_user_id(phone));
  }
}

TEST_CASE("whatsapp: malformed bodies are errors, never crashes") {
  const std::string text = fixture("whatsapp_text.json");
  CHECK(whatsapp::parse("").error == "malformed json");
  CHECK(whatsapp::parse(text.substr(0, text.size() / 2)).error == "malformed json");
  CHECK(whatsapp::parse("[]").error == "not a json object");
  CHECK(whatsapp::parse("{\"object\":\"page\",\"entry\":[]}").error == "object is not whatsapp_business_account");
  CHECK(whatsapp::parse("{\"object\":\"whatsapp_business_account\"}").error == "no entry array");
  CHECK(whatsapp::parse("{\"object\":\"whatsapp_business_account\",\"entry\":{}}").error == "no entry array");
  CHECK_FALSE(whatsapp::parse("\xff\xfe").ok);
  // Wrong types inside are skipped, not fatal.
  auto r = whatsapp::parse(R"({"object":"whatsapp_business_account","entry":[1,{"changes":"x"},{"changes":[{"value":[]},
      {"value":{"messages":[7,{"id":5,"from":[],"type":"text","text":"nope","timestamp":"99999999999999999999999"}],
                "statuses":[{"id":"w","status":[]},{}]}}]}]})");
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].provider_id == "5");
  CHECK(r.events[0].timestamp == 0);
  CHECK(r.events[0].text.empty());
  // Huge numbers.
  r = whatsapp::parse(R"({"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[
      {"id":"w1","from":"1","type":"location","timestamp":1e400,"location":{"latitude":1e999,"longitude":2}}]}}]}]})");
  CHECK_FALSE(r.ok);  // 1e400 is not valid JSON for nlohmann (overflow) → malformed
  r = whatsapp::parse(R"({"object":"whatsapp_business_account","entry":[{"changes":[{"value":{"messages":[
      {"id":"w1","from":"1","type":"location","timestamp":184467440737095516150,"location":{"latitude":"x","longitude":2}}]}}]}]})");
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].type == inbound_type::unsupported);
  CHECK(r.events[0].timestamp == 0);
  // Valid envelope with nothing in it.
  r = whatsapp::parse(R"({"object":"whatsapp_business_account","entry":[]})");
  CHECK(r.ok);
  CHECK(r.events.empty());
}

TEST_CASE("whatsapp: render text matches whatsapp_send_text.json") {
  outgoing m;
  m.to = "+16505551234";
  m.text = "مرحباً، كيف يمكننا مساعدتك؟";
  const auto req = whatsapp::render(m, cfg);
  CHECK(req.method == "POST");
  CHECK(req.url == "https://graph.facebook.com/v21.0/106540352242922/messages");
  CHECK(req.content_type == "application/json");
  REQUIRE(req.headers.size() == 1);
  CHECK(req.headers[0] == std::pair<std::string, std::string>{"Authorization", "Bearer TOKEN"});
  CHECK(json::parse(req.body) == json_fixture("whatsapp_send_text.json"));
}

TEST_CASE("whatsapp: render 2 choices as reply buttons (whatsapp_send_buttons.json shape)") {
  outgoing m;
  m.to = "+16505551234";
  m.text = "<BODY_TEXT>";
  m.choices = {{"change-button", "Change", ""}, {"cancel-button", "Cancel", ""}};
  json expected = json_fixture("whatsapp_send_buttons.json");
  expected["interactive"].erase("header");  // we send no header/footer
  expected["interactive"].erase("footer");
  CHECK(json::parse(whatsapp::render(m, cfg).body) == expected);
}

TEST_CASE("whatsapp: render 4 choices as a list (whatsapp_send_list.json shape)") {
  auto m = with_choices(4);
  m.choices[0].description = "وصف";
  m.choices_button = "القائمة";
  const json j = json::parse(whatsapp::render(m, cfg).body);
  const json fx = json_fixture("whatsapp_send_list.json");
  CHECK(j["messaging_product"] == fx["messaging_product"]);
  CHECK(j["type"] == fx["type"]);
  CHECK(j["interactive"]["type"] == "list");
  CHECK(j["interactive"]["body"]["text"] == "اختر الخدمة");
  CHECK(j["interactive"]["action"]["button"] == "القائمة");
  const json& rows = j["interactive"]["action"]["sections"].at(0)["rows"];
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == json{{"id", "id0"}, {"title", "خيار 1"}, {"description", "وصف"}});
  CHECK_FALSE(rows[1].contains("description"));
  // Every key we use exists in the official shape.
  for (auto& [k, v] : j["interactive"]["action"].items()) CHECK(fx["interactive"]["action"].contains(k));
  for (auto& [k, v] : rows[0].items()) CHECK(fx["interactive"]["action"]["sections"][0]["rows"][0].contains(k));
  // 10 is still a list; the default button label is Arabic.
  auto ten = with_choices(10);
  const json j10 = json::parse(whatsapp::render(ten, cfg).body);
  CHECK(j10["interactive"]["type"] == "list");
  CHECK(j10["interactive"]["action"]["button"] == "اختر");
}

TEST_CASE("whatsapp: 3 choices are buttons, 11 become numbered text") {
  CHECK(json::parse(whatsapp::render(with_choices(3), cfg).body)["interactive"]["type"] == "button");
  const json j = json::parse(whatsapp::render(with_choices(11), cfg).body);
  CHECK(j["type"] == "text");
  const std::string body = j["text"]["body"];
  CHECK(body.rfind("اختر الخدمة\n\n1. خيار 1\n2. خيار 2\n", 0) == 0);
  CHECK(body.find("\n11. خيار 11") != std::string::npos);
}

TEST_CASE("whatsapp: long titles are clamped on code points and kept unique") {
  outgoing m;
  m.to = "1";
  m.text = "?";
  const std::string long_ar = "تقديم طلب مساعدة قانونية عاجلة";  // > 20 code points
  m.choices = {{"a", long_ar, ""}, {"b", long_ar + " ثانية", ""}, {"c", "😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀", ""}};
  const json j = json::parse(whatsapp::render(m, cfg).body);
  const json& b = j["interactive"]["action"]["buttons"];
  const std::string t0 = b[0]["reply"]["title"], t1 = b[1]["reply"]["title"], t2 = b[2]["reply"]["title"];
  CHECK(crypto::code_points(t0) == 20);
  CHECK(t0 == std::string(crypto::truncate_code_points(long_ar, 20)));
  CHECK(t1 != t0);
  CHECK(crypto::code_points(t1) == 20);
  CHECK(t1.substr(t1.size() - 2) == " 2");
  CHECK(crypto::code_points(t2) == 20);
  CHECK(t2.size() == 80);  // 20 whole 4-byte emoji

  auto list = with_choices(5);
  list.choices[0].title = std::string(30, 'x');
  list.choices[0].description = std::string(100, 'y');
  list.choices_button = "زر طويل جدا جدا جدا جدا";
  const json l = json::parse(whatsapp::render(list, cfg).body);
  const json& row = l["interactive"]["action"]["sections"][0]["rows"][0];
  CHECK(row["title"].get<std::string>().size() == 24);
  CHECK(row["description"].get<std::string>().size() == 72);
  CHECK(crypto::code_points(l["interactive"]["action"]["button"].get<std::string>()) == 20);
}

TEST_CASE("whatsapp: text body clamped to 4096 code points") {
  outgoing m;
  m.to = "1";
  for (int i = 0; i < 5000; ++i) m.text += "ع";
  const json j = json::parse(whatsapp::render(m, cfg).body);
  CHECK(crypto::code_points(j["text"]["body"].get<std::string>()) == 4096);
  // Invalid UTF-8 from a caller does not throw.
  m.text = "abc\xff";
  CHECK_NOTHROW(whatsapp::render(m, cfg));
}

TEST_CASE("whatsapp: template, mark-as-read and context") {
  outgoing t;
  t.to = "+16505551234";
  t.template_name = "<TEMPLATE_NAME>";
  t.template_lang = "ar";
  t.template_params = {"<TEXT_STRING>"};
  t.choices = {{"x", "y", ""}};  // ignored for templates
  CHECK(json::parse(whatsapp::render(t, cfg).body) == json_fixture("whatsapp_send_template.json"));

  outgoing r;
  r.mark_read_id = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA";
  json expected = json_fixture("whatsapp_mark_read.json");
  expected.erase("typing_indicator");  // we only mark read
  const auto req = whatsapp::render(r, cfg);
  CHECK(req.url == "https://graph.facebook.com/v21.0/106540352242922/messages");
  CHECK(json::parse(req.body) == expected);

  outgoing c;
  c.to = "1";
  c.text = "نعم";
  c.reply_to = "wamid.X";
  CHECK(json::parse(whatsapp::render(c, cfg).body)["context"] == json{{"message_id", "wamid.X"}});
}

TEST_CASE("whatsapp: interpret answers") {
  auto r = whatsapp::interpret(200, fixture("whatsapp_send_response.json"), "");
  CHECK(r.outcome == send_outcome::sent);
  CHECK(r.provider_message_id == "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");
  CHECK(whatsapp::interpret(200, R"({"success":true})", "").outcome == send_outcome::sent);

  r = whatsapp::interpret(400, fixture("whatsapp_error_response.json"), "");
  CHECK(r.outcome == send_outcome::rate_limited);
  CHECK(r.error == "http 400 code 131056");
  CHECK_FALSE(r.outside_window);

  r = whatsapp::interpret(400, R"({"error":{"code":131047,"message":"Re-engagement message"}})", "");
  CHECK(r.outcome == send_outcome::rejected);
  CHECK(r.outside_window);
  r = whatsapp::interpret(429, R"({"error":{"code":130429}})", "7");
  CHECK(r.outcome == send_outcome::rate_limited);
  CHECK(r.retry_after == std::chrono::seconds(7));
  CHECK(whatsapp::interpret(400, R"({"error":{"code":100}})", "").outcome == send_outcome::rejected);
  CHECK(whatsapp::interpret(401, R"({"error":{"code":190}})", "").outcome == send_outcome::rejected);
  CHECK(whatsapp::interpret(500, R"({"error":{"code":131000}})", "").outcome == send_outcome::retry);
  CHECK(whatsapp::interpret(503, "<html>", "").outcome == send_outcome::retry);
  CHECK(whatsapp::interpret(400, R"({"error":{"code":131000}})", "").outcome == send_outcome::retry);
  CHECK(whatsapp::interpret(0, "", "").outcome == send_outcome::retry);
  CHECK(whatsapp::interpret(400, "not json", "").outcome == send_outcome::rejected);
  CHECK(whatsapp::interpret(429, "", "99999").retry_after == std::chrono::hours(1));
}

TEST_CASE("whatsapp: a refusal of the account, not of the message, holds the channel; one of the message does not") {
  // The token, a permission, a policy block, a locked account, a payment problem, an
  // unregistered number, our phone_number_id unknown: every reply would fail alike.
  for (const char* body : {R"({"error":{"code":190}})", R"({"error":{"code":10}})", R"({"error":{"code":200}})",
                           R"({"error":{"code":299}})", R"({"error":{"code":131005}})", R"({"error":{"code":368}})",
                           R"({"error":{"code":131031}})", R"({"error":{"code":131042}})", R"({"error":{"code":133010}})",
                           R"({"error":{"code":100,"error_subcode":33}})"}) {
    auto r = whatsapp::interpret(400, body, "");
    CHECK_MESSAGE(r.credentials_refused, body);
    CHECK_MESSAGE(r.outcome == send_outcome::rejected, body);
  }
  // This message, or this recipient: the channel goes on.
  for (const char* body : {R"({"error":{"code":100}})", R"({"error":{"code":100,"error_subcode":2494010}})",
                           R"({"error":{"code":131026}})", R"({"error":{"code":131047}})", R"({"error":{"code":132000}})"})
    CHECK_MESSAGE(!whatsapp::interpret(400, body, "").credentials_refused, body);
  // Too many messages refused lately (spam rate limit): slowed down, not dead.
  CHECK(whatsapp::interpret(400, R"({"error":{"code":131048}})", "").outcome == send_outcome::rate_limited);
}

TEST_CASE("Retry-After: delta-seconds or an HTTP-date, clamped to an hour") {
  using aoun::channels::detail::http_date;
  using aoun::channels::detail::retry_after_header;
  CHECK(http_date("Sun, 06 Nov 1994 08:49:37 GMT") == std::optional<std::int64_t>(784111777));  // RFC 9110's example
  CHECK(http_date("Thu, 01 Jan 1970 00:00:00 GMT") == std::optional<std::int64_t>(0));
  CHECK(http_date("Sat, 29 Feb 2028 23:59:59 GMT") == std::optional<std::int64_t>(1835481599));
  for (const char* bad : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                          "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:49:37 GMT",
                          "Sun, 06 Nov 1994 -1:49:37 GMT", "Sun, 06 Nov -994 08:49:37 GMT", "Sun, +6 Nov 1994 08:49:37 GMT"})
    CHECK_MESSAGE(!http_date(bad), bad);
  const std::int64_t now = 784111777;
  CHECK(retry_after_header("Sun, 06 Nov 1994 08:50:07 GMT", now) == std::chrono::seconds(30));
  CHECK(retry_after_header(" Sun, 06 Nov 1994 08:50:07 GMT ", now) == std::chrono::seconds(30));
  CHECK(retry_after_header("Sun, 06 Nov 1994 08:49:07 GMT", now) == std::chrono::seconds(0));  // past: now
  CHECK(retry_after_header("Mon, 07 Nov 1994 08:49:37 GMT", now) == std::chrono::hours(1));    // a day: clamped
  CHECK(retry_after_header("120", now) == std::chrono::seconds(120));
  CHECK(retry_after_header("soon", now) == std::chrono::seconds(0));
}

TEST_CASE("whatsapp: a refused access token is the channel's fault, not the message's") {
  for (int status : {401, 400}) {
    auto r = whatsapp::interpret(status, R"({"error":{"message":"Error validating access token","type":"OAuthException","code":190}})", "");
    CHECK(r.outcome == send_outcome::rejected);
    CHECK(r.credentials_refused);
    CHECK(r.error == "http " + std::to_string(status) + " code 190");
  }
  CHECK(whatsapp::interpret(401, "<html>Unauthorized</html>", "").credentials_refused);
  CHECK_FALSE(whatsapp::interpret(400, R"({"error":{"code":100}})", "").credentials_refused);
  CHECK_FALSE(whatsapp::interpret(400, R"({"error":{"code":131047}})", "").credentials_refused);
  CHECK_FALSE(whatsapp::interpret(200, R"({"messages":[{"id":"wamid.1"}]})", "").credentials_refused);
}
