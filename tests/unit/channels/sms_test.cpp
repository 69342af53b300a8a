#include "channels/sms.hpp"

#include <algorithm>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "channels/crypto.hpp"
#include "channels/detail/json_write.hpp"
#include "tests/unit/channels/fixture.hpp"

using namespace aoun::channels;
using aoun::test::fixture;
using aoun::test::form_fixture;
using aoun::test::json_fixture;
using nlohmann::json;

namespace {
std::string official_params(bool duplicate) {
  if (duplicate)
    return crypto::build_form({{"Sid", "CA123"}, {"SidAccount", "AC123"}, {"Digits", "5678"}, {"Digits", "1234"}});
  return crypto::build_form({{"CallSid", "CA1234567890ABCDE"}, {"Caller", "+14158675309"}, {"Digits", "1234"},
                             {"From", "+14158675309"}, {"To", "+18005551212"}});
}
constexpr std::string_view official_url = "https://mycompany.com/myapp.php?foo=1&bar=2";
constexpr std::string_view fixture_token = "test_auth_token_12345";

sms::config twilio_cfg() {
  sms::config c;
  c.account_sid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  c.auth_token = "tok";
  c.from = "MGaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  c.public_url = "https://bot.example.org/";
  return c;
}
}  // namespace

TEST_CASE("sms: official Twilio signature vectors") {
  CHECK(sms::verify_twilio_signature(official_url, official_params(false), "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "12345"));
  // The URL Twilio called had :443; the signature without port must validate, and vice versa.
  CHECK(sms::verify_twilio_signature("https://mycompany.com:443/myapp.php?foo=1&bar=2", official_params(false),
                                     "RSOYDt4T1cUTdK1PDd93/VVr8B8=", "12345"));
  CHECK(sms::verify_twilio_signature(official_url, official_params(false), "kvajT1Ptam85bY51eRf/AJRuM3w=", "12345"));
  CHECK(sms::verify_twilio_signature("https://mycompany.com:443/myapp.php?foo=1&bar=2", official_params(false),
                                     "kvajT1Ptam85bY51eRf/AJRuM3w=", "12345"));
  CHECK(sms::verify_twilio_signature(official_url, official_params(true), "IK+Dwps556ElfBT0I3Rgjkr1wJU=", "12345"));
}

TEST_CASE("sms: fixture Twilio signature vectors") {
  CHECK(sms::verify_twilio_signature("https://bot.example.org/twilio/sms", form_fixture("twilio_inbound.txt"),
                                     "zcsVjT6wMOqMoli3n7hFr1+3QR0=", fixture_token));
  CHECK(sms::verify_twilio_signature("https://bot.example.org/twilio/sms", form_fixture("twilio_inbound_mms.txt"),
                                     "BK7MwwDV+cycn6cyNcrdpztdccM=", fixture_token));
  CHECK(sms::verify_twilio_signature("https://bot.example.org/twilio/status", form_fixture("twilio_status_delivered.txt"),
                                     "OqH/GU/SLaNQheOx6A6ROOLlxuI=", fixture_token));
  CHECK(sms::verify_twilio_signature("https://bot.example.org/twilio/status", form_fixture("twilio_status_undelivered.txt"),
                                     "X+eBs6iXLVpdiH9sFTqBUdtjiZ8=", fixture_token));
  // A pair sent twice is signed once, as Twilio's validators take a set of values per name.
  CHECK(sms::verify_twilio_signature("https://bot.example.org/twilio/sms", form_fixture("twilio_inbound.txt") + "&To=%2B966110000000",
                                     "zcsVjT6wMOqMoli3n7hFr1+3QR0=", fixture_token));
  // Field order in the body does not matter.
  auto fields = crypto::parse_form(form_fixture("twilio_inbound.txt"));
  std::reverse(fields.begin(), fields.end());
  CHECK(sms::verify_twilio_signature("https://bot.example.org/twilio/sms", crypto::build_form(fields),
                                     "zcsVjT6wMOqMoli3n7hFr1+3QR0=", fixture_token));
}

TEST_CASE("sms: bad and missing Twilio signatures are rejected") {
  const std::string body = form_fixture("twilio_inbound.txt");
  const std::string url = "https://bot.example.org/twilio/sms";
  const std::string sig = "zcsVjT6wMOqMoli3n7hFr1+3QR0=";
  CHECK_FALSE(sms::verify_twilio_signature(url, body, "", fixture_token));
  CHECK_FALSE(sms::verify_twilio_signature(url, body, sig, ""));
  CHECK_FALSE(sms::verify_twilio_signature(url, body, sig, "wrong"));
  CHECK_FALSE(sms::verify_twilio_signature(url + "/", body, sig, fixture_token));
  CHECK_FALSE(sms::verify_twilio_signature("http://bot.example.org/twilio/sms", body, sig, fixture_token));
  CHECK_FALSE(sms::verify_twilio_signature("https://bot.example.org:8443/twilio/sms", body, sig + "x", fixture_token));
  CHECK_FALSE(sms::verify_twilio_signature(url, body + "&Extra=1", sig, fixture_token));
  std::string tampered = body;
  tampered.replace(tampered.find("From=%2B966500000000"), 20, "From=%2B966500000001");
  CHECK_FALSE(sms::verify_twilio_signature(url, tampered, sig, fixture_token));
  CHECK_FALSE(sms::verify_twilio_signature(official_url, official_params(false), "RSOYDt4T1cUTdK1PDd93/VVr8B8", "12345"));
}

TEST_CASE("sms: inbound SMS fixture") {
  const auto r = sms::parse_twilio(form_fixture("twilio_inbound.txt"));
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  const auto& e = r.events[0];
  CHECK(e.channel == kind::sms);
  CHECK(e.type == inbound_type::text);
  CHECK(e.provider_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f");
  CHECK(e.from == "+966500000000");
  CHECK(e.text == "أريد معرفة حالة طلبي");
  // The trailing newline of the file does not change the parse.
  CHECK(sms::parse_twilio(fixture("twilio_inbound.txt")).events.at(0).text == e.text);
}

TEST_CASE("sms: bytes that are not UTF-8 in a Twilio field become U+FFFD, the rest is kept") {
  const auto r = sms::parse_twilio("MessageSid=SMbad1&From=%2B966500000000&To=%2B15550000000&Body=%D8%A7%FF%D8%A8"
                                   "&NumMedia=1&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm&MediaContentType0=%FF");
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].text == "ا\xEF\xBF\xBDب");
  CHECK(detail::valid_utf8(r.events[0].media_mime));
  CHECK(detail::scrub_utf8("\xC3\x28ok\xF0\x9F\x98\x80") == "\xEF\xBF\xBD(ok\xF0\x9F\x98\x80");
  CHECK(detail::scrub_utf8("سلام") == "سلام");
}

TEST_CASE("sms: inbound MMS fixture") {
  const auto r = sms::parse_twilio(form_fixture("twilio_inbound_mms.txt"));
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  const auto& e = r.events[0];
  CHECK(e.type == inbound_type::media);
  CHECK(e.media_kind == "image");
  CHECK(e.media_mime == "image/jpeg");
  CHECK(e.media_id == "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/"
                      "MMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/Media/MEcccccccccccccccccccccccccccccccc");
  CHECK(e.text == "أريد معرفة حالة طلبي");
  CHECK(e.provider_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f");

  auto two = form_fixture("twilio_inbound_mms.txt");
  two.replace(two.find("NumMedia=1"), 10, "NumMedia=2");
  two += "&MediaContentType1=application%2Fpdf&MediaUrl1=https%3A%2F%2Fx%2F1";
  const auto r2 = sms::parse_twilio(two);
  REQUIRE(r2.events.size() == 2);
  CHECK(r2.events[1].provider_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f:1");
  CHECK(r2.events[1].media_kind == "document");
  CHECK(r2.events[1].text.empty());
}

TEST_CASE("sms: status callback fixtures") {
  auto r = sms::parse_twilio(form_fixture("twilio_status_delivered.txt"));
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].type == inbound_type::status);
  CHECK(r.events[0].status == "delivered");
  CHECK(r.events[0].status_for == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  CHECK(r.events[0].provider_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:delivered");
  CHECK(r.events[0].from == "+966500000000");
  r = sms::parse_twilio(form_fixture("twilio_status_undelivered.txt"));
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].status == "failed");
  CHECK(r.events[0].provider_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:undelivered");
  CHECK(r.events[0].status_error == "30003");
}

TEST_CASE("sms: malformed Twilio bodies") {
  CHECK(sms::parse_twilio("").error == "no MessageSid");
  CHECK(sms::parse_twilio("Body=hi&From=%2B1").error == "no MessageSid");
  CHECK(sms::parse_twilio("MessageSid=SM1&Body=hi").error == "no From");
  CHECK(sms::parse_twilio("%%%&&==&").error == "no MessageSid");
  auto r = sms::parse_twilio("MessageSid=SM1&From=966500000000&Body=%ZZ&NumMedia=99999999999999999999");
  REQUIRE(r.ok);
  CHECK(r.events.at(0).from == "+966500000000");
  CHECK(r.events.at(0).text == "%ZZ");
  CHECK(r.events.at(0).type == inbound_type::text);
  r = sms::parse_twilio("MessageSid=SM1&From=%2B1&NumMedia=-3");
  CHECK(r.events.at(0).type == inbound_type::text);
}

TEST_CASE("sms: Unifonic delivery receipt token") {
  CHECK(sms::verify_unifonic_token("s3cret-token-0123456789", "s3cret-token-0123456789"));
  CHECK_FALSE(sms::verify_unifonic_token("s3cret-token-012345678", "s3cret-token-0123456789"));
  CHECK_FALSE(sms::verify_unifonic_token("S3cret-token-0123456789", "s3cret-token-0123456789"));
  CHECK_FALSE(sms::verify_unifonic_token("", "s3cret-token-0123456789"));
  CHECK_FALSE(sms::verify_unifonic_token("", ""));  // not configured: nothing matches
  CHECK_FALSE(sms::verify_unifonic_token("x", ""));
}

TEST_CASE("sms: Unifonic delivery receipt (unifonic_dlr.txt) as form, JSON and query string") {
  const std::string form = form_fixture("unifonic_dlr.txt");
  auto check_failed = [](const parse_result& r) {
    REQUIRE(r.ok);
    REQUIRE(r.events.size() == 1);
    const auto& ev = r.events[0];
    CHECK(ev.channel == kind::sms);
    CHECK(ev.type == inbound_type::status);
    CHECK(ev.status_for == "unifonic:3100000123456");
    CHECK(ev.status == "failed");
    CHECK(ev.provider_id == "unifonic:3100000123456:undeliverable");
    CHECK(ev.raw_type == "status.unifonic.undeliverable");
    CHECK(ev.from == "+966500000000");
  };
  check_failed(sms::parse_unifonic_dlr("application/x-www-form-urlencoded", form, ""));
  check_failed(sms::parse_unifonic_dlr("", "", form));  // an empty body: fields in the query string
  // JSON, with the id as a number (Unifonic's ids are numeric) and a charset parameter.
  check_failed(sms::parse_unifonic_dlr("Application/JSON; charset=utf-8",
                                       R"({"MessageID":3100000123456,"DLR":"Undeliverable","Recipient":"966500000000",)"
                                       R"("TimeCreated":"2026-11-27 10:15:02"})",
                                       ""));
  // JSON recognised by its first byte when the Content-Type says nothing useful.
  check_failed(sms::parse_unifonic_dlr("text/plain", R"(  {"MessageID":"3100000123456","DLR":"Undeliverable","Recipient":"966500000000"})", ""));

  auto status_of = [](std::string dlr) {
    auto r = sms::parse_unifonic_dlr("application/x-www-form-urlencoded", "MessageID=77&DLR=" + dlr, "");
    REQUIRE(r.ok);
    return r.events.empty() ? std::string("<none>") : r.events[0].status;
  };
  CHECK(status_of("Delivered") == "delivered");
  CHECK(status_of("DELIVERED") == "delivered");
  CHECK(status_of("Sent") == "sent");
  CHECK(status_of("Undelivered") == "failed");
  CHECK(status_of("Rejected") == "failed");
  CHECK(status_of("Expired") == "failed");
  CHECK(status_of("Failed") == "failed");
  CHECK(status_of("Queued") == "queued");  // kept raw: changes no row
  CHECK(status_of("") == "<none>");
  CHECK(status_of("+++") == "<none>");     // spaces only
  // An odd status cannot put bytes of its choosing into the event's names (they reach the logs).
  auto odd = sms::parse_unifonic_dlr("application/x-www-form-urlencoded", "MessageID=77&DLR=a%0Ab%22c", "");
  REQUIRE(odd.events.size() == 1);
  CHECK(odd.events[0].raw_type == "status.unifonic.a_b_c");
}

TEST_CASE("sms: malformed Unifonic delivery receipts") {
  CHECK(sms::parse_unifonic_dlr("application/x-www-form-urlencoded", "DLR=Delivered", "").error == "no MessageID");
  CHECK(sms::parse_unifonic_dlr("", "", "").error == "no MessageID");
  CHECK(sms::parse_unifonic_dlr("application/x-www-form-urlencoded", "MessageID=1%202&DLR=Delivered", "").error ==
        "bad MessageID");
  CHECK(sms::parse_unifonic_dlr("application/x-www-form-urlencoded", "MessageID=" + std::string(129, '7') + "&DLR=Delivered",
                                "")
            .error == "bad MessageID");
  CHECK(sms::parse_unifonic_dlr("application/x-www-form-urlencoded", "MessageID=" + std::string(128, '7') + "&DLR=Delivered",
                                "")
            .ok);
  CHECK(sms::parse_unifonic_dlr("application/json", "[1,2]", "").error == "body is not a JSON object");
  CHECK(sms::parse_unifonic_dlr("application/json", "{\"MessageID\":", "").error == "body is not a JSON object");
  CHECK(sms::parse_unifonic_dlr("application/json", R"({"MessageID":{"a":1},"DLR":"Delivered"})", "").error ==
        "no MessageID");
  CHECK(sms::parse_unifonic_dlr("application/json", R"({"MessageID":1.5,"DLR":"Delivered"})", "").error == "no MessageID");
  // A form body wins over the query string: the query is read only when the body is empty.
  const auto r = sms::parse_unifonic_dlr("application/x-www-form-urlencoded", "MessageID=5&DLR=Delivered",
                                         "MessageID=6&DLR=Undeliverable");
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].status_for == "unifonic:5");
}

TEST_CASE("sms: render Twilio request (twilio_send_request.txt shape)") {
  outgoing m;
  m.channel = kind::sms;
  m.to = "+966500000000";
  m.text = "تم استلام طلبك رقم 1234";
  const auto req = sms::render(m, twilio_cfg());
  CHECK(req.url == "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages.json");
  CHECK(req.content_type == "application/x-www-form-urlencoded");
  const auto auth = std::find_if(req.headers.begin(), req.headers.end(), [](auto& h) { return h.first == "Authorization"; });
  REQUIRE(auth != req.headers.end());
  CHECK(auth->second == "Basic " + crypto::base64_encode("ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:tok"));
  // Same fields and values as the fixture's body.
  const std::string fx = fixture("twilio_send_request.txt");
  auto expected = crypto::parse_form(form_fixture("twilio_send_request.txt").substr(fx.find("\n\n") + 2));
  auto got = crypto::parse_form(req.body);
  // Our status callbacks come to SPEC §5's single SMS webhook, not the fixture's /twilio/status.
  for (auto& [k, v] : expected)
    if (k == "StatusCallback") v = "https://bot.example.org/webhooks/sms";
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  CHECK(got == expected);
  // A phone number sender is sent as From.
  auto cfg = twilio_cfg();
  cfg.from = "+14155552345";
  cfg.public_url.clear();
  const auto f = crypto::parse_form(sms::render(m, cfg).body);
  REQUIRE(f.size() == 3);
  CHECK(f[1] == std::pair<std::string, std::string>{"From", "+14155552345"});
}

TEST_CASE("sms: render Unifonic request (unifonic_send_request.txt shape)") {
  sms::config cfg;
  cfg.outbound = sms::gateway::unifonic;
  cfg.unifonic_app_sid = "<APP_SID>";
  cfg.unifonic_sender = "<APPROVED_SENDER>";
  outgoing m;
  m.to = "+966507679351";
  m.text = "Hello there";
  const auto req = sms::render(m, cfg);
  CHECK(req.url == "https://el.cloud.unifonic.com/rest/SMS/messages");
  CHECK(req.content_type == "application/x-www-form-urlencoded");
  const std::string fx = fixture("unifonic_send_request.txt");
  const auto start = fx.find("AppSid=");
  auto expected = crypto::parse_form(fx.substr(start, fx.find('\n', start) - start));
  expected.erase(std::remove_if(expected.begin(), expected.end(), [](auto& p) { return p.first == "CorrelationID"; }),
                 expected.end());
  auto got = crypto::parse_form(req.body);
  std::sort(expected.begin(), expected.end());
  std::sort(got.begin(), got.end());
  CHECK(got == expected);
  m.to = "00966507679351";
  CHECK(crypto::parse_form(sms::render(m, cfg).body)[3].second == "966507679351");
  // No sender configured: the field is left out (Unifonic then uses the account's default).
  cfg.unifonic_sender.clear();
  for (const auto& [k, v] : crypto::parse_form(sms::render(m, cfg).body)) CHECK(k != "SenderID");
}

TEST_CASE("sms: render Taqnyat request (taqnyat_send_request.json)") {
  sms::config cfg;
  cfg.outbound = sms::gateway::taqnyat;
  cfg.taqnyat_token = "TT";
  cfg.taqnyat_sender = "SenderName";
  outgoing m;
  m.to = "+966500000000";
  m.text = "رسالة تجريبية";
  const auto req = sms::render(m, cfg);
  CHECK(req.url == "https://api.taqnyat.sa/v1/messages");
  CHECK(req.content_type == "application/json");
  CHECK(std::find(req.headers.begin(), req.headers.end(), std::pair<std::string, std::string>{"Authorization", "Bearer TT"}) !=
        req.headers.end());
  CHECK(json::parse(req.body) == json_fixture("taqnyat_send_request.json"));
}

TEST_CASE("sms: choices become numbered lines; body clamped to 1600") {
  outgoing m;
  m.to = "+966500000000";
  m.text = "اختر:";
  m.choices = {{"a", "طلب مساعدة", ""}, {"b", "استفسار", ""}};
  CHECK(sms::body_text(m) == "اختر:\n1. طلب مساعدة\n2. استفسار");
  const auto f = crypto::parse_form(sms::render(m, twilio_cfg()).body);
  CHECK(f[2].second == "اختر:\n1. طلب مساعدة\n2. استفسار");
  m.choices.clear();
  m.text.assign(2000, 'a');
  CHECK(sms::body_text(m).size() == 1600);
}

TEST_CASE("sms: segments (GSM-7 vs UCS-2)") {
  CHECK(sms::segments("") == 0);
  CHECK(sms::segments(std::string(160, 'a')) == 1);
  CHECK(sms::segments(std::string(161, 'a')) == 2);
  CHECK(sms::segments(std::string(306, 'a')) == 2);
  CHECK(sms::segments(std::string(307, 'a')) == 3);
  CHECK(sms::segments("@£$¥èé") == 1);
  // Extension characters take two septets: 80 × '{' = 160 septets = 1; 81 → 2 parts.
  std::string braces(80, '{');
  CHECK(sms::segments(braces) == 1);
  CHECK(sms::segments(braces + "{") == 2);
  // An extension character is not split across parts: 152 'a' + '€' needs 154 → still fits 2 parts
  std::string s(152, 'a');
  s += "€";
  s += std::string(10, 'a');
  CHECK(sms::segments(s) == 2);

  std::string ar;
  for (int i = 0; i < 70; ++i) ar += "ع";
  CHECK(sms::segments(ar) == 1);
  CHECK(sms::segments(ar + "ع") == 2);
  std::string ar134;
  for (int i = 0; i < 134; ++i) ar134 += "ع";
  CHECK(sms::segments(ar134) == 2);
  CHECK(sms::segments(ar134 + "ع") == 3);
  // One Arabic letter switches the whole message to UCS-2.
  CHECK(sms::segments(std::string(100, 'a')) == 1);
  CHECK(sms::segments(std::string(100, 'a') + "ع") == 2);
  // Emoji outside the BMP take two UTF-16 units: 35 emoji = 70 units = 1; 36 → 2.
  std::string emoji;
  for (int i = 0; i < 35; ++i) emoji += "😀";
  CHECK(sms::segments(emoji) == 1);
  CHECK(sms::segments(emoji + "😀") == 2);
  CHECK(sms::segments("تم استلام طلبك رقم 1234") == 1);
}

TEST_CASE("sms: interpret gateway answers") {
  auto r = sms::interpret(sms::gateway::twilio, 201, fixture("twilio_send_response.json"), "");
  CHECK(r.outcome == send_outcome::sent);
  CHECK(r.provider_message_id == "SMaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  r = sms::interpret(sms::gateway::twilio, 400, fixture("twilio_error_response.json"), "");
  CHECK(r.outcome == send_outcome::rejected);
  CHECK(r.error == "http 400 code 21211");
  r = sms::interpret(sms::gateway::twilio, 429, R"({"code":20429,"status":429})", "2");
  CHECK(r.outcome == send_outcome::rate_limited);
  CHECK(r.retry_after == std::chrono::seconds(2));
  CHECK(sms::interpret(sms::gateway::twilio, 503, "", "").outcome == send_outcome::retry);
  CHECK(sms::interpret(sms::gateway::twilio, 0, "", "").outcome == send_outcome::retry);
  CHECK(sms::interpret(sms::gateway::twilio, 401, "{}", "").outcome == send_outcome::rejected);

  r = sms::interpret(sms::gateway::unifonic, 200, R"({"success":true,"message":"","errorCode":"ER-00","data":{"MessageID":3001}})", "");
  CHECK(r.outcome == send_outcome::sent);
  CHECK(r.provider_message_id == "unifonic:3001");
  r = sms::interpret(sms::gateway::unifonic, 200, R"({"success":false,"message":"Invalid AppSid","errorCode":"ER-01"})", "");
  CHECK(r.outcome == send_outcome::rejected);
  CHECK(r.error == "http 200 code ER-01");
  CHECK(sms::interpret(sms::gateway::unifonic, 500, "", "").outcome == send_outcome::retry);
  // A 2xx that does not say "success": false may have sent it: never sent twice.
  CHECK(sms::interpret(sms::gateway::unifonic, 200, R"({"message":"queued"})", "").outcome == send_outcome::sent);
  CHECK(sms::interpret(sms::gateway::unifonic, 200, R"({"success":"false","errorCode":"ER-09"})", "").outcome ==
        send_outcome::rejected);

  r = sms::interpret(sms::gateway::taqnyat, 201, R"({"statusCode":201,"messageId":2917,"cost":0.05})", "");
  CHECK(r.outcome == send_outcome::sent);
  CHECK(r.provider_message_id == "2917");
  CHECK(sms::interpret(sms::gateway::taqnyat, 401, R"({"statusCode":401,"message":"Unauthorized"})", "").outcome ==
        send_outcome::rejected);
  CHECK(sms::interpret(sms::gateway::taqnyat, 429, "", "").outcome == send_outcome::rate_limited);
  // The full answer lists the numbers taken and refused, as strings (the shape Taqnyat's
  // clients are tested against). One number per request: refused and none taken is a rejection.
  r = sms::interpret(sms::gateway::taqnyat, 201,
                     R"({"statusCode":201,"messageId":7301,"cost":0.026,"currency":"SAR","totalCount":1,)"
                     R"("msgLength":1,"accepted":"[966500000007,]","rejected":"[]"})",
                     "");
  CHECK(r.outcome == send_outcome::sent);
  CHECK(r.provider_message_id == "7301");
  r = sms::interpret(sms::gateway::taqnyat, 201,
                     R"({"statusCode":201,"messageId":7302,"cost":0,"currency":"SAR","totalCount":1,)"
                     R"("msgLength":1,"accepted":"[]","rejected":"[966500000007,]"})",
                     "");
  CHECK(r.outcome == send_outcome::rejected);
  CHECK(r.error == "http 201 code 201 recipient rejected");
  CHECK(sms::interpret(sms::gateway::taqnyat, 201, R"({"statusCode":201,"messageId":7303,"rejected":["966500000007"]})", "")
            .outcome == send_outcome::rejected);
  // Taken, whatever else is listed; and lists that are not lists change nothing.
  CHECK(sms::interpret(sms::gateway::taqnyat, 201, R"({"messageId":7304,"accepted":"[966500000007]","rejected":"[966500000008]"})", "")
            .outcome == send_outcome::sent);
  CHECK(sms::interpret(sms::gateway::taqnyat, 201, R"({"messageId":7305,"rejected":7})", "").outcome == send_outcome::sent);
}

TEST_CASE("sms: TwiML answers") {
  CHECK(sms::twiml_empty() == fixture("twilio_twiml_empty.xml"));
  CHECK(sms::twiml_message("شكراً لتواصلك معنا. سيتم الرد عليك قريباً.") == fixture("twilio_twiml_reply.xml"));
  CHECK(sms::twiml_message("a<b>&\"'") .find("a&lt;b&gt;&amp;&quot;&apos;") != std::string::npos);
}

TEST_CASE("sms: STOP and START, from Twilio's OptOutType or its default keywords") {
  CHECK(sms::opt_out_of("", "STOP") == "stop");
  CHECK(sms::opt_out_of("", "  stop.\n") == "stop");
  CHECK(sms::opt_out_of("", "Unsubscribe") == "stop");
  for (const char* w : {"STOPALL", "END", "QUIT", "stop!", "REVOKE", "optout"}) CHECK(sms::opt_out_of("", w) == "stop");
  CHECK(sms::opt_out_of("", "start") == "start");
  CHECK(sms::opt_out_of("", "UNSTOP") == "start");
  CHECK(sms::opt_out_of("", "Yes") == "start");  // Twilio's opt-in word too (and still the dialog's)
  // The dialog's "cancel", and sentences that merely contain a keyword, are the dialog's.
  for (const char* w : {"cancel", "CANCEL", "please stop the intake", "stop it", "", "إيقاف", "STOPP", "yes please"})
    CHECK(sms::opt_out_of("", w).empty());
  // Advanced Opt-Out says what Twilio did, whatever the word (an account's own keywords).
  CHECK(sms::opt_out_of("STOP", "توقف") == "stop");
  CHECK(sms::opt_out_of("START", "ابدأ") == "start");
  CHECK(sms::opt_out_of("HELP", "STOP").empty());

  auto r = sms::parse_twilio("MessageSid=SM1&From=%2B966500000501&To=%2B15005550006&Body=Stop&NumMedia=0");
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].opt_out == "stop");
  CHECK(r.events[0].text == "Stop");
  r = sms::parse_twilio("MessageSid=SM2&From=%2B966500000501&Body=%D9%85%D8%B1%D8%AD%D8%A8%D8%A7");
  REQUIRE(r.ok);
  CHECK(r.events[0].opt_out.empty());
  // STOP written with a picture is a STOP all the same (on the event that carries the text).
  r = sms::parse_twilio(
      "MessageSid=MM3&From=%2B966500000501&Body=STOP&NumMedia=2&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fa"
      "&MediaContentType0=image%2Fjpeg&MediaUrl1=https%3A%2F%2Fapi.twilio.com%2Fb&MediaContentType1=image%2Fjpeg");
  REQUIRE(r.ok);
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0].opt_out == "stop");
  CHECK(r.events[0].text == "STOP");
  CHECK(r.events[1].opt_out.empty());
}

TEST_CASE("sms: a 401 from any gateway is our credentials, not the SMS") {
  auto tw = sms::interpret(sms::gateway::twilio, 401, R"({"code":20003,"message":"Authenticate","status":401})", "");
  CHECK(tw.outcome == send_outcome::rejected);
  CHECK(tw.credentials_refused);
  CHECK(tw.error == "http 401 code 20003");
  CHECK(sms::interpret(sms::gateway::unifonic, 401, "", "").credentials_refused);
  CHECK(sms::interpret(sms::gateway::taqnyat, 401, R"({"statusCode":401,"message":"Unauthorized"})", "").credentials_refused);
  CHECK_FALSE(sms::interpret(sms::gateway::twilio, 400, R"({"code":21211})", "").credentials_refused);
  CHECK_FALSE(sms::interpret(sms::gateway::twilio, 500, "", "").credentials_refused);
  // Unifonic refusals about the account, not the message (its "HTTP status codes" page): the
  // channel waits for the account to be put right, rather than every reply going dead.
  for (int status : {402, 403, 459}) {
    CAPTURE(status);
    auto u = sms::interpret(sms::gateway::unifonic, status, R"({"success":false})", "");
    CHECK(u.outcome == send_outcome::rejected);
    CHECK(u.credentials_refused);
  }
  // What may concern one destination only (its country's rate, the sender name there) is that
  // message's refusal: the channel goes on for everyone else.
  CHECK_FALSE(sms::interpret(sms::gateway::unifonic, 200, R"({"success":false,"message":"No rate found or insufficient funds","errorCode":"ER-01"})", "")
                  .credentials_refused);
  CHECK_FALSE(sms::interpret(sms::gateway::unifonic, 480, R"({"success":false})", "").credentials_refused);
  CHECK_FALSE(sms::interpret(sms::gateway::unifonic, 410, R"({"success":false})", "").credentials_refused);  // the recipient
  CHECK_FALSE(sms::interpret(sms::gateway::unifonic, 200, R"({"success":false,"errorCode":"ER-02"})", "").credentials_refused);
  CHECK(sms::interpret(sms::gateway::taqnyat, 403, "", "").outcome == send_outcome::rejected);
  CHECK_FALSE(sms::interpret(sms::gateway::taqnyat, 403, "", "").credentials_refused);
}
