#pragma once
// Builders for signed provider webhooks, shared by the integration tests.
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "harness/harness.hpp"

namespace aoun::test {

inline const std::string wa_secret = "test_app_secret";
inline const std::string tg_secret = "tg-secret_123";
inline const std::string twilio_token = "test_auth_token_12345";

/// Server environment with all three provider channels pointed at fake providers.
inline std::map<std::string, std::string> channel_env(const fake_provider& graph, const fake_provider& tg,
                                                      const fake_provider& twilio) {
  return {{"AOUN_WHATSAPP_VERIFY_TOKEN", "verify-me"},
          {"AOUN_WHATSAPP_APP_SECRET", wa_secret},
          {"AOUN_WHATSAPP_TOKEN", "graph-token"},
          {"AOUN_WHATSAPP_PHONE_NUMBER_ID", "106540352242922"},
          {"AOUN_WHATSAPP_API_BASE", graph.base() + "/v21.0"},
          {"AOUN_TELEGRAM_TOKEN", "123:ABC"},
          {"AOUN_TELEGRAM_SECRET", tg_secret},
          {"AOUN_TELEGRAM_API_BASE", tg.base()},
          {"AOUN_TWILIO_ACCOUNT_SID", "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
          {"AOUN_TWILIO_AUTH_TOKEN", twilio_token},
          {"AOUN_TWILIO_FROM", "+966110000000"},
          {"AOUN_TWILIO_API_BASE", twilio.base()},
          {"AOUN_PUBLIC_URL", "https://bot.example.org"},
          {"AOUN_OUTBOX_BACKOFF_MS", "50"},
          {"AOUN_OUTBOX_MAX_BACKOFF_MS", "200"},
          {"AOUN_SMS_RATE", "1000"},
          {"AOUN_TELEGRAM_CHAT_RATE", "1000"}};
}

/// The real server with all three provider channels aimed at fake providers, and a database
/// that survives restart().
struct channel_server {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  std::string db = dir.path + "/aoun.db";
  std::unique_ptr<server_process> srv = std::make_unique<server_process>(db, channel_env(graph, tg, twilio));
  unsigned short port() const { return srv->port(); }
  /// Graceful stop (must exit 0), then a new process on the same database.
  int restart() {
    int rc = srv->stop(15);
    srv = std::make_unique<server_process>(db, channel_env(graph, tg, twilio));
    return rc;
  }
};

/// Now, as WhatsApp's `timestamp` (when the person wrote: the 24-hour window runs from it).
inline std::string wa_now() { return std::to_string(std::time(nullptr)); }

/// A WhatsApp text webhook from `from` with message id `wamid`, written now.
inline std::string wa_text(const std::string& from, const std::string& wamid, const std::string& text) {
  auto j = nlohmann::json::parse(fixture("whatsapp_text.json"));
  auto& v = j["entry"][0]["changes"][0]["value"];
  v["contacts"][0]["wa_id"] = from;
  v["messages"][0]["from"] = from;
  v["messages"][0]["id"] = wamid;
  v["messages"][0]["text"]["body"] = text;
  v["messages"][0]["timestamp"] = wa_now();
  return j.dump();
}

inline std::string wa_button(const std::string& from, const std::string& wamid, const std::string& id,
                             const std::string& title) {
  auto j = nlohmann::json::parse(fixture("whatsapp_button_reply.json"));
  auto& v = j["entry"][0]["changes"][0]["value"];
  v["contacts"][0]["wa_id"] = from;
  v["messages"][0]["from"] = from;
  v["messages"][0]["id"] = wamid;
  v["messages"][0]["interactive"]["button_reply"] = {{"id", id}, {"title", title}};
  v["messages"][0]["timestamp"] = wa_now();
  return j.dump();
}

inline http_result post_wa(unsigned short port, const std::string& body, const std::string& secret = wa_secret) {
  return http_call(port, "POST", "/webhooks/whatsapp", body,
                   {{"X-Hub-Signature-256", "sha256=" + hmac_sha256_hex(secret, body)}});
}

inline std::string tg_text(long long update_id, long long chat, const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(fixture("telegram_message.json"));
  j["update_id"] = update_id;
  j["message"]["chat"]["id"] = chat;
  j["message"]["from"]["id"] = chat;
  j["message"]["text"] = text;
  return j.dump();
}

/// A press of the button `data` under the bot's message in `chat` (callback query `id`).
inline std::string tg_press(long long update_id, long long chat, const std::string& data, const std::string& id) {
  nlohmann::json j = nlohmann::json::parse(fixture("telegram_callback_query_message.json"));
  j["update_id"] = update_id;
  j["callback_query"]["id"] = id;
  j["callback_query"]["from"]["id"] = chat;
  j["callback_query"]["message"]["chat"]["id"] = chat;
  j["callback_query"]["data"] = data;
  return j.dump();
}

inline http_result post_tg(unsigned short port, const std::string& body, const std::string& secret = tg_secret) {
  return http_call(port, "POST", "/webhooks/telegram", body, {{"X-Telegram-Bot-Api-Secret-Token", secret}});
}

/// A Twilio inbound SMS form body and its signature for URL https://bot.example.org/webhooks/sms.
inline http_result post_sms(unsigned short port, const std::map<std::string, std::string>& params,
                            const std::string& token = twilio_token) {
  std::string form, signed_data = "https://bot.example.org/webhooks/sms";
  auto enc = [](const std::string& s) {
    std::string o;
    const char* hx = "0123456789ABCDEF";
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') o += static_cast<char>(c);
      else if (c == ' ') o += '+';
      else {
        o += '%';
        o += hx[c >> 4];
        o += hx[c & 15];
      }
    }
    return o;
  };
  for (auto& [k, v] : params) {  // std::map: already sorted by name, as Twilio signs them
    form += (form.empty() ? "" : "&") + enc(k) + "=" + enc(v);
    signed_data += k + v;
  }
  return http_call(port, "POST", "/webhooks/sms", form,
                   {{"Content-Type", "application/x-www-form-urlencoded"},
                    {"X-Twilio-Signature", hmac_sha1_base64(token, signed_data)}});
}

/// The Graph API message sends recorded by a fake provider, as JSON (mark-as-read excluded).
inline std::vector<nlohmann::json> wa_sends(fake_provider& graph, const std::string& to = "") {
  std::vector<nlohmann::json> out;
  for (auto& r : graph.requests()) {
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    // A person known only by their WhatsApp user id is written to in "recipient".
    const char* key = j.is_object() && j.contains("recipient") ? "recipient" : "to";
    if (j.is_discarded() || !j.contains(key)) continue;
    if (!to.empty() && j[key] != to) continue;
    out.push_back(j);
  }
  return out;
}

/// The visible text of a WhatsApp send (text body or interactive body).
inline std::string wa_body(const nlohmann::json& j) {
  if (j.contains("text")) return j["text"].value("body", "");
  if (j.contains("interactive")) return j["interactive"]["body"].value("text", "");
  return "";
}

}  // namespace aoun::test
