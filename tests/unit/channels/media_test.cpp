// channels/media: the request builders and answer readers of the media download flows, and the
// trust rules that keep a webhook's media id from pointing the server at arbitrary hosts.
#include "channels/media.hpp"

#include <doctest/doctest.h>

using namespace aoun::channels;

namespace {
std::string header(const provider_request& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}
}  // namespace

TEST_CASE("media: same_origin compares scheme, host (any case) and port") {
  CHECK(media::same_origin("https://api.twilio.com/a", "https://API.twilio.com:443/b"));
  CHECK_FALSE(media::same_origin("https://api.twilio.com/a", "http://api.twilio.com/a"));
  CHECK_FALSE(media::same_origin("https://api.twilio.com/a", "https://api.twilio.com:8443/a"));
  CHECK_FALSE(media::same_origin("https://api.twilio.com/a", "https://api.twilio.com.evil.example/a"));
  CHECK_FALSE(media::same_origin("not a url", "not a url"));
}

TEST_CASE("media: resolve_location handles absolute, scheme-relative and absolute-path Locations") {
  const std::string cur = "https://api.twilio.com/2010-04-01/x";
  CHECK(media::resolve_location(cur, "https://s3.example/f?sig=1") == "https://s3.example/f?sig=1");
  CHECK(media::resolve_location(cur, "//cdn.example/f") == "https://cdn.example/f");
  CHECK(media::resolve_location(cur, "/other") == "https://api.twilio.com/other");
  CHECK(media::resolve_location("http://127.0.0.1:8080/a", "/b") == "http://127.0.0.1:8080/b");
  CHECK_FALSE(media::resolve_location(cur, "relative/path"));
  CHECK_FALSE(media::resolve_location(cur, ""));
  CHECK_FALSE(media::resolve_location(cur, "ftp://x/y"));
  CHECK_FALSE(media::resolve_location(cur, "javascript:alert(1)"));
}

TEST_CASE("media: WhatsApp lookup is a Bearer GET of {api_base}/{id}, and only for URL-safe ids") {
  whatsapp::config cfg;
  cfg.token = "T";
  auto r = media::whatsapp_lookup(cfg, "2754859441498128");
  REQUIRE(r);
  CHECK(r->method == "GET");
  CHECK(r->url == "https://graph.facebook.com/v21.0/2754859441498128");
  CHECK(header(*r, "Authorization") == "Bearer T");
  CHECK_FALSE(media::whatsapp_lookup(cfg, ""));
  CHECK_FALSE(media::whatsapp_lookup(cfg, "../../me"));
  CHECK_FALSE(media::whatsapp_lookup(cfg, "1?fields=x"));
  CHECK_FALSE(media::whatsapp_lookup(cfg, "1/messages"));

  auto loc = media::read_whatsapp_lookup(
      R"({"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1",)"
      R"("mime_type":"image/jpeg","sha256":"abc","file_size":"303833","id":"2754859441498128"})");
  REQUIRE(loc);
  CHECK(loc->url == "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1");
  CHECK(loc->mime == "image/jpeg");
  CHECK(loc->size == 303833u);
  CHECK_FALSE(media::read_whatsapp_lookup(R"({"error":{"code":100}})"));
  CHECK_FALSE(media::read_whatsapp_lookup(R"({"url":5})"));
  CHECK_FALSE(media::read_whatsapp_lookup("not json"));
}

TEST_CASE("media: Telegram getFile, its answer, and the file URL") {
  telegram::config cfg;
  cfg.token = "123:ABC";
  auto r = media::telegram_get_file(cfg, "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX");
  REQUIRE(r);
  CHECK(r->method == "GET");
  CHECK(r->url == "https://api.telegram.org/bot123:ABC/getFile?file_id=AwADBAADbXXXXXXXXXXXGBdhD2l6_XX");
  CHECK_FALSE(media::telegram_get_file(cfg, "a&chat_id=1"));

  auto f = media::read_telegram_get_file(
      R"({"ok":true,"result":{"file_id":"x","file_unique_id":"y","file_size":536392,"file_path":"documents/file_3.pdf"}})");
  REQUIRE(f);
  CHECK(f->file_path == "documents/file_3.pdf");
  CHECK(f->size == 536392u);
  CHECK(media::telegram_download(cfg, f->file_path).url ==
        "https://api.telegram.org/file/bot123:ABC/documents/file_3.pdf");
  CHECK_FALSE(media::read_telegram_get_file(R"({"ok":false,"error_code":400,"description":"Bad Request: file is too big"})"));
  CHECK_FALSE(media::read_telegram_get_file(R"({"ok":true,"result":{"file_id":"x"}})"));  // no file_path
  CHECK_FALSE(media::read_telegram_get_file(R"({"ok":true,"result":{"file_path":"../../bot1:X/getMe"}})"));
  CHECK_FALSE(media::read_telegram_get_file(R"({"ok":true,"result":{"file_path":"/etc/passwd"}})"));
  CHECK_FALSE(media::read_telegram_get_file(R"({"ok":true,"result":{"file_path":"a?b"}})"));
}

TEST_CASE("media: a Twilio MediaUrl is fetched only on the API base's origin, under our account's messages") {
  sms::config cfg;
  cfg.account_sid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
  cfg.auth_token = "tok";
  const std::string good =
      "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/"
      "MMbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb/Media/MEcccccccccccccccccccccccccccccccc";
  auto r = media::twilio_media(cfg, good);
  REQUIRE(r);
  CHECK(r->url == good);
  CHECK(header(*r, "Authorization") == "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTp0b2s=");
  // Foreign hosts, look-alike hosts, other schemes and ports: refused (no open proxy, no SSRF).
  CHECK_FALSE(media::twilio_media(cfg, "https://evil.example/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/M/Media/M"));
  CHECK_FALSE(media::twilio_media(cfg, "https://api.twilio.com.evil.example/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/M"));
  CHECK_FALSE(media::twilio_media(cfg, "http://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/M"));
  CHECK_FALSE(media::twilio_media(cfg, "http://169.254.169.254/latest/meta-data/"));
  // Our credentials are not usable on other resources or other accounts through a webhook.
  CHECK_FALSE(media::twilio_media(cfg, "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.json"));
  CHECK_FALSE(media::twilio_media(cfg, "https://api.twilio.com/2010-04-01/Accounts/ACzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz/Messages/M/Media/M"));
  CHECK_FALSE(media::twilio_media(cfg, "https://api.twilio.com/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/../../../Accounts.json"));
  CHECK_FALSE(media::twilio_media(cfg, good + "?x=1"));
  CHECK_FALSE(media::twilio_media(cfg, "not a url"));
  cfg.api_base = "http://127.0.0.1:9000";
  CHECK(media::twilio_media(cfg, "http://127.0.0.1:9000/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/M/Media/M"));
  CHECK_FALSE(media::twilio_media(cfg, "http://127.0.0.1:9001/2010-04-01/Accounts/ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Messages/M/Media/M"));
}
