#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include <unistd.h>

#include "bot/config.hpp"

using aoun::bot::config_error;
using aoun::bot::load_config;

namespace {
aoun::bot::config load(std::map<std::string, std::string> env) {
  return load_config([&](const std::string& k) -> std::optional<std::string> {
    if (auto it = env.find(k); it != env.end()) return it->second;
    return std::nullopt;
  });
}
}  // namespace

TEST_CASE("config defaults are SPEC §5's") {
  auto c = load({});
  CHECK(c.server.host == "127.0.0.1");
  CHECK(c.server.port == 8080);
  CHECK(c.db_path == "./data/aoun.db");
  CHECK(c.public_url == "http://127.0.0.1:8080");
  CHECK(c.whatsapp_api_base == "https://graph.facebook.com/v21.0");
  CHECK(c.telegram_api_base == "https://api.telegram.org");
  CHECK(c.twilio_api_base == "https://api.twilio.com");
  CHECK(!c.whatsapp_enabled);
  CHECK(!c.telegram_enabled);
  CHECK(!c.sms_enabled);
  CHECK(c.server.body_limit == 1024 * 1024);
}

TEST_CASE("a wrong value stops start-up with one line naming the variable") {
  CHECK_THROWS_WITH_AS(load({{"AOUN_LISTEN", "localhost"}}), "AOUN_LISTEN: expected host:port, got 'localhost'",
                       config_error);
  CHECK_THROWS_WITH_AS(load({{"AOUN_LISTEN", "127.0.0.1:99999"}}),
                       "AOUN_LISTEN: expected host:port, got '127.0.0.1:99999'", config_error);
  CHECK_THROWS_WITH_AS(load({{"AOUN_PUBLIC_URL", "ftp://x"}}),
                       "AOUN_PUBLIC_URL: expected an http:// or https:// URL, got 'ftp://x'", config_error);
  CHECK_THROWS_WITH_AS(load({{"AOUN_THREADS", "many"}}),
                       "AOUN_THREADS: expected an integer from 0 to 256, got 'many'", config_error);
  CHECK_THROWS_WITH_AS(load({{"AOUN_SMS_GATEWAY", "carrier-pigeon"}}),
                       "AOUN_SMS_GATEWAY: expected twilio, unifonic or taqnyat, got 'carrier-pigeon'", config_error);
  // The delivery-receipt secret: long enough, URL-safe, and never echoed.
  CHECK_THROWS_WITH_AS(load({{"AOUN_UNIFONIC_DLR_TOKEN", "short-secret"}}),
                       "AOUN_UNIFONIC_DLR_TOKEN: expected 24 to 256 URL-safe characters (A-Z a-z 0-9 - _ . ~), got '<hidden>'",
                       config_error);
  CHECK_THROWS_AS(load({{"AOUN_UNIFONIC_DLR_TOKEN", "a-secret-long-enough-but-with&amp"}}), config_error);
  CHECK(load({{"AOUN_UNIFONIC_DLR_TOKEN", "unifonic-dlr-0123456789abcdef"}}).secret.unifonic_dlr_token ==
        "unifonic-dlr-0123456789abcdef");
  CHECK_THROWS_WITH_AS(load({{"AOUN_WORKING_HOURS", "0-4 16:00-08:00"}}),
                       "AOUN_WORKING_HOURS: expected a start before the end, got '0-4 16:00-08:00'", config_error);
  CHECK_THROWS_WITH_AS(load({{"AOUN_TRUSTED_PROXIES", "10.0.0.1, proxy.local"}}),
                       "AOUN_TRUSTED_PROXIES: expected comma-separated IP addresses or CIDR networks, got '10.0.0.1, proxy.local'",
                       config_error);
  CHECK_THROWS_WITH_AS(load({{"AOUN_SMS_GATEWAY", "taqnyat"}, {"AOUN_TAQNYAT_TOKEN", "t"}}),
                       "AOUN_TAQNYAT_SENDER: expected the approved sender name because AOUN_SMS_GATEWAY=taqnyat, got ''",
                       config_error);
  CHECK(load({{"AOUN_SMS_GATEWAY", "taqnyat"}, {"AOUN_TAQNYAT_TOKEN", "t"}, {"AOUN_TAQNYAT_SENDER", "Aoun"}}).taqnyat_sender == "Aoun");
  CHECK_THROWS_WITH_AS(load({{"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "-1"}}),
                       "AOUN_WEBCHAT_MESSAGES_PER_MINUTE: expected an integer from 0 to 100000, got '-1'", config_error);
  // Rates: a typo must not make 1/rate seconds overflow the clock (1e-12), nor mean "no limit".
  for (const char* rate : {"1e-12", "inf", "nan", "0", "-3", "100001", "8O", ""})
    CHECK_THROWS_WITH_AS(load({{"AOUN_TELEGRAM_CHAT_RATE", rate}}),
                         ("AOUN_TELEGRAM_CHAT_RATE: expected a number from 0.001 to 100000, got '" + std::string(rate) + "'").c_str(),
                         config_error);
  CHECK(load({{"AOUN_WHATSAPP_RATE", "250"}}).outbox.whatsapp_rate == 250);
  CHECK(load({{"AOUN_SMS_RATE", "0.5"}}).outbox.sms_rate == 0.5);
  // An API base the HTTP client would refuse at every send is refused at start.
  for (const char* base : {"https://api.telegram.org:99999", "https://user:pw@api.telegram.org", "https://api.telegram .org",
                           "https://"})
    CHECK_THROWS_WITH_AS(load({{"AOUN_TELEGRAM_API_BASE", base}}),
                         ("AOUN_TELEGRAM_API_BASE: expected an http:// or https:// URL, got '" + std::string(base) + "'").c_str(),
                         config_error);
  CHECK(load({{"AOUN_TELEGRAM_API_BASE", "http://127.0.0.1:5000/"}}).telegram_api_base == "http://127.0.0.1:5000");
  // Hours: no trailing text, nothing past midnight.
  for (const char* hours : {"08:00junk-16:00", "08:00-24:30", "8-16", "08:00-16:00x"})
    CHECK_THROWS_AS(load({{"AOUN_WORKING_HOURS", std::string("0-4 ") + hours}}), config_error);
  CHECK_NOTHROW(load({{"AOUN_WORKING_HOURS", "0-4 08:00-24:00"}}));
  // The largest body must fit in one client's quarter of the budget, or it would be a 503 for ever.
  CHECK_THROWS_AS(load({{"AOUN_BODY_LIMIT", "8388608"}, {"AOUN_BODIES_IN_FLIGHT_BYTES", "16777216"}}), config_error);
  CHECK_NOTHROW(load({{"AOUN_BODY_LIMIT", "4194304"}, {"AOUN_BODIES_IN_FLIGHT_BYTES", "16777216"}}));
}

TEST_CASE("AOUN_CONFIG: a value in quotes is the text between them") {
  const std::string path = "/tmp/aoun-config-test-" + std::to_string(::getpid()) + ".env";
  {
    std::ofstream f(path);
    f << "# comment\nAOUN_DB='/var/lib/aoun/aoun.db'\nAOUN_PUBLIC_URL=\"https://aoun.example.org\"\n"
         "AOUN_WORKING_HOURS=\"0-4 08:00-16:00\"\nAOUN_ASSOCIATION_NAME_EN=\"half\n";
  }
  ::setenv("AOUN_CONFIG", path.c_str(), 1);
  auto c = aoun::bot::load_config_from_environment();
  ::unsetenv("AOUN_CONFIG");
  std::remove(path.c_str());
  CHECK(c.db_path == "/var/lib/aoun/aoun.db");
  CHECK(c.public_url == "https://aoun.example.org");
  CHECK(c.association_name_en == "\"half");  // one quote is no pair: kept
}

TEST_CASE("web chat limits: per client address by default, 0 turns one off; trusted proxies are opt-in") {
  auto d = load({});
  CHECK(d.webchat_sockets_per_address == 20);
  CHECK(d.webchat_messages_per_minute == 60);
  CHECK(d.server.trusted.empty());
  auto c = load({{"AOUN_WEBCHAT_SOCKETS_PER_ADDRESS", "0"}, {"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "5"},
                 {"AOUN_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8"}});
  CHECK(c.webchat_sockets_per_address == 0);
  CHECK(c.webchat_messages_per_minute == 5);
  CHECK(c.server.trusted.contains(boost::asio::ip::make_address("10.20.30.40")));
  CHECK_FALSE(c.server.trusted.contains(boost::asio::ip::make_address("11.0.0.1")));
}

TEST_CASE("a half-configured channel is an error naming the missing secret") {
  CHECK_THROWS_WITH_AS(load({{"AOUN_TELEGRAM_TOKEN", "123:abc"}}),
                       "AOUN_TELEGRAM_SECRET: must be set because AOUN_TELEGRAM_TOKEN is set (a channel needs all of its secrets)",
                       config_error);
  auto c = load({{"AOUN_TELEGRAM_TOKEN", "123:abc"}, {"AOUN_TELEGRAM_SECRET", "s"}, {"AOUN_LISTEN", "0.0.0.0:9000"},
                 {"AOUN_TELEGRAM_API_BASE", "http://127.0.0.1:5000/"}});
  CHECK(c.telegram_enabled);
  CHECK(c.server.port == 9000);
  CHECK(c.telegram_api_base == "http://127.0.0.1:5000");  // trailing slash dropped
}

TEST_CASE("SMS needs AOUN_PUBLIC_URL: Twilio signs the URL it calls, and the default is not it") {
  const std::map<std::string, std::string> sms{
      {"AOUN_TWILIO_ACCOUNT_SID", "AC123"}, {"AOUN_TWILIO_AUTH_TOKEN", "t"}, {"AOUN_TWILIO_FROM", "+15005550006"}};
  CHECK_THROWS_WITH_AS(load(sms), "AOUN_PUBLIC_URL: expected the public URL Twilio calls (it signs it), set because SMS is on, got ''",
                       config_error);
  auto with = sms;
  with["AOUN_PUBLIC_URL"] = "https://bot.example.org";
  CHECK(load(with).sms_enabled);
}
