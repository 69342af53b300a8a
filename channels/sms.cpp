#include "channels/sms.hpp"

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "channels/crypto.hpp"
#include "channels/detail/json_write.hpp"
#include "channels/detail/util.hpp"

namespace aoun::channels::sms {
namespace {

using detail::json;
using detail::text_member;

constexpr std::size_t max_body = max_body_code_points;

// Splits "scheme://authority/rest" and returns the two URL spellings Twilio's SDKs try:
// without any port, and with the port (the default one added when absent).
std::pair<std::string, std::string> port_variants(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return {std::string(url), std::string(url)};
  const std::string_view scheme = url.substr(0, scheme_end);
  const std::size_t auth_begin = scheme_end + 3;
  std::size_t auth_end = url.find_first_of("/?#", auth_begin);
  if (auth_end == std::string_view::npos) auth_end = url.size();
  const std::string_view authority = url.substr(auth_begin, auth_end - auth_begin);
  const std::size_t at = authority.rfind('@');
  const std::size_t host_begin = at == std::string_view::npos ? 0 : at + 1;
  const std::size_t bracket = authority.rfind(']');
  std::size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos &&
      (colon < host_begin || (bracket != std::string_view::npos && colon < bracket)))
    colon = std::string_view::npos;

  const std::string prefix(url.substr(0, auth_begin));
  const std::string rest(url.substr(auth_end));
  if (colon != std::string_view::npos) {
    const std::string without = prefix + std::string(authority.substr(0, colon)) + rest;
    return {without, std::string(url)};
  }
  std::string port;
  if (scheme == "https") port = "443";
  else if (scheme == "http") port = "80";
  if (port.empty()) return {std::string(url), std::string(url)};
  return {std::string(url), prefix + std::string(authority) + ":" + port + rest};
}

std::string twilio_signature(std::string_view url,
                             const std::vector<std::pair<std::string, std::string>>& sorted,
                             std::string_view token) {
  std::string data(url);
  for (const auto& [k, v] : sorted) {
    data += k;
    data += v;
  }
  return crypto::base64_encode(crypto::hmac_sha1(token, data));
}

using form_map = std::multimap<std::string, std::string>;

std::string first(const form_map& f, const std::string& key) {
  const auto it = f.find(key);
  return it == f.end() ? std::string{} : it->second;
}

bool has(const form_map& f, const std::string& key) { return f.find(key) != f.end(); }

std::string e164(std::string s) {
  if (!s.empty() && s.front() != '+' &&
      std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    s.insert(s.begin(), '+');
  return s;
}

// International number without '+' or "00", as Unifonic and Taqnyat want it.
std::string bare_digits(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  else if (s.size() > 2 && s.substr(0, 2) == "00") s.remove_prefix(2);
  return std::string(s);
}

std::string normalize_status(const std::string& s) {
  if (s == "delivered" || s == "sent" || s == "read") return s;
  if (s == "undelivered" || s == "failed" || s == "canceled") return "failed";
  return s;  // queued, sending, accepted, scheduled, partially_delivered, receiving, received
}

std::string media_kind_for(std::string_view mime) {
  if (mime.substr(0, 6) == "image/") return "image";
  if (mime.substr(0, 6) == "audio/") return "audio";
  if (mime.substr(0, 6) == "video/") return "video";
  return "document";
}

// GSM 03.38 default alphabet (one septet) and its extension table (escape + one septet).
constexpr std::u32string_view gsm_basic =
    U"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    U"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
constexpr std::u32string_view gsm_extension = U"\f^{}\\[~]|€";

// Decodes UTF-8; malformed bytes become U+FFFD (which forces UCS-2, as a gateway would).
std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  std::size_t i = 0;
  while (i < s.size()) {
    const std::string_view one = crypto::truncate_code_points(s.substr(i), 1);
    const auto* p = reinterpret_cast<const unsigned char*>(one.data());
    char32_t cp = 0xFFFD;
    switch (one.size()) {
      case 1: cp = p[0] < 0x80 ? p[0] : 0xFFFD; break;
      case 2: cp = ((p[0] & 0x1F) << 6) | (p[1] & 0x3F); break;
      case 3: cp = ((p[0] & 0x0F) << 12) | ((p[1] & 0x3F) << 6) | (p[2] & 0x3F); break;
      case 4: cp = ((p[0] & 0x07) << 18) | ((p[1] & 0x3F) << 12) | ((p[2] & 0x3F) << 6) | (p[3] & 0x3F); break;
    }
    out.push_back(cp);
    i += one.empty() ? 1 : one.size();
  }
  return out;
}

// Parts needed for units of the given widths, never splitting one character across parts.
std::size_t pack(const std::vector<std::size_t>& widths, std::size_t single, std::size_t part) {
  std::size_t total = 0;
  for (auto w : widths) total += w;
  if (total == 0) return 0;
  if (total <= single) return 1;
  std::size_t parts = 1, used = 0;
  for (auto w : widths) {
    if (used + w > part) {
      ++parts;
      used = 0;
    }
    used += w;
  }
  return parts;
}

}  // namespace

bool verify_twilio_signature(std::string_view full_url, std::string_view form_body,
                             std::string_view header, std::string_view auth_token) {
  if (header.empty() || auth_token.empty()) return false;
  auto params = crypto::parse_form(form_body);
  std::sort(params.begin(), params.end());  // by name, then value: Twilio's order for repeats
  // A pair repeated exactly is signed once, as Twilio's own validators do (a set of values).
  params.erase(std::unique(params.begin(), params.end()), params.end());
  const auto [without_port, with_port] = port_variants(full_url);
  // Evaluate both variants unconditionally so timing does not depend on which one matched.
  const bool a = crypto::equal_constant_time(twilio_signature(without_port, params, auth_token), header);
  const bool b = crypto::equal_constant_time(twilio_signature(with_port, params, auth_token), header);
  return a || b;
}

bool verify_unifonic_token(std::string_view given, std::string_view expected) {
  if (given.empty() || expected.empty()) return false;
  return crypto::equal_constant_time(given, expected);
}

parse_result parse_unifonic_dlr(std::string_view content_type, std::string_view body, std::string_view query) {
  parse_result r;
  auto lower = [](std::string s) {
    for (auto& c : s)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return s;
  };
  const std::string type = lower(std::string(content_type.substr(0, content_type.find(';'))));
  const auto start = body.find_first_not_of(" \t\r\n");
  const bool as_json = type.find("json") != std::string::npos ||
                       (start != std::string_view::npos && body[start] == '{');
  std::string id, dlr, recipient;
  if (as_json) {
    const auto root = detail::parse_json(body);
    if (!root || !root->is_object()) {
      r.error = "body is not a JSON object";
      return r;
    }
    id = text_member(&*root, "MessageID");
    dlr = text_member(&*root, "DLR");
    recipient = text_member(&*root, "Recipient");
  } else {
    form_map f;
    // A form body when there is one, else the query string (the token is not a field).
    for (auto& [k, v] : crypto::parse_form(start == std::string_view::npos ? query : body))
      f.emplace(detail::scrub_utf8(k), detail::scrub_utf8(v));
    id = first(f, "MessageID");
    dlr = first(f, "DLR");
    recipient = first(f, "Recipient");
  }
  if (id.empty()) {
    r.error = "no MessageID";
    return r;
  }
  const bool id_ok = id.size() <= 128 && std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '.' || c == '_' ||
           c == ':' || c == '-';
  });
  if (!id_ok) {
    r.error = "bad MessageID";
    return r;
  }
  r.ok = true;
  std::string raw = lower(dlr);
  raw.erase(0, raw.find_first_not_of(' '));
  raw.erase(raw.find_last_not_of(' ') + 1);
  if (raw.empty()) return r;  // a receipt with no status: nothing to apply
  if (raw.size() > 32) raw.resize(32);
  for (auto& c : raw)  // it names the event in logs: ASCII letters, digits and '_' only
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) c = '_';
  inbound ev;
  ev.channel = kind::sms;
  ev.type = inbound_type::status;
  ev.provider_id = "unifonic:" + id + ":" + raw;
  ev.status_for = "unifonic:" + id;  // as interpret() stored it
  if (raw == "delivered" || raw == "sent") ev.status = raw;
  else if (raw == "undeliverable" || raw == "undelivered" || raw == "failed" || raw == "rejected" || raw == "expired")
    ev.status = "failed";
  else ev.status = raw;
  ev.raw_type = "status.unifonic." + raw;
  ev.from = e164(bare_digits(recipient));
  r.events.push_back(std::move(ev));
  return r;
}

std::string opt_out_of(std::string_view opt_out_type, std::string_view body) {
  auto upper = [](std::string_view s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    const auto e = s.find_last_not_of(" \t\r\n.!");
    std::string out(b == std::string_view::npos ? std::string_view{} : s.substr(b, e - b + 1));
    for (auto& ch : out)
      if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
    return out;
  };
  // Twilio's Advanced Opt-Out says what it did; it is the authority when present.
  const std::string type = upper(opt_out_type);
  if (type == "STOP") return "stop";
  if (type == "START") return "start";
  if (!type.empty()) return {};  // HELP, or a word of the account's own list that is not one of these
  // Without it, Twilio's default keywords. Not CANCEL for STOP: it is a word of the dialog (the
  // intake's "cancel"), and a person who writes it means the dialog. YES opts back in at Twilio,
  // so it does here; "start" is a dialog turn as well, so consent's "yes" still works.
  const std::string word = upper(body);
  for (const char* k : {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "REVOKE", "OPTOUT"})
    if (word == k) return "stop";
  for (const char* k : {"START", "UNSTOP", "YES"})
    if (word == k) return "start";
  return {};
}

parse_result parse_twilio(std::string_view form_body) {
  parse_result r;
  form_map f;
  // Percent-decoding gives bytes, not text: a malformed sequence (Body=%FF) would make every
  // later JSON step throw, and the SMS be lost on a 503 Twilio does not retry.
  for (auto& [k, v] : crypto::parse_form(form_body)) f.emplace(detail::scrub_utf8(k), detail::scrub_utf8(v));
  std::string sid = first(f, "MessageSid");
  if (sid.empty()) sid = first(f, "SmsSid");
  if (sid.empty()) {
    r.error = "no MessageSid";
    return r;
  }

  if (has(f, "MessageStatus") && !has(f, "Body")) {
    r.ok = true;
    if (first(f, "MessageStatus").empty()) return r;  // a callback with no status: nothing to apply
    inbound ev;
    ev.channel = kind::sms;
    ev.type = inbound_type::status;
    const std::string raw = first(f, "MessageStatus");
    ev.provider_id = sid + ":" + raw;
    ev.status_for = sid;
    ev.status = normalize_status(raw);
    ev.raw_type = "status." + raw;
    ev.status_error = first(f, "ErrorCode");
    ev.from = e164(first(f, "To"));  // the beneficiary is the recipient of our message
    r.events.push_back(std::move(ev));
    r.ok = true;
    return r;
  }

  const std::string from = e164(first(f, "From"));
  if (from.empty()) {
    r.error = "no From";
    return r;
  }
  const std::string body = first(f, "Body");
  const std::string opt_out = opt_out_of(first(f, "OptOutType"), body);
  const auto num_media = detail::parse_int(first(f, "NumMedia")).value_or(0);
  std::int64_t emitted = 0;
  for (std::int64_t n = 0; n < std::min<std::int64_t>(num_media, 10); ++n) {
    const std::string url = first(f, "MediaUrl" + std::to_string(n));
    if (url.empty()) continue;
    inbound ev;
    ev.channel = kind::sms;
    ev.type = inbound_type::media;
    ev.provider_id = emitted == 0 ? sid : sid + ":" + std::to_string(n);
    ev.from = from;
    ev.media_id = url;
    ev.media_mime = first(f, "MediaContentType" + std::to_string(n));
    ev.media_kind = media_kind_for(ev.media_mime);
    ev.raw_type = "mms";
    if (emitted == 0) {
      // The text goes with the first file, and so does a STOP written with a picture.
      ev.text = body;
      ev.opt_out = opt_out;
    }
    r.events.push_back(std::move(ev));
    ++emitted;
  }
  if (emitted == 0) {
    inbound ev;
    ev.channel = kind::sms;
    ev.type = inbound_type::text;
    ev.provider_id = sid;
    ev.from = from;
    ev.text = body;
    ev.raw_type = "sms";
    ev.opt_out = opt_out;
    r.events.push_back(std::move(ev));
  }
  r.ok = true;
  return r;
}

std::string body_text(const outgoing& msg) {
  std::string s = msg.text;
  for (std::size_t i = 0; i < msg.choices.size(); ++i) {
    if (!s.empty()) s += "\n";
    s += std::to_string(i + 1) + ". " + msg.choices[i].title;
  }
  return std::string(crypto::truncate_code_points(s, max_body));
}

provider_request render(const outgoing& msg, const config& cfg) {
  provider_request req;
  req.method = "POST";
  req.headers.emplace_back("Accept", "application/json");
  const std::string body = body_text(msg);
  switch (cfg.outbound) {
    case gateway::twilio: {
      req.url = cfg.api_base + "/2010-04-01/Accounts/" + cfg.account_sid + "/Messages.json";
      req.headers.emplace_back("Authorization",
                               "Basic " + crypto::base64_encode(cfg.account_sid + ":" + cfg.auth_token));
      req.content_type = "application/x-www-form-urlencoded";
      std::vector<std::pair<std::string, std::string>> form{{"To", e164(msg.to)}};
      if (cfg.from.rfind("MG", 0) == 0)
        form.emplace_back("MessagingServiceSid", cfg.from);
      else
        form.emplace_back("From", cfg.from);
      form.emplace_back("Body", body);
      if (!cfg.public_url.empty()) {
        std::string cb = cfg.public_url;
        while (!cb.empty() && cb.back() == '/') cb.pop_back();
        form.emplace_back("StatusCallback", cb + "/webhooks/sms");
      }
      req.body = crypto::build_form(form);
      break;
    }
    case gateway::unifonic: {
      req.url = cfg.unifonic_api_base + "/rest/SMS/messages";
      req.content_type = "application/x-www-form-urlencoded";
      // SenderID: the account's default sender is used when the field is left out (not when
      // it is empty).
      std::vector<std::pair<std::string, std::string>> form{{"AppSid", cfg.unifonic_app_sid}};
      if (!cfg.unifonic_sender.empty()) form.emplace_back("SenderID", cfg.unifonic_sender);
      form.emplace_back("Body", body);
      form.emplace_back("Recipient", bare_digits(msg.to));
      form.emplace_back("responseType", "JSON");
      req.body = crypto::build_form(form);
      break;
    }
    case gateway::taqnyat: {
      req.url = cfg.taqnyat_api_base + "/v1/messages";
      req.headers.emplace_back("Authorization", "Bearer " + cfg.taqnyat_token);
      req.content_type = "application/json";
      const json j = {{"recipients", json::array({bare_digits(msg.to)})},
                      {"body", body},
                      {"sender", cfg.taqnyat_sender}};
      req.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
      break;
    }
  }
  return req;
}

std::size_t segments(std::string_view utf8) {
  const std::u32string cps = decode_utf8(utf8);
  std::vector<std::size_t> septets;
  bool gsm = true;
  for (char32_t c : cps) {
    if (gsm_basic.find(c) != std::u32string_view::npos) septets.push_back(1);
    else if (gsm_extension.find(c) != std::u32string_view::npos) septets.push_back(2);
    else {
      gsm = false;
      break;
    }
  }
  if (gsm) return pack(septets, 160, 153);
  std::vector<std::size_t> units;
  for (char32_t c : cps) units.push_back(c > 0xFFFF ? 2 : 1);
  return pack(units, 70, 67);
}

namespace {

// Whether a Taqnyat recipient list ("[966500000000,]", or an array) holds any number.
bool names_a_number(const json* list) {
  if (list == nullptr) return false;
  if (list->is_string()) {
    const auto& s = list->get_ref<const std::string&>();
    return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
  }
  if (list->is_array()) return !list->empty();
  return false;
}


send_result interpret_answer(gateway gw, int http_status, std::string_view body, std::string_view retry_after_header) {
  const auto doc = detail::parse_json(body);
  const json* root = doc ? &*doc : nullptr;
  send_result r;
  switch (gw) {
    case gateway::twilio: {
      const std::string code = text_member(root, "code");
      if (http_status >= 200 && http_status < 300) {
        r.outcome = send_outcome::sent;
        r.provider_message_id = text_member(root, "sid");
        return r;
      }
      if (code == "20429") {
        r.outcome = send_outcome::rate_limited;
        r.retry_after = detail::retry_after_header(retry_after_header);
        r.error = detail::error_text(http_status, code);
        return r;
      }
      if (auto t = detail::classify_transport(http_status, retry_after_header)) {
        if (!code.empty()) t->error = detail::error_text(http_status, code);
        return *t;
      }
      r.outcome = http_status >= 400 ? send_outcome::rejected : send_outcome::retry;
      r.error = detail::error_text(http_status, code);
      return r;
    }
    case gateway::unifonic: {
      // Only an explicit "success": false is a refusal: a 2xx in any other shape (no "success",
      // a body we cannot read) may have sent the SMS, and must not be sent again.
      const json* success = detail::member(root, "success");
      const bool says_failed = success && ((success->is_boolean() && !success->get<bool>()) ||
                                           (success->is_string() && success->get<std::string>() == "false"));
      const std::string code = text_member(root, "errorCode");
      if (http_status >= 200 && http_status < 300 && !says_failed) {
        r.outcome = send_outcome::sent;
        // Named for its gateway: Unifonic's and Taqnyat's ids are both plain numbers, and both
        // are SMS; a delivery receipt must find only Unifonic's message.
        r.provider_message_id = text_member(detail::object_member(root, "data"), "MessageID");
        if (!r.provider_message_id.empty()) r.provider_message_id.insert(0, "unifonic:");
        return r;
      }
      if (auto t = detail::classify_transport(http_status, retry_after_header)) {
        if (!code.empty()) t->error = detail::error_text(http_status, code);
        return *t;
      }
      r.outcome = http_status >= 400 || root ? send_outcome::rejected : send_outcome::retry;
      r.error = detail::error_text(http_status, code);
      return r;
    }
    case gateway::taqnyat: {
      const std::string code = text_member(root, "statusCode");
      if (http_status >= 200 && http_status < 300) {
        // Taqnyat answers 201 per request and lists the recipients it took and refused, as
        // strings: "accepted": "[966500000000,]", "rejected": "[]". We send to one number, so a
        // refused number with none accepted is a rejection, not a sent message.
        if (names_a_number(detail::member(root, "rejected")) && !names_a_number(detail::member(root, "accepted"))) {
          r.outcome = send_outcome::rejected;
          r.error = detail::error_text(http_status, code) + " recipient rejected";
          return r;
        }
        r.outcome = send_outcome::sent;
        r.provider_message_id = text_member(root, "messageId");
        return r;
      }
      if (auto t = detail::classify_transport(http_status, retry_after_header)) {
        if (!code.empty()) t->error = detail::error_text(http_status, code);
        return *t;
      }
      r.outcome = http_status >= 400 ? send_outcome::rejected : send_outcome::retry;
      r.error = detail::error_text(http_status, code);
      return r;
    }
  }
  return r;
}

}  // namespace

send_result interpret(gateway gw, int http_status, std::string_view body,
                      std::string_view retry_after_header) {
  send_result r = interpret_answer(gw, http_status, body, retry_after_header);
  if (r.outcome == send_outcome::sent) return r;
  // Twilio's 20003, Unifonic's and Taqnyat's wrong key or token: our credentials, not the SMS.
  bool ours = http_status == 401;
  if (gw == gateway::unifonic) {
    // Unifonic's own list (docs.unifonic.com, "HTTP status codes"): a missing AppSid (402), a
    // server address not on the account's list (403) and credentials badly encoded (459) refuse
    // every SMS alike: the channel waits until the account is put right, instead of every
    // reply going dead. Not so a sender name refused (480) or "no rate found or insufficient
    // funds" (ER-01): both may concern one destination's country only, and holding the channel
    // on such a row (the probe, every time) would hold every other person's replies.
    ours = ours || http_status == 402 || http_status == 403 || http_status == 459;
  }
  if (ours) {
    r.outcome = send_outcome::rejected;
    r.credentials_refused = true;
  }
  return r;
}

std::string twiml_empty() { return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response/>\n"; }

std::string twiml_message(std::string_view text) {
  std::string esc;
  for (char c : text) {
    switch (c) {
      case '&': esc += "&amp;"; break;
      case '<': esc += "&lt;"; break;
      case '>': esc += "&gt;"; break;
      case '"': esc += "&quot;"; break;
      case '\'': esc += "&apos;"; break;
      default: esc.push_back(c);
    }
  }
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n    <Message>" + esc +
         "</Message>\n</Response>\n";
}

}  // namespace aoun::channels::sms
