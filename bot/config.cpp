#include "bot/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "channels/detail/url.hpp"

extern char** environ;

namespace aoun::bot {
namespace {

using lookup_fn = std::function<std::optional<std::string>(const std::string&)>;

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

[[noreturn]] void bad(const std::string& var, const std::string& expected, const std::string& got) {
  throw config_error(var + ": expected " + expected + ", got '" + got + "'");
}

long long number(const lookup_fn& get, const std::string& var, long long def, long long lo, long long hi) {
  auto v = get(var);
  if (!v) return def;
  long long out = 0;
  auto s = trim(*v);
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (ec != std::errc() || p != s.data() + s.size() || out < lo || out > hi)
    bad(var, "an integer from " + std::to_string(lo) + " to " + std::to_string(hi), *v);
  return out;
}

std::string fmt_number(double d) {
  std::ostringstream o;
  o << d;
  return o.str();
}

// Rates (sends per second): bounded, so that a typo (1e-12, inf) cannot make a pause of
// 1/rate seconds overflow the clock's type.
double real(const lookup_fn& get, const std::string& var, double def, double lo = 0.001, double hi = 100000) {
  auto v = get(var);
  if (!v) return def;
  auto s = trim(*v);
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(d) || d < lo || d > hi)
    bad(var, "a number from " + fmt_number(lo) + " to " + fmt_number(hi), *v);
  return d;
}

std::string url(const lookup_fn& get, const std::string& var, std::string def) {
  auto v = get(var);
  if (!v) return def;
  auto s = trim(*v);
  // What the HTTP client will accept, checked now: a base it refuses (a port out of range,
  // userinfo, a space) would otherwise start fine and fail every send as a network error.
  if ((s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0) || s.size() < 9 || !channels::detail::split_url(s))
    bad(var, "an http:// or https:// URL", *v);
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

int hhmm(const std::string& var, const std::string& s) {
  int h = 0, m = 0, used = 0;
  if (std::sscanf(s.c_str(), "%d:%d%n", &h, &m, &used) != 2 || used != static_cast<int>(s.size()) || h < 0 ||
      m < 0 || m > 59 || h * 60 + m > 24 * 60)
    bad(var, "hours like 08:00-16:00", s);
  return h * 60 + m;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) {
    item = trim(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// All-or-nothing channel secrets: a half-configured channel is a mistake worth stopping for.
bool channel_on(const lookup_fn& get, const std::vector<std::string>& vars) {
  std::vector<std::string> missing;
  for (auto& v : vars)
    if (!get(v) || get(v)->empty()) missing.push_back(v);
  if (missing.size() == vars.size()) return false;
  if (!missing.empty()) {
    std::string set;
    for (auto& v : vars)
      if (std::find(missing.begin(), missing.end(), v) == missing.end()) set += (set.empty() ? "" : ", ") + v;
    throw config_error(missing.front() + ": must be set because " + set + " is set (a channel needs all of its secrets)");
  }
  return true;
}

}  // namespace

config load_config(const lookup_fn& get) {
  config c;
  auto str = [&](const std::string& var, const std::string& def) { return get(var).value_or(def); };

  if (auto v = get("AOUN_LISTEN")) {
    auto s = trim(*v);
    auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0) bad("AOUN_LISTEN", "host:port", *v);
    c.server.host = s.substr(0, colon);
    if (c.server.host.size() > 2 && c.server.host.front() == '[') c.server.host = c.server.host.substr(1, c.server.host.size() - 2);
    unsigned port = 0;
    auto ps = s.substr(colon + 1);
    auto [p, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), port);
    if (ec != std::errc() || p != ps.data() + ps.size() || port > 65535) bad("AOUN_LISTEN", "host:port", *v);
    c.server.port = static_cast<std::uint16_t>(port);
  }
  c.server.threads = static_cast<int>(number(get, "AOUN_THREADS", 0, 0, 256));
  c.server.body_limit = static_cast<std::size_t>(number(get, "AOUN_BODY_LIMIT", 1024 * 1024, 1024, 64LL << 20));
  c.server.bodies_in_flight_bytes =
      static_cast<std::size_t>(number(get, "AOUN_BODIES_IN_FLIGHT_BYTES", 64LL << 20, 4LL << 20, 4LL << 30));
  c.server.shutdown_grace = std::chrono::seconds(number(get, "AOUN_SHUTDOWN_GRACE", 20, 1, 600));
  c.server.idle_timeout = std::chrono::seconds(number(get, "AOUN_IDLE_TIMEOUT", 60, 1, 3600));
  c.server.header_timeout = std::chrono::seconds(number(get, "AOUN_HEADER_TIMEOUT", 15, 1, 600));
  c.server.max_connections = static_cast<int>(number(get, "AOUN_MAX_CONNECTIONS", 4096, 16, 1000000));
  c.server.max_connections_per_address =
      static_cast<int>(number(get, "AOUN_MAX_CONNECTIONS_PER_ADDRESS", 256, 1, 1000000));
  if (auto v = get("AOUN_TRUSTED_PROXIES")) {
    auto t = trusted_proxies::parse(*v);
    if (!t) bad("AOUN_TRUSTED_PROXIES", "comma-separated IP addresses or CIDR networks", *v);
    c.server.trusted = std::move(*t);
  }

  c.db_path = str("AOUN_DB", "./data/aoun.db");
  if (c.db_path.empty()) bad("AOUN_DB", "a file path", "");
  c.public_url = url(get, "AOUN_PUBLIC_URL", "http://127.0.0.1:8080");
  c.log_level = str("AOUN_LOG_LEVEL", "info");
  if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warn" && c.log_level != "error")
    bad("AOUN_LOG_LEVEL", "debug, info, warn or error", c.log_level);

  c.whatsapp_enabled = channel_on(get, {"AOUN_WHATSAPP_VERIFY_TOKEN", "AOUN_WHATSAPP_APP_SECRET",
                                        "AOUN_WHATSAPP_TOKEN", "AOUN_WHATSAPP_PHONE_NUMBER_ID"});
  c.server.whatsapp_large_bodies = c.whatsapp_enabled;
  {
    // The largest body a request may have must fit in one client's share of the budget (a
    // quarter, bot/http_server.hpp), or it would be answered 503 for ever, never 413.
    const std::size_t largest = std::max<std::size_t>(c.server.body_limit, c.whatsapp_enabled ? 3 * 1024 * 1024 : 0);
    if (largest > c.server.bodies_in_flight_bytes / 4)
      bad("AOUN_BODIES_IN_FLIGHT_BYTES",
          "at least four times the largest request body (" + std::to_string(largest) +
              " bytes: AOUN_BODY_LIMIT, or 3 MiB with WhatsApp on)",
          std::to_string(c.server.bodies_in_flight_bytes));
  }
  c.secret.whatsapp_verify_token = str("AOUN_WHATSAPP_VERIFY_TOKEN", "");
  c.secret.whatsapp_app_secret = str("AOUN_WHATSAPP_APP_SECRET", "");
  c.secret.whatsapp_token = str("AOUN_WHATSAPP_TOKEN", "");
  c.whatsapp_phone_number_id = str("AOUN_WHATSAPP_PHONE_NUMBER_ID", "");
  c.whatsapp_api_base = url(get, "AOUN_WHATSAPP_API_BASE", c.whatsapp_api_base);
  c.whatsapp_template = trim(str("AOUN_WHATSAPP_TEMPLATE", c.whatsapp_template));
  if (c.whatsapp_template.empty() || c.whatsapp_template.size() > 512 ||
      !std::all_of(c.whatsapp_template.begin(), c.whatsapp_template.end(),
                   [](char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'; }))
    bad("AOUN_WHATSAPP_TEMPLATE", "a template name of lower-case letters, digits and '_'", c.whatsapp_template);

  c.telegram_enabled = channel_on(get, {"AOUN_TELEGRAM_TOKEN", "AOUN_TELEGRAM_SECRET"});
  c.secret.telegram_token = str("AOUN_TELEGRAM_TOKEN", "");
  c.secret.telegram_secret = str("AOUN_TELEGRAM_SECRET", "");
  c.telegram_api_base = url(get, "AOUN_TELEGRAM_API_BASE", c.telegram_api_base);

  c.sms_enabled = channel_on(get, {"AOUN_TWILIO_ACCOUNT_SID", "AOUN_TWILIO_AUTH_TOKEN", "AOUN_TWILIO_FROM"});
  c.twilio_account_sid = str("AOUN_TWILIO_ACCOUNT_SID", "");
  c.secret.twilio_auth_token = str("AOUN_TWILIO_AUTH_TOKEN", "");
  c.twilio_from = str("AOUN_TWILIO_FROM", "");
  c.twilio_api_base = url(get, "AOUN_TWILIO_API_BASE", c.twilio_api_base);
  // Twilio signs the URL it calls, which the server can only know from AOUN_PUBLIC_URL: left at
  // its default, every inbound SMS would be refused (and Twilio does not send it again), and
  // no delivery status would come back.
  if (c.sms_enabled && !get("AOUN_PUBLIC_URL"))
    bad("AOUN_PUBLIC_URL", "the public URL Twilio calls (it signs it), set because SMS is on", "");
  c.sms_gateway = str("AOUN_SMS_GATEWAY", "twilio");
  if (c.sms_gateway != "twilio" && c.sms_gateway != "unifonic" && c.sms_gateway != "taqnyat")
    bad("AOUN_SMS_GATEWAY", "twilio, unifonic or taqnyat", c.sms_gateway);
  c.secret.unifonic_app_sid = str("AOUN_UNIFONIC_APP_SID", "");
  c.unifonic_sender = str("AOUN_UNIFONIC_SENDER", "");
  c.unifonic_api_base = url(get, "AOUN_UNIFONIC_API_BASE", c.unifonic_api_base);
  c.secret.unifonic_dlr_token = str("AOUN_UNIFONIC_DLR_TOKEN", "");
  if (!c.secret.unifonic_dlr_token.empty() &&
      (c.secret.unifonic_dlr_token.size() < 24 || c.secret.unifonic_dlr_token.size() > 256 ||
       !std::all_of(c.secret.unifonic_dlr_token.begin(), c.secret.unifonic_dlr_token.end(), [](char ch) {
         return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                ch == '_' || ch == '.' || ch == '~';
       })))
    bad("AOUN_UNIFONIC_DLR_TOKEN", "24 to 256 URL-safe characters (A-Z a-z 0-9 - _ . ~)", "<hidden>");
  c.secret.taqnyat_token = str("AOUN_TAQNYAT_TOKEN", "");
  c.taqnyat_sender = str("AOUN_TAQNYAT_SENDER", "");
  c.taqnyat_api_base = url(get, "AOUN_TAQNYAT_API_BASE", c.taqnyat_api_base);
  if (c.sms_gateway == "unifonic" && c.secret.unifonic_app_sid.empty())
    bad("AOUN_UNIFONIC_APP_SID", "the Unifonic AppSid because AOUN_SMS_GATEWAY=unifonic", "");
  if (c.sms_gateway == "taqnyat" && c.secret.taqnyat_token.empty())
    bad("AOUN_TAQNYAT_TOKEN", "the Taqnyat bearer token because AOUN_SMS_GATEWAY=taqnyat", "");
  // Taqnyat sends only from an approved sender name; without one every SMS would be refused.
  if (c.sms_gateway == "taqnyat" && c.taqnyat_sender.empty())
    bad("AOUN_TAQNYAT_SENDER", "the approved sender name because AOUN_SMS_GATEWAY=taqnyat", "");
  c.webchat_enabled = number(get, "AOUN_WEBCHAT", 1, 0, 1) == 1;
  c.webchat_sockets_per_address = static_cast<int>(number(get, "AOUN_WEBCHAT_SOCKETS_PER_ADDRESS", 20, 0, 100000));
  c.webchat_messages_per_minute = static_cast<int>(number(get, "AOUN_WEBCHAT_MESSAGES_PER_MINUTE", 60, 0, 100000));
  c.server.upload_limit = c.webchat_enabled ? static_cast<std::size_t>(number(get, "AOUN_WEBCHAT_UPLOAD_MAX_BYTES",
                                                                              10LL << 20, 1024, 16LL << 20))
                                            : 0;

  c.admin_user = str("AOUN_ADMIN_USER", "");
  c.secret.admin_password = str("AOUN_ADMIN_PASSWORD", "");
  if (!c.admin_user.empty() && c.secret.admin_password.size() < 8)
    bad("AOUN_ADMIN_PASSWORD", "at least 8 characters because AOUN_ADMIN_USER is set", "<hidden>");

  c.source_dir = str("AOUN_HOME", AOUN_SOURCE_DIR);
  c.association_name = str("AOUN_ASSOCIATION_NAME", "جمعية عون لرعاية ضحايا الجريمة");
  c.association_name_en = str("AOUN_ASSOCIATION_NAME_EN", "Aoun Association for the Care of Crime Victims");
  c.emergency_numbers = str("AOUN_EMERGENCY_NUMBERS", "911");
  c.phone = str("AOUN_PHONE", "");
  c.email = str("AOUN_EMAIL", "");
  c.website = str("AOUN_WEBSITE", "");
  c.address = str("AOUN_ADDRESS", "");
  c.danger_words = split(str("AOUN_DANGER_WORDS", ""), ',');

  if (auto v = get("AOUN_WORKING_HOURS")) {
    // "0-4 08:00-16:00": days (0 = Sunday) and hours, Asia/Riyadh.
    auto parts = split(*v, ' ');
    if (parts.size() != 2) bad("AOUN_WORKING_HOURS", "days and hours like '0-4 08:00-16:00'", *v);
    int d0 = 0, d1 = 0;
    if (std::sscanf(parts[0].c_str(), "%d-%d", &d0, &d1) != 2 || d0 < 0 || d1 > 6 || d0 > d1)
      bad("AOUN_WORKING_HOURS", "days and hours like '0-4 08:00-16:00'", *v);
    c.work_days.clear();
    for (int d = d0; d <= d1; ++d) c.work_days.push_back(d);
    auto dash = parts[1].find('-');
    if (dash == std::string::npos) bad("AOUN_WORKING_HOURS", "days and hours like '0-4 08:00-16:00'", *v);
    c.work_start_minute = hhmm("AOUN_WORKING_HOURS", parts[1].substr(0, dash));
    c.work_end_minute = hhmm("AOUN_WORKING_HOURS", parts[1].substr(dash + 1));
    if (c.work_start_minute >= c.work_end_minute) bad("AOUN_WORKING_HOURS", "a start before the end", *v);
  }
  c.idle_timeout_seconds = static_cast<int>(number(get, "AOUN_DIALOG_IDLE_SECONDS", 1800, 10, 7 * 86400));
  c.retention_days = static_cast<int>(number(get, "AOUN_RETENTION_DAYS", 365, 1, 3650));
  c.token_ttl_seconds = static_cast<int>(number(get, "AOUN_TOKEN_TTL_SECONDS", 8 * 3600, 1, 30 * 86400));
  c.max_failed_logins = static_cast<int>(number(get, "AOUN_MAX_FAILED_LOGINS", 5, 1, 10));
  c.lockout_seconds = static_cast<int>(number(get, "AOUN_LOCKOUT_SECONDS", 900, 1, 86400));
  c.survey_min_responses_per_staff = static_cast<int>(number(get, "AOUN_REPORT_MIN_RESPONSES", 5, 1, 1000));

  c.outbox.max_attempts = static_cast<int>(number(get, "AOUN_OUTBOX_MAX_ATTEMPTS", 8, 1, 100));
  c.outbox.base_backoff = std::chrono::milliseconds(number(get, "AOUN_OUTBOX_BACKOFF_MS", 500, 1, 600000));
  c.outbox.max_backoff = std::chrono::milliseconds(number(get, "AOUN_OUTBOX_MAX_BACKOFF_MS", 60000, 1, 3600000));
  c.outbox.credentials_pause = std::chrono::milliseconds(number(get, "AOUN_CREDENTIALS_PAUSE_MS", 30000, 100, 3600000));
  c.outbox.whatsapp_rate = real(get, "AOUN_WHATSAPP_RATE", 80);
  c.outbox.telegram_rate = real(get, "AOUN_TELEGRAM_RATE", 30);
  c.outbox.telegram_per_chat_rate = real(get, "AOUN_TELEGRAM_CHAT_RATE", 1);
  c.outbox.sms_rate = real(get, "AOUN_SMS_RATE", 1);
  c.outbox.send_timeout = std::chrono::milliseconds(number(get, "AOUN_SEND_TIMEOUT_MS", 10000, 100, 120000));
  c.media.max_bytes = static_cast<std::size_t>(number(get, "AOUN_MEDIA_MAX_BYTES", 16LL << 20, 1024, 128LL << 20));
  c.media.timeout = std::chrono::milliseconds(number(get, "AOUN_MEDIA_TIMEOUT_MS", 30000, 100, 300000));
  c.media.keep_copies = number(get, "AOUN_MEDIA_KEEP_COPIES", 1, 0, 1) == 1;
  return c;
}

config load_config_from_environment() {
  std::map<std::string, std::string> file;
  if (const char* path = std::getenv("AOUN_CONFIG"); path != nullptr && *path != '\0') {
    std::ifstream in(path);
    if (!in) throw config_error(std::string("AOUN_CONFIG: cannot read '") + path + "'");
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      line = trim(line);
      if (line.empty() || line[0] == '#') continue;
      auto eq = line.find('=');
      if (eq == std::string::npos || line.rfind("AOUN_", 0) != 0)
        throw config_error(std::string("AOUN_CONFIG: line ") + std::to_string(n) + " of '" + path +
                           "' is not AOUN_NAME=value");
      // A value in quotes (as systemd's EnvironmentFile and .env files allow) is the text
      // between them: kept with its quotes, an app secret would fail every signature check.
      auto value = trim(line.substr(eq + 1));
      if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
        value = value.substr(1, value.size() - 2);
      file[trim(line.substr(0, eq))] = value;
    }
  }
  return load_config([&](const std::string& k) -> std::optional<std::string> {
    if (const char* v = std::getenv(k.c_str())) return std::string(v);
    if (auto it = file.find(k); it != file.end()) return it->second;
    return std::nullopt;
  });
}

}  // namespace aoun::bot
