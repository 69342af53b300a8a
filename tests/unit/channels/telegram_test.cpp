#include "channels/telegram.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "channels/crypto.hpp"
#include "tests/unit/channels/fixture.hpp"

using namespace aoun::channels;
using aoun::test::fixture;
using aoun::test::json_fixture;
using nlohmann::json;

namespace {
const telegram::config cfg{"123:ABC", "s3cret_-token", "https://api.telegram.org"};

inbound only_event(const std::string& body) {
  const auto r = telegram::parse(body);
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  return r.events.front();
}
}  // namespace

TEST_CASE("telegram: secret header") {
  CHECK(telegram::verify_secret("s3cret_-token", "s3cret_-token"));
  CHECK_FALSE(telegram::verify_secret("s3cret_-tokeN", "s3cret_-token"));
  CHECK_FALSE(telegram::verify_secret("s3cret_-toke", "s3cret_-token"));
  CHECK_FALSE(telegram::verify_secret("", "s3cret_-token"));
  CHECK_FALSE(telegram::verify_secret("", ""));
  CHECK_FALSE(telegram::verify_secret("x", ""));
}

TEST_CASE("telegram: text message fixture (/start is text)") {
  const auto e = only_event(fixture("telegram_message.json"));
  CHECK(e.channel == kind::telegram);
  CHECK(e.type == inbound_type::text);
  CHECK(e.provider_id == "10000");
  CHECK(e.from == "1111111");
  CHECK(e.display_name == "Test Firstname Test Lastname");
  CHECK(e.timestamp == 1441645532);
  CHECK(e.text == "/start");
}

TEST_CASE("telegram: callback_query fixtures") {
  auto e = only_event(fixture("telegram_callback_query_message.json"));
  CHECK(e.type == inbound_type::choice);
  CHECK(e.provider_id == "10001");
  CHECK(e.choice_id == "status:lookup");
  CHECK(e.text == "حالة الطلب");  // the pressed button's title, from the message's keyboard
  CHECK(e.callback_query_id == "4382bfdwdsb323b2d9");
  CHECK(e.from == "1111111");
  CHECK(e.reply_to == "1366");

  // Inline-mode variant: no message, so from.id is the address.
  e = only_event(fixture("telegram_callback_query.json"));
  CHECK(e.type == inbound_type::choice);
  CHECK(e.choice_id == "Data from button callback");
  CHECK(e.callback_query_id == "4382bfdwdsb323b2d9");
  CHECK(e.from == "1111111");
  CHECK(e.text.empty());
}

TEST_CASE("telegram: callback_query without data is unsupported but keeps the id to acknowledge") {
  json u = json_fixture("telegram_callback_query_message.json");
  u["callback_query"].erase("data");
  const auto e = only_event(u.dump());
  CHECK(e.type == inbound_type::unsupported);
  CHECK(e.callback_query_id == "4382bfdwdsb323b2d9");
}

TEST_CASE("telegram: contact fixture, own and someone else's") {
  auto e = only_event(fixture("telegram_contact.json"));
  CHECK(e.type == inbound_type::contact);
  CHECK(e.provider_id == "10002");
  CHECK(e.contact_phone == "966500000000");
  CHECK(e.contact_is_sender);
  CHECK(e.reply_to == "1366");
  json u = json_fixture("telegram_contact.json");
  u["message"]["contact"]["user_id"] = 2222222;
  CHECK_FALSE(only_event(u.dump()).contact_is_sender);
  u["message"]["contact"].erase("user_id");
  CHECK_FALSE(only_event(u.dump()).contact_is_sender);
}

TEST_CASE("telegram: photo fixture takes the largest size") {
  const auto e = only_event(fixture("telegram_photo.json"));
  CHECK(e.type == inbound_type::media);
  CHECK(e.media_kind == "image");
  CHECK(e.media_id == "AgACAgQAAxkBAAIBXXXXXXXXXXXXXXXlarge");
  CHECK(e.text == "صورة المستند");
  CHECK(e.provider_id == "10003");
}

TEST_CASE("telegram: document fixture") {
  const auto e = only_event(fixture("telegram_document.json"));
  CHECK(e.type == inbound_type::media);
  CHECK(e.media_kind == "document");
  CHECK(e.media_id == "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX");
  CHECK(e.media_filename == "Testfile.pdf");
  CHECK(e.media_mime == "application/pdf");
  CHECK(e.media_size == 536392);
}

TEST_CASE("telegram: a forwarded message keeps who wrote it first and when") {
  json u = json_fixture("telegram_message.json");
  CHECK_FALSE(only_event(u.dump()).forwarded);
  u["message"]["forward_origin"] = {{"type", "user"}, {"date", 1700000000},
                                    {"sender_user", {{"id", 42}, {"first_name", "Fahd"}, {"last_name", "K"}}}};
  auto e = only_event(u.dump());
  CHECK(e.forwarded);
  CHECK(e.forwarded_from == "Fahd K");
  CHECK(e.forwarded_at == 1700000000);
  CHECK(e.type == inbound_type::text);  // still the person's message to the bot
  u["message"]["forward_origin"] = {{"type", "hidden_user"}, {"date", 1700000001}, {"sender_user_name", "مجهول"}};
  CHECK(only_event(u.dump()).forwarded_from == "مجهول");
  u["message"]["forward_origin"] = {{"type", "channel"}, {"date", 1}, {"chat", {{"id", -100}, {"title", "News"}}}, {"message_id", 5}};
  CHECK(only_event(u.dump()).forwarded_from == "News");
  // Before Bot API 7.0
  u["message"].erase("forward_origin");
  u["message"]["forward_date"] = 1600000000;
  u["message"]["forward_sender_name"] = "Hidden";
  e = only_event(u.dump());
  CHECK(e.forwarded);
  CHECK(e.forwarded_at == 1600000000);
  CHECK(e.forwarded_from == "Hidden");
}

TEST_CASE("telegram: location, edited_message, other updates, voice") {
  json u = json_fixture("telegram_message.json");
  u["message"].erase("text");
  u["message"]["location"] = {{"latitude", 24.7136}, {"longitude", 46.6753}};
  auto e = only_event(u.dump());
  CHECK(e.type == inbound_type::location);
  CHECK(e.latitude == doctest::Approx(24.7136));
  CHECK(e.longitude == doctest::Approx(46.6753));

  u["message"].erase("location");
  u["message"]["poll"] = {{"id", "p"}};
  e = only_event(u.dump());
  CHECK(e.type == inbound_type::unsupported);
  CHECK(e.raw_type == "poll");
  u["message"].erase("poll");
  u["message"]["dice"] = {{"emoji", "🎲"}, {"value", 3}};
  CHECK(only_event(u.dump()).raw_type == "dice");
  u["message"].erase("dice");
  u["message"]["pinned_message"] = {{"message_id", 1}};  // a service message: no name of its own
  CHECK(only_event(u.dump()).raw_type == "message");

  json edited = json_fixture("telegram_message.json");
  edited["edited_message"] = edited["message"];
  edited.erase("message");
  e = only_event(edited.dump());
  CHECK(e.type == inbound_type::unsupported);
  CHECK(e.raw_type == "edited_message");
  CHECK(e.from == "1111111");
  CHECK(e.provider_id == "10000");
  CHECK(e.text == "/start");  // what the message says now, for staff
  CHECK_FALSE(e.location_update);
  CHECK(e.message_ref == "1365");

  // A live location: shared for live_period seconds, then moved by editing its message.
  u = json_fixture("telegram_message.json");
  u["message"].erase("text");
  u["message"]["location"] = {{"latitude", 24.7136}, {"longitude", 46.6753}, {"live_period", 900}};
  e = only_event(u.dump());
  CHECK(e.type == inbound_type::location);
  CHECK(e.live_period == 900);
  CHECK(e.message_ref == "1365");
  CHECK_FALSE(e.location_update);
  edited = u;
  edited["edited_message"] = edited["message"];
  edited.erase("message");
  edited["edited_message"]["location"] = {{"latitude", 24.72}, {"longitude", 46.68}, {"live_period", 900}};
  e = only_event(edited.dump());
  CHECK(e.type == inbound_type::unsupported);  // never a dialog turn
  CHECK(e.raw_type == "edited_message");
  CHECK(e.location_update);
  CHECK(e.message_ref == "1365");
  CHECK(e.latitude == doctest::Approx(24.72));
  CHECK(e.longitude == doctest::Approx(46.68));
  // Not a moving place: an edited venue, or a live location in a group.
  json venue = edited;
  venue["edited_message"]["venue"] = {{"location", {{"latitude", 21.4858}, {"longitude", 39.1925}}}, {"title", "T"}};
  CHECK_FALSE(only_event(venue.dump()).location_update);
  json group = edited;
  group["edited_message"]["chat"] = {{"id", -100123}, {"type", "group"}};
  e = only_event(group.dump());
  CHECK_FALSE(e.location_update);
  CHECK(e.raw_type == "group:edited_message");

  e = only_event(R"({"update_id":5,"my_chat_member":{}})");
  CHECK(e.type == inbound_type::unsupported);
  CHECK(e.raw_type == "my_chat_member:");
  CHECK(e.opt_out.empty());
  e = only_event(R"({"update_id":4,"channel_post":{"chat":{"id":-100777,"type":"channel"}}})");
  CHECK(e.raw_type == "channel_post");
  CHECK(e.from == "-100777");
  // A connected business account's chat with its contact (whose chat id is the contact's own,
  // as in their chat with the bot): never filed as the contact's message to us.
  for (const char* kind : {"business_message", "edited_business_message"}) {
    json b = json::object({{"update_id", 6}});
    b[kind] = {{"message_id", 9}, {"business_connection_id", "bc1"}, {"chat", {{"id", 5151}, {"type", "private"}}},
               {"from", {{"id", 777}, {"is_bot", false}, {"first_name", "Owner"}}}, {"date", 1750000000}, {"text", "hello"}};
    e = only_event(b.dump());
    CHECK(e.type == inbound_type::unsupported);
    CHECK(e.raw_type == std::string("business:") + kind);
    CHECK(e.from.empty());
  }
  e = only_event(R"({"update_id":7,"deleted_business_messages":{"business_connection_id":"bc1","chat":{"id":5151,"type":"private"},"message_ids":[9]}})");
  CHECK(e.raw_type == "business:deleted_business_messages");
  CHECK(e.from.empty());

  // The person blocks the bot, then restarts it (the Bot API's ChatMemberUpdated).
  json member = {{"update_id", 7},
                 {"my_chat_member",
                  {{"chat", {{"id", 1111111}, {"type", "private"}, {"first_name", "Sara"}}},
                   {"from", {{"id", 1111111}, {"is_bot", false}, {"first_name", "Sara"}}},
                   {"date", 1441645600},
                   {"old_chat_member", {{"status", "member"}, {"user", {{"id", 42}, {"is_bot", true}, {"first_name", "Aoun"}}}}},
                   {"new_chat_member", {{"status", "kicked"}, {"until_date", 0}, {"user", {{"id", 42}, {"is_bot", true}, {"first_name", "Aoun"}}}}}}}};
  e = only_event(member.dump());
  CHECK(e.type == inbound_type::unsupported);
  CHECK(e.raw_type == "my_chat_member:kicked");
  CHECK(e.opt_out == "stop");
  CHECK(e.from == "1111111");
  CHECK(e.display_name == "Sara");
  member["my_chat_member"]["new_chat_member"]["status"] = "member";
  e = only_event(member.dump());
  CHECK(e.raw_type == "my_chat_member:member");
  CHECK(e.opt_out == "start");
  // In a group it is the group removing the bot: recorded, nobody opts out.
  member["my_chat_member"]["chat"] = {{"id", -100123}, {"type", "supergroup"}, {"title", "Family"}};
  member["my_chat_member"]["new_chat_member"]["status"] = "kicked";
  e = only_event(member.dump());
  CHECK(e.raw_type == "group:my_chat_member:kicked");
  CHECK(e.opt_out.empty());
  e = only_event(R"({"update_id":6})");
  CHECK(e.type == inbound_type::unsupported);
}

TEST_CASE("telegram: malformed updates") {
  const std::string msg = fixture("telegram_message.json");
  CHECK(telegram::parse("").error == "malformed json");
  CHECK(telegram::parse(msg.substr(0, 40)).error == "malformed json");
  CHECK(telegram::parse("42").error == "not a json object");
  CHECK(telegram::parse(R"({"message":{}})").error == "no integer update_id");
  CHECK(telegram::parse(R"({"update_id":"10000"})").error == "no integer update_id");
  CHECK(telegram::parse(R"({"update_id":1.5})").error == "no integer update_id");
  CHECK(telegram::parse(R"({"update_id":18446744073709551615})").error == "update_id out of range");
  CHECK(telegram::parse(R"({"update_id":1e999})").error == "malformed json");
  // Wrong types inside are tolerated.
  auto r = telegram::parse(R"({"update_id":7,"message":{"chat":{"id":"x"},"from":[],"text":5,"photo":"no","date":-1}})");
  REQUIRE(r.ok);
  CHECK(r.events.at(0).type == inbound_type::unsupported);
  r = telegram::parse(R"({"update_id":8,"message":{"chat":{"id":99999999999999999999},"photo":[1,{"file_id":"a","width":1e300,"height":5}]}})");
  REQUIRE(r.ok);
  CHECK(r.events.at(0).media_id == "a");
  CHECK(r.events.at(0).from.empty());
  r = telegram::parse(R"({"update_id":9,"callback_query":{"id":1,"data":{}}})");
  REQUIRE(r.ok);
  CHECK(r.events.at(0).type == inbound_type::unsupported);
  CHECK(r.events.at(0).callback_query_id == "1");
}

TEST_CASE("telegram: render inline keyboard matches telegram_send_message_inline_keyboard.json") {
  outgoing m;
  m.channel = kind::telegram;
  m.to = "1111111";
  m.text = "اختر الخدمة";
  m.choices = {{"intake:start", "تقديم طلب", ""}, {"status:lookup", "حالة الطلب", ""}, {"handoff", "التحدث مع موظف", ""}};
  const auto req = telegram::render(m, cfg);
  CHECK(req.url == "https://api.telegram.org/bot123:ABC/sendMessage");
  CHECK(req.content_type == "application/json");
  CHECK(req.headers.empty());
  CHECK(json::parse(req.body) == json_fixture("telegram_send_message_inline_keyboard.json"));
}

TEST_CASE("telegram: render contact request matches telegram_send_message_request_contact.json") {
  outgoing m;
  m.to = "1111111";
  m.text = "يرجى مشاركة رقم جوالك";
  m.request_contact = true;
  CHECK(json::parse(telegram::render(m, cfg).body) == json_fixture("telegram_send_message_request_contact.json"));
  m.choices = {{"share", "أرسل رقمي", ""}};
  CHECK(json::parse(telegram::render(m, cfg).body)["reply_markup"]["keyboard"][0][0]["text"] == "أرسل رقمي");
}

TEST_CASE("telegram: render answerCallbackQuery matches telegram_answer_callback_query.json") {
  outgoing m;
  m.callback_query_id = "4382bfdwdsb323b2d9";
  m.text = "تم";
  m.choices = {{"ignored", "ignored", ""}};
  const auto req = telegram::render(m, cfg);
  CHECK(req.url == "https://api.telegram.org/bot123:ABC/answerCallbackQuery");
  CHECK(json::parse(req.body) == json_fixture("telegram_answer_callback_query.json"));
  m.text.clear();
  CHECK_FALSE(json::parse(telegram::render(m, cfg).body).contains("text"));
  for (int i = 0; i < 300; ++i) m.text += "ت";
  CHECK(crypto::code_points(json::parse(telegram::render(m, cfg).body)["text"].get<std::string>()) == 200);
}

TEST_CASE("telegram: limits — callback_data 64 bytes, text 4096, non-numeric chat, reply") {
  outgoing m;
  m.to = "@channel";
  m.text = std::string(5000, 'a');
  m.choices = {{std::string(63, 'x') + "é", "t", ""}, {"", "", ""}};
  m.reply_to = "1366";
  const json j = json::parse(telegram::render(m, cfg).body);
  CHECK(j["chat_id"] == "@channel");
  CHECK(j["text"].get<std::string>().size() == 4096);
  CHECK(j["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == std::string(63, 'x'));
  CHECK(j["reply_markup"]["inline_keyboard"][1][0]["callback_data"] == "2");
  CHECK(j["reply_markup"]["inline_keyboard"][1][0]["text"] == "2");
  CHECK(j["reply_parameters"]["message_id"] == 1366);
  m.to = "-1001234567890";
  CHECK(json::parse(telegram::render(m, cfg).body)["chat_id"] == -1001234567890LL);
  // A plain message takes down a share-contact keyboard left under the input field.
  m.choices.clear();
  CHECK(json::parse(telegram::render(m, cfg).body)["reply_markup"] == json{{"remove_keyboard", true}});
}

TEST_CASE("telegram: interpret answers") {
  auto r = telegram::interpret(429, fixture("telegram_error_429.json"), "");
  CHECK(r.outcome == send_outcome::rate_limited);
  CHECK(r.retry_after == std::chrono::seconds(5));
  CHECK(r.error == "http 429 code 429");
  r = telegram::interpret(429, "", "3");
  CHECK(r.retry_after == std::chrono::seconds(3));
  r = telegram::interpret(200, fixture("telegram_ok_response.json"), "");
  CHECK(r.outcome == send_outcome::sent);
  r = telegram::interpret(200, R"({"ok":true,"result":{"message_id":1370,"chat":{"id":1}}})", "");
  CHECK(r.outcome == send_outcome::sent);
  CHECK(r.provider_message_id == "1370");
  r = telegram::interpret(400, R"({"ok":false,"error_code":400,"description":"Bad Request: chat not found"})", "");
  CHECK(r.outcome == send_outcome::rejected);
  // What Telegram refused, for staff: a chat that is gone is not a message we built wrong.
  CHECK(r.error == "http 400 code 400: Bad Request: chat not found");
  CHECK_FALSE(r.recipient_blocked);
  CHECK(telegram::interpret(400, R"({"ok":false,"error_code":400,"description":"Bad Request: BUTTON_DATA_INVALID"})", "").error ==
        "http 400 code 400: Bad Request: BUTTON_DATA_INVALID");
  // A description with details could echo what was sent: not copied.
  for (const char* d : {"Bad Request: can't parse entities: Can't find end of the entity starting at byte offset 12",
                        "Bad Request: message to reply not found 1370", "Bad Request: \u0633\u0631\u0642\u0629",
                        "Something else happened"})
    CHECK(telegram::interpret(400, json{{"ok", false}, {"error_code", 400}, {"description", d}}.dump(), "").error ==
          "http 400 code 400");
  r = telegram::interpret(403, R"({"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"})", "");
  CHECK(r.outcome == send_outcome::rejected);
  CHECK(r.recipient_blocked);
  CHECK(r.error == "http 403 code 403: Forbidden: bot was blocked by the user");  // said to staff
  // A 403 that is not Telegram's (a proxy's page) is not a block.
  r = telegram::interpret(403, "<html>Forbidden</html>", "");
  CHECK(r.outcome == send_outcome::rejected);
  CHECK_FALSE(r.recipient_blocked);
  CHECK(telegram::interpret(502, "Bad Gateway", "").outcome == send_outcome::retry);
  CHECK(telegram::interpret(0, "", "").outcome == send_outcome::retry);
  CHECK(telegram::interpret(200, R"({"ok":false,"error_code":400})", "").outcome == send_outcome::rejected);
}

TEST_CASE("telegram: voice notes, audio, video, round videos, GIFs and stickers are media with their file_id") {
  // Shapes from the Bot API's Voice, Audio, Video, VideoNote, Animation and Sticker objects.
  struct want {
    json field;
    const char* name;
    const char* kind;
    const char* mime;
  };
  const want cases[] = {
      {{{"file_id", "VOICE1"}, {"file_unique_id", "u"}, {"duration", 4}, {"mime_type", "audio/ogg"}}, "voice", "audio", "audio/ogg"},
      {{{"file_id", "VOICE2"}, {"file_unique_id", "u"}, {"duration", 4}}, "voice", "audio", "audio/ogg"},
      {{{"file_id", "AUDIO1"}, {"file_unique_id", "u"}, {"duration", 90}, {"file_name", "rec.m4a"}, {"mime_type", "audio/mp4"}},
       "audio", "audio", "audio/mp4"},
      {{{"file_id", "VIDEO1"}, {"file_unique_id", "u"}, {"width", 640}, {"height", 360}, {"duration", 9}}, "video", "video", "video/mp4"},
      {{{"file_id", "NOTE1"}, {"file_unique_id", "u"}, {"length", 240}, {"duration", 5}}, "video_note", "video", "video/mp4"},
      {{{"file_id", "GIF1"}, {"file_unique_id", "u"}, {"width", 1}, {"height", 1}, {"duration", 1}, {"mime_type", "video/mp4"}},
       "animation", "video", "video/mp4"},
      {{{"file_id", "STK1"}, {"file_unique_id", "u"}, {"type", "regular"}, {"width", 512}, {"height", 512},
        {"is_animated", false}, {"is_video", false}, {"emoji", "🙏"}},
       "sticker", "sticker", "image/webp"},
      {{{"file_id", "STK2"}, {"file_unique_id", "u"}, {"type", "regular"}, {"width", 512}, {"height", 512},
        {"is_animated", true}, {"is_video", false}},
       "sticker", "sticker", "application/x-tgsticker"},
      {{{"file_id", "STK3"}, {"file_unique_id", "u"}, {"type", "regular"}, {"width", 512}, {"height", 512},
        {"is_animated", false}, {"is_video", true}},
       "sticker", "sticker", "video/webm"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.field.dump());
    json u = json_fixture("telegram_message.json");
    u["message"].erase("text");
    u["message"][c.name] = c.field;
    // The Bot API sends an animation's `document` as well, for clients that predate animations.
    if (std::string_view(c.name) == "animation") u["message"]["document"] = c.field;
    u["message"]["caption"] = "تسجيل صوتي";
    auto e = only_event(u.dump());
    CHECK(e.type == inbound_type::media);
    CHECK(e.raw_type == c.name);
    CHECK(e.media_kind == c.kind);
    CHECK(e.media_id == c.field["file_id"].get<std::string>());
    CHECK(e.media_mime == c.mime);
    CHECK(e.media_filename == c.field.value("file_name", ""));
    CHECK(e.text == "تسجيل صوتي");
    // Without a file_id there is nothing to fetch: recorded as what it is.
    u["message"][c.name].erase("file_id");
    u["message"].erase("document");
    e = only_event(u.dump());
    CHECK(e.type == inbound_type::unsupported);
    CHECK(e.raw_type == c.name);
  }
}

TEST_CASE("telegram: a venue is a location with its name and address") {
  json u = json_fixture("telegram_message.json");
  u["message"].erase("text");
  u["message"]["location"] = {{"latitude", 21.4858}, {"longitude", 39.1925}};
  u["message"]["venue"] = {{"location", {{"latitude", 21.4858}, {"longitude", 39.1925}}},
                           {"title", "مركز الشرطة"},
                           {"address", "جدة، حي الروضة"}};
  auto e = only_event(u.dump());
  CHECK(e.type == inbound_type::location);
  CHECK(e.raw_type == "venue");
  CHECK(e.latitude == doctest::Approx(21.4858));
  CHECK(e.longitude == doctest::Approx(39.1925));
  CHECK(e.text == "مركز الشرطة\nجدة، حي الروضة");
}

TEST_CASE("telegram: messages and button presses from a group, supergroup or channel are never dialog turns") {
  for (const char* type : {"group", "supergroup", "channel"}) {
    CAPTURE(type);
    json u = json_fixture("telegram_message.json");
    u["message"]["chat"] = {{"id", -100123}, {"type", type}, {"title", "عائلة"}};
    auto e = only_event(u.dump());
    CHECK(e.type == inbound_type::unsupported);
    CHECK(e.raw_type == "group:text");
    CHECK(e.from == "-100123");
    CHECK(!e.text.empty());  // kept for staff

    json q = json_fixture("telegram_callback_query.json");
    q["callback_query"]["message"]["chat"] = {{"id", -100123}, {"type", type}};
    e = only_event(q.dump());
    CHECK(e.type == inbound_type::unsupported);
    CHECK(e.raw_type == "group:callback_query");
    CHECK(!e.callback_query_id.empty());  // still acknowledged
  }
  // A private chat is what it always was.
  json u = json_fixture("telegram_message.json");
  u["message"]["chat"]["type"] = "private";
  CHECK(only_event(u.dump()).type == inbound_type::text);
}

TEST_CASE("telegram: a revoked or wrong bot token is the channel's fault") {
  auto r = telegram::interpret(401, R"({"ok":false,"error_code":401,"description":"Unauthorized"})", "");
  CHECK(r.outcome == send_outcome::rejected);
  CHECK(r.credentials_refused);
  CHECK_FALSE(r.recipient_blocked);
  CHECK(telegram::interpret(404, R"({"ok":false,"error_code":404,"description":"Not Found"})", "").credentials_refused);
  CHECK_FALSE(telegram::interpret(404, "<html>404</html>", "").credentials_refused);  // a proxy's page
  CHECK_FALSE(telegram::interpret(400, R"({"ok":false,"error_code":400,"description":"Bad Request: chat not found"})", "").credentials_refused);
  CHECK_FALSE(telegram::interpret(403, R"({"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"})", "").credentials_refused);
}
