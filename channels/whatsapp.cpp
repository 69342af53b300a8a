#include "channels/whatsapp.hpp"

#include <algorithm>
#include <utility>

#include "channels/crypto.hpp"
#include "channels/detail/json_doc.hpp"
#include "channels/detail/json_write.hpp"
#include "channels/detail/util.hpp"

namespace aoun::channels::whatsapp {
namespace {

using detail::object_member;
using detail::array_member;
using detail::text_member;
// Webhooks and the Graph API's answers are read with Boost.JSON (detail/json_doc.hpp), which
// accepts exactly what nlohmann did at a fraction of the cost; request bodies are written
// directly (detail/json_write.hpp) with the bytes nlohmann's dump() gave.
using jv = detail::jvalue;

constexpr std::string_view signature_prefix = "sha256=";

struct contact_name {
  std::string id;  // wa_id, or user_id when wa_id is absent
  std::string user_id;
  std::string name;
};

std::string_view clamp(std::string_view s, std::size_t max_code_points) {
  return crypto::truncate_code_points(s, max_code_points);
}

std::string normalize_status(std::string_view s) {
  if (s == "sent" || s == "delivered" || s == "read" || s == "failed") return std::string(s);
  if (s == "played") return "read";  // voice messages: played implies read
  return std::string(s);
}

void parse_message(const jv& m, const std::vector<contact_name>& contacts, std::vector<inbound>& out) {
  inbound ev;
  ev.channel = kind::whatsapp;
  ev.provider_id = text_member(&m, "id");
  if (ev.provider_id.empty()) return;  // no dedupe key: nothing we can safely record
  ev.from = text_member(&m, "from");
  if (ev.from.empty()) ev.from = text_member(&m, "from_user_id");
  for (const auto& c : contacts)
    if (!ev.from.empty() && (c.id == ev.from || c.user_id == ev.from)) ev.display_name = c.name;
  if (ev.from.empty() && contacts.size() == 1) ev.from = contacts.front().id;
  if (ev.display_name.empty() && contacts.size() == 1 && contacts.front().id == ev.from)
    ev.display_name = contacts.front().name;
  ev.user_id = text_member(&m, "from_user_id");
  if (ev.user_id.empty())
    for (const auto& c : contacts)
      if (!ev.from.empty() && c.id == ev.from) ev.user_id = c.user_id;
  ev.timestamp = detail::int_member(&m, "timestamp").value_or(0);
  const jv* context = object_member(&m, "context");
  ev.reply_to = text_member(context, "id");
  for (const char* k : {"forwarded", "frequently_forwarded"})
    if (const jv* f = detail::member(context, k); f && f->is_bool() && f->get_bool()) ev.forwarded = true;
  ev.raw_type = text_member(&m, "type");
  const std::string& type = ev.raw_type;

  if (type == "text") {
    const jv* t = object_member(&m, "text");
    ev.type = inbound_type::text;
    ev.text = text_member(t, "body");
  } else if (type == "interactive") {
    const jv* i = object_member(&m, "interactive");
    const std::string itype = text_member(i, "type");
    const jv* reply = nullptr;
    if (itype == "button_reply") reply = object_member(i, "button_reply");
    if (itype == "list_reply") reply = object_member(i, "list_reply");
    // A press with no id cannot be routed: it stays `unsupported` (so does media with no id).
    if (std::string id = text_member(reply, "id"); !id.empty()) {
      ev.type = inbound_type::choice;
      ev.choice_id = std::move(id);
      ev.text = text_member(reply, "title");
    }
    ev.raw_type = "interactive." + itype;
  } else if (type == "button") {
    // Template quick-reply button: payload is what we set as the button's id.
    const jv* b = object_member(&m, "button");
    if (std::string payload = text_member(b, "payload"); !payload.empty()) {
      ev.type = inbound_type::choice;
      ev.choice_id = std::move(payload);
      ev.text = text_member(b, "text");
    }
  } else if (type == "image" || type == "document" || type == "audio" || type == "video" ||
             type == "sticker") {
    const jv* media = object_member(&m, type);
    if (std::string id = text_member(media, "id"); !id.empty()) {
      ev.type = inbound_type::media;
      ev.media_kind = type;
      ev.media_id = std::move(id);
      ev.media_mime = text_member(media, "mime_type");
      ev.media_filename = text_member(media, "filename");
      ev.text = text_member(media, "caption");
    }
  } else if (type == "location") {
    const jv* loc = object_member(&m, "location");
    const auto lat = detail::number_member(loc, "latitude");
    const auto lon = detail::number_member(loc, "longitude");
    if (lat && lon) {
      ev.type = inbound_type::location;
      ev.latitude = *lat;
      ev.longitude = *lon;
      const std::string name = text_member(loc, "name");
      const std::string address = text_member(loc, "address");
      ev.text = name;
      if (!address.empty()) ev.text += (name.empty() ? "" : "\n") + address;
    }
  } else if (type == "contacts") {
    // Only the first card is taken: the flow asks for one number.
    const jv* cards = array_member(&m, "contacts");
    if (cards && !cards->get_array().empty() && cards->get_array().front().is_object()) {
      const jv& card = cards->get_array().front();
      ev.type = inbound_type::contact;
      ev.text = text_member(object_member(&card, "name"), "formatted_name");
      if (const jv* phones = array_member(&card, "phones")) {
        for (const jv& p : phones->get_array()) {
          const std::string wa_id = text_member(&p, "wa_id");
          const std::string phone = text_member(&p, "phone");
          if (ev.contact_phone.empty()) ev.contact_phone = phone.empty() ? wa_id : phone;
          if (!wa_id.empty() && wa_id == ev.from) {
            ev.contact_is_sender = true;
            ev.contact_phone = phone.empty() ? wa_id : phone;
            break;
          }
        }
      }
    }
  } else if (type == "system") {
    // The person's identity on WhatsApp changed: a new phone number (`user_changed_number`,
    // sent from the old number, `wa_id` the new one; `new_wa_id` before Graph v12) or a new
    // business-scoped user id (`user_changed_user_id`; both carry `previous_user_id` and
    // `user_id`). Not a turn: it stays `unsupported`, with Meta's sentence for staff, and names
    // the addresses that now belong to `from`.
    const jv* sys = object_member(&m, "system");
    const std::string what = text_member(sys, "type");
    if (!what.empty()) ev.raw_type = "system." + what;
    ev.text = text_member(sys, "body");
    if (what == "user_changed_number" || what == "customer_changed_number" || what == "user_changed_user_id") {
      std::string number = text_member(sys, "wa_id");
      if (number.empty()) number = text_member(sys, "new_wa_id");
      if (what != "user_changed_user_id" && !number.empty() && number != ev.from) {
        if (!ev.from.empty()) ev.previous_addresses.push_back(ev.from);
        ev.from = number;
      }
      const std::string user_id = text_member(sys, "user_id");
      const std::string previous_user_id = text_member(sys, "previous_user_id");
      if (!user_id.empty() && (ev.from.empty() || ev.from == previous_user_id)) ev.from = user_id;
      ev.user_id = user_id;  // the person's new one (a new number has a new user id too)
      if (!previous_user_id.empty() && previous_user_id != ev.from &&
          std::find(ev.previous_addresses.begin(), ev.previous_addresses.end(), previous_user_id) ==
              ev.previous_addresses.end())
        ev.previous_addresses.push_back(previous_user_id);
    }
  }
  // reaction, order, system, unsupported, nfm_reply, unknown types: stay `unsupported`. What
  // WhatsApp could not hand over may say what it was (`unsupported.type`: a poll, a pin, ...).
  if (type == "unsupported")
    if (std::string sub = text_member(object_member(&m, "unsupported"), "type"); !sub.empty())
      ev.raw_type = "unsupported." + sub;
  out.push_back(std::move(ev));
}

void parse_status(const jv& s, std::vector<inbound>& out) {
  inbound ev;
  ev.channel = kind::whatsapp;
  ev.type = inbound_type::status;
  ev.status_for = text_member(&s, "id");
  const std::string raw = text_member(&s, "status");
  if (ev.status_for.empty() || raw.empty()) return;
  ev.provider_id = ev.status_for + ":" + raw;
  ev.raw_type = "status." + raw;
  ev.status = normalize_status(raw);
  ev.from = text_member(&s, "recipient_id");
  if (ev.from.empty()) ev.from = text_member(&s, "recipient_user_id");
  ev.timestamp = detail::int_member(&s, "timestamp").value_or(0);
  if (const jv* errors = array_member(&s, "errors"); errors && !errors->get_array().empty()) {
    const jv& e = errors->get_array().front();
    ev.status_error = text_member(&e, "code");
    const std::string title = text_member(&e, "title");
    if (!title.empty()) ev.status_error += (ev.status_error.empty() ? "" : " ") + title;
  }
  out.push_back(std::move(ev));
}

// Writes `msg` as the body of a Graph API message of `type`, with its keys in the order
// nlohmann's std::map gave them (sorted), so that the bytes are those the DOM version sent.
// `payload` appends the value of the member named `type`.
template <class Payload>
void message_body(std::string& o, const outgoing& msg, std::string_view type, Payload&& payload) {
  o += '{';
  if (!msg.reply_to.empty()) {
    o += "\"context\":{\"message_id\":";
    detail::append_json_string(o, msg.reply_to);
    o += "},";
  }
  const bool early = type < std::string_view("messaging_product");  // "interactive"
  if (early) {
    o += '"';
    o += type;
    o += "\":";
    payload(o);
    o += ',';
  }
  // A person known only by WhatsApp's user id (BSUID) is addressed by it in `recipient`,
  // instead of `to`.
  const bool by_user_id = is_user_id(msg.to);
  o += "\"messaging_product\":\"whatsapp\",";
  if (by_user_id) {
    o += "\"recipient\":";
    detail::append_json_string(o, msg.to);
    o += ',';
  }
  o += "\"recipient_type\":\"individual\",";
  if (!early) {  // "template", "text": after recipient_type, before "to"
    o += '"';
    o += type;
    o += "\":";
    payload(o);
    o += ',';
  }
  if (!by_user_id) {
    o += "\"to\":";
    detail::append_json_string(o, msg.to);
    o += ',';
  }
  o += "\"type\":\"";
  o += type;
  o += "\"}";
}

// Titles must be unique within a message; after clamping two may collide, so number them.
std::vector<std::string> unique_titles(const std::vector<choice>& choices, std::size_t max_len) {
  std::vector<std::string> out;
  out.reserve(choices.size());
  const auto seen = [&](const std::string& t) { return std::find(out.begin(), out.end(), t) != out.end(); };
  for (std::size_t i = 0; i < choices.size(); ++i) {
    std::string base = choices[i].title.empty() ? choices[i].id : choices[i].title;
    if (base.empty()) base = std::to_string(i + 1);
    std::string t(clamp(base, max_len));
    for (int k = 2; seen(t); ++k) {
      std::string suffix(1, ' ');
      suffix += std::to_string(k);
      t = std::string(clamp(base, max_len - suffix.size())) + suffix;
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::string numbered_text(const outgoing& msg) {
  std::string s = msg.text;
  for (std::size_t i = 0; i < msg.choices.size(); ++i) {
    if (!s.empty()) s += "\n";
    if (i == 0 && !msg.text.empty()) s += "\n";
    s += std::to_string(i + 1) + ". " + msg.choices[i].title;
  }
  return s;
}

}  // namespace

bool verify_signature(std::string_view raw_body, std::string_view header_value,
                      std::string_view app_secret) {
  if (app_secret.empty() || header_value.size() != signature_prefix.size() + 64) return false;
  if (header_value.substr(0, signature_prefix.size()) != signature_prefix) return false;
  const auto given = crypto::hex_decode(header_value.substr(signature_prefix.size()));
  if (!given) return false;
  return crypto::equal_constant_time(crypto::hmac_sha256(app_secret, raw_body), *given);
}

std::optional<std::string> verify_handshake(std::string_view mode, std::string_view token,
                                            std::string_view challenge,
                                            std::string_view verify_token) {
  if (mode != "subscribe" || verify_token.empty()) return std::nullopt;
  if (!crypto::equal_constant_time(token, verify_token)) return std::nullopt;
  return std::string(challenge);
}

parse_result parse(std::string_view body, std::string_view our_number_id) {
  parse_result r;
  detail::json_doc doc;
  if (!doc.parse(body)) {
    r.error = "malformed json";
    return r;
  }
  const jv* root = &doc.root();
  if (!root->is_object()) {
    r.error = "not a json object";
    return r;
  }
  if (text_member(root, "object") != "whatsapp_business_account") {
    r.error = "object is not whatsapp_business_account";
    return r;
  }
  const jv* entries = array_member(root, "entry");
  if (!entries) {
    r.error = "no entry array";
    return r;
  }
  for (const jv& entry : entries->get_array()) {
    const jv* changes = array_member(&entry, "changes");
    if (!changes) continue;
    for (const jv& change : changes->get_array()) {
      const jv* value = object_member(&change, "value");
      if (!value) continue;
      if (!our_number_id.empty()) {
        const std::string number = text_member(object_member(value, "metadata"), "phone_number_id");
        if (!number.empty() && number != our_number_id) {
          ++r.other_number;
          continue;
        }
      }
      std::vector<contact_name> contacts;
      if (const jv* cs = array_member(value, "contacts")) {
        for (const jv& c : cs->get_array()) {
          contact_name cn;
          cn.user_id = text_member(&c, "user_id");
          cn.id = text_member(&c, "wa_id");
          if (cn.id.empty()) cn.id = cn.user_id;
          cn.name = text_member(object_member(&c, "profile"), "name");
          contacts.push_back(std::move(cn));
        }
      }
      if (const jv* ms = array_member(value, "messages"))
        for (const jv& m : ms->get_array())
          if (m.is_object()) parse_message(m, contacts, r.events);
      if (const jv* ss = array_member(value, "statuses"))
        for (const jv& s : ss->get_array())
          if (s.is_object()) parse_status(s, r.events);
    }
  }
  r.ok = true;
  return r;
}

bool is_user_id(std::string_view address) {
  // A two-letter country code, a period, then letters and digits ("US.ENT.1181…" for a parent
  // id); a phone number never has a letter.
  const auto upper = [](char ch) { return ch >= 'A' && ch <= 'Z'; };
  return address.size() > 3 && upper(address[0]) && upper(address[1]) && address[2] == '.';
}

provider_request render(const outgoing& msg, const config& cfg) {
  using detail::append_json_string;
  provider_request req;
  req.method = "POST";
  req.url.reserve(cfg.api_base.size() + cfg.phone_number_id.size() + 10);
  req.url += cfg.api_base;
  req.url += '/';
  req.url += cfg.phone_number_id;
  req.url += "/messages";
  req.headers.emplace_back("Authorization", "Bearer " + cfg.token);
  req.content_type = "application/json";

  std::string& o = req.body;
  o.reserve(192 + msg.to.size() + msg.reply_to.size() + msg.text.size());
  if (!msg.mark_read_id.empty()) {
    o += "{\"message_id\":";
    append_json_string(o, msg.mark_read_id);
    o += ",\"messaging_product\":\"whatsapp\",\"status\":\"read\"}";
  } else if (!msg.template_name.empty()) {
    message_body(o, msg, "template", [&](std::string& o) {
      o += '{';
      if (!msg.template_params.empty()) {
        o += "\"components\":[{\"parameters\":[";
        for (std::size_t i = 0; i < msg.template_params.size(); ++i) {
          if (i) o += ',';
          o += "{\"text\":";
          append_json_string(o, msg.template_params[i]);
          o += ",\"type\":\"text\"}";
        }
        o += "],\"type\":\"body\"}],";
      }
      o += "\"language\":{\"code\":";
      append_json_string(o, msg.template_lang.empty() ? std::string_view("ar") : std::string_view(msg.template_lang));
      o += ",\"policy\":\"deterministic\"},\"name\":";
      append_json_string(o, msg.template_name);
      o += '}';
    });
  } else if (!msg.choices.empty() && msg.choices.size() <= max_buttons) {
    const auto titles = unique_titles(msg.choices, max_button_title);
    message_body(o, msg, "interactive", [&](std::string& o) {
      o += "{\"action\":{\"buttons\":[";
      for (std::size_t i = 0; i < msg.choices.size(); ++i) {
        if (i) o += ',';
        o += "{\"reply\":{\"id\":";
        append_json_string(o, crypto::truncate_bytes(msg.choices[i].id, 256));
        o += ",\"title\":";
        append_json_string(o, titles[i]);
        o += "},\"type\":\"reply\"}";
      }
      o += "]},\"body\":{\"text\":";
      append_json_string(o, clamp(msg.text, max_interactive_body));
      o += "},\"type\":\"button\"}";
    });
  } else if (msg.choices.size() > max_buttons && msg.choices.size() <= max_list_rows) {
    message_body(o, msg, "interactive", [&](std::string& o) {
      const std::string_view button = msg.choices_button.empty() ? std::string_view("اختر") : msg.choices_button;
      o += "{\"action\":{\"button\":";
      append_json_string(o, clamp(button, max_list_button));
      o += ",\"sections\":[{\"rows\":[";
      for (std::size_t i = 0; i < msg.choices.size(); ++i) {
        const choice& c = msg.choices[i];
        if (i) o += ',';
        o += '{';
        if (!c.description.empty()) {
          o += "\"description\":";
          append_json_string(o, clamp(c.description, max_row_description));
          o += ',';
        }
        o += "\"id\":";
        append_json_string(o, crypto::truncate_bytes(c.id, 200));
        o += ",\"title\":";
        const std::string numbered = std::to_string(i + 1);
        const std::string_view title = !c.title.empty() ? std::string_view(c.title)
                                       : !c.id.empty()  ? std::string_view(c.id)
                                                        : std::string_view(numbered);
        append_json_string(o, clamp(title, max_row_title));
        o += '}';
      }
      o += "]}]},\"body\":{\"text\":";
      append_json_string(o, clamp(msg.text, max_interactive_body));
      o += "},\"type\":\"list\"}";
    });
  } else {
    message_body(o, msg, "text", [&](std::string& o) {
      o += "{\"body\":";
      if (msg.choices.empty())
        append_json_string(o, clamp(msg.text, max_text));
      else
        append_json_string(o, clamp(numbered_text(msg), max_text));
      o += ",\"preview_url\":false}";
    });
  }
  return req;
}

namespace {
bool account_refused(std::optional<std::int64_t> code, std::optional<std::int64_t> subcode) {
  if (!code) return false;
  const auto c = *code;
  return c == 190 || c == 0 || c == 3 || c == 10 || (c >= 200 && c <= 299) || c == 131005 || c == 368 || c == 131031 ||
         c == 131042 || c == 133010 || (c == 100 && subcode == 33);
}
}  // namespace

send_result interpret(int http_status, std::string_view body, std::string_view retry_after_header) {
  detail::json_doc doc;
  const jv* root = doc.parse(body) ? &doc.root() : nullptr;
  const jv* err = object_member(root, "error");
  const auto code = detail::int_member(err, "code");
  const std::string code_text = code ? std::to_string(*code) : std::string{};

  if (http_status >= 200 && http_status < 300) {
    send_result r;
    r.outcome = send_outcome::sent;
    if (const jv* ms = array_member(root, "messages"); ms && !ms->get_array().empty())
      r.provider_message_id = text_member(&ms->get_array().front(), "id");
    return r;
  }
  // The account, not this message, is refused: every reply would fail the same way, so the
  // channel is held (as for a refused token) instead of each reply going dead one by one, and
  // staff see why. 190: the access token expired or was revoked (Meta answers it with 401,
  // sometimes 400); 0, 3, 10, 200-299, 131005: the app lost a permission; 368: temporarily
  // blocked for a policy violation; 131031: the business account is locked; 131042: a payment
  // problem; 133010: the number is not registered; 100 with subcode 33: our phone_number_id
  // names nothing we may use (Meta's error codes, "Authorization", "Integrity" and
  // "Throttling" tables).
  if (account_refused(code, detail::int_member(err, "error_subcode")) || http_status == 401) {
    send_result r;
    r.outcome = send_outcome::rejected;
    r.credentials_refused = true;
    r.error = detail::error_text(http_status, code_text);
    return r;
  }
  if (code == 131047) {
    send_result r;
    r.outcome = send_outcome::rejected;
    r.outside_window = true;
    r.error = detail::error_text(http_status, code_text);
    return r;
  }
  // Throughput (130429), pair rate limit (131056), app/business rate limits (4, 80007), spam
  // rate limit (131048: too many messages refused or blocked lately; it lifts with time).
  if (code == 130429 || code == 131056 || code == 80007 || code == 4 || code == 131048) {
    send_result r;
    r.outcome = send_outcome::rate_limited;
    r.retry_after = detail::retry_after_header(retry_after_header);
    r.error = detail::error_text(http_status, code_text);
    return r;
  }
  if (auto t = detail::classify_transport(http_status, retry_after_header)) {
    if (!code_text.empty()) t->error = detail::error_text(http_status, code_text);
    return *t;
  }
  send_result r;
  // Meta's transient codes (unknown, service unavailable) can come with a 4xx status.
  if (code == 1 || code == 2 || code == 131000 || code == 131016 || http_status < 400)
    r.outcome = send_outcome::retry;
  else
    r.outcome = send_outcome::rejected;
  r.error = detail::error_text(http_status, code_text);
  return r;
}

}  // namespace aoun::channels::whatsapp
