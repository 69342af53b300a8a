// channels/media: the request builders and answer readers of the media download flows, and the
// trust rules that keep a webhook's media id from pointing the server at arbitrary hosts.
#include "channels/media.hpp"

#include <doctest/doctest.h>

#include "channels/detail/url.hpp"

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

TEST_CASE("media: URLs with controls, spaces or non-ASCII are refused (header injection on an authorized request)") {
  // Graph's `url` or a Location could carry CR/LF: written verbatim into the request line, it
  // would add headers of its choosing to a request that carries our Bearer token.
  CHECK(detail::split_url("https://lookaside.fbsbx.com/a?b=c%20d"));
  CHECK_FALSE(detail::split_url("https://lookaside.fbsbx.com/a\r\nX-Injected: 1"));
  CHECK_FALSE(detail::split_url("https://lookaside.fbsbx.com/a\nb"));
  CHECK_FALSE(detail::split_url("https://lookaside.fbsbx.com/a b"));
  CHECK_FALSE(detail::split_url("https://lookaside.fbsbx.com/a\tb"));
  CHECK_FALSE(detail::split_url(std::string("https://lookaside.fbsbx.com/a\0b", 32)));
  CHECK_FALSE(detail::split_url("https://lookaside.fbsbx.com/a\x7f"));
  CHECK_FALSE(detail::split_url("https://lookaside.fbsbx.com/\xd9\x87"));
  CHECK_FALSE(detail::split_url("https://host name/"));
  CHECK_FALSE(media::resolve_location("https://api.twilio.com/a", "/b\r\nX: y"));
  CHECK_FALSE(media::resolve_location("https://api.twilio.com/a", "https://s3.example/f\r\nX: y"));
  CHECK_FALSE(media::next_hop("https://api.twilio.com/a", "//s3.example/ f", false));
}

TEST_CASE("media: next_hop is https-only unless the base is http, never downgrades, and drops auth across origins") {
  const std::string cur = "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME";
  auto same = media::next_hop(cur, "/2010-04-01/Accounts/AC/Messages/MM/Media/ME.json", false);
  REQUIRE(same);
  CHECK(same->url == "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME.json");
  CHECK(same->keep_authorization);
  auto other = media::next_hop(cur, "https://s3-external-1.amazonaws.com/media.twiliocdn.com/AC/x?Signature=1", false);
  REQUIRE(other);
  CHECK_FALSE(other->keep_authorization);  // signed storage needs no credentials, and gets none
  // Same host, other port or scheme: another origin.
  auto port = media::next_hop(cur, "https://api.twilio.com:8443/x", false);
  REQUIRE(port);
  CHECK_FALSE(port->keep_authorization);
  // No downgrade from https, in any spelling.
  CHECK_FALSE(media::next_hop(cur, "http://api.twilio.com/x", false));
  CHECK_FALSE(media::next_hop(cur, "http://s3.example/x", false));
  CHECK_FALSE(media::next_hop("http://api.twilio.com/a", "/x", false));  // relative to an http URL
  CHECK_FALSE(media::next_hop(cur, "ftp://s3.example/x", false));
  CHECK_FALSE(media::next_hop(cur, "", false));
  // Tests' fake providers are http: allowed only when the API base is.
  auto fake = media::next_hop("http://127.0.0.1:9000/a", "http://127.0.0.1:9001/b", true);
  REQUIRE(fake);
  CHECK(fake->url == "http://127.0.0.1:9001/b");
  CHECK_FALSE(fake->keep_authorization);
  auto fake_same = media::next_hop("http://127.0.0.1:9000/a", "/b", true);
  REQUIRE(fake_same);
  CHECK(fake_same->keep_authorization);
}

TEST_CASE("media: the WhatsApp Bearer token goes only to Meta's media host or Graph's own origin") {
  const std::string graph = "https://graph.facebook.com/v21.0";
  CHECK(media::whatsapp_download_allowed("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1&ext=2", graph));
  CHECK(media::whatsapp_download_allowed("https://LOOKASIDE.fbsbx.com/whatsapp_business/attachments/?mid=1", graph));
  CHECK(media::whatsapp_download_allowed("https://graph.facebook.com/v21.0/media/1", graph));
  CHECK_FALSE(media::whatsapp_download_allowed("https://evil.example/steal", graph));
  CHECK_FALSE(media::whatsapp_download_allowed("https://lookaside.fbsbx.com.evil.example/x", graph));
  CHECK_FALSE(media::whatsapp_download_allowed("https://evil.lookaside.fbsbx.com/x", graph));
  CHECK_FALSE(media::whatsapp_download_allowed("https://lookaside.fbsbx.com:8443/x", graph));
  CHECK_FALSE(media::whatsapp_download_allowed("http://lookaside.fbsbx.com/x", graph));
  CHECK_FALSE(media::whatsapp_download_allowed("https://lookaside.fbsbx.com/x\r\nX: y", graph));
  // Tests run Graph and its "lookaside" as http fakes on loopback: any host then.
  CHECK(media::whatsapp_download_allowed("http://127.0.0.1:9001/f", "http://127.0.0.1:9000/v21.0"));
}
