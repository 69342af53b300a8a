#include "channels/telegram.hpp"

#include <algorithm>
#include <utility>

#include "channels/crypto.hpp"
#include "channels/detail/util.hpp"

namespace aoun::channels::telegram {
namespace {

using detail::json;
using detail::array_member;
using detail::member;
using detail::object_member;
using detail::text_member;

constexpr std::string_view default_contact_label = "مشاركة رقم الجوال";

std::string display_name(const json* user) {
  std::string name = text_member(user, "first_name");
  const std::string last = text_member(user, "last_name");
  if (!last.empty()) name += (name.empty() ? "" : " ") + last;
  return name;
}

// The title of the inline button whose callback_data was pressed, if the message carries it.
std::string button_title(const json* message, std::string_view data) {
  const json* kb = array_member(object_member(message, "reply_markup"), "inline_keyboard");
  if (!kb) return {};
  for (const json& row : *kb) {
    if (!row.is_array()) continue;
    for (const json& b : row)
      if (text_member(&b, "callback_data") == data) return text_member(&b, "text");
  }
  return {};
}

// A file's size as Telegram gives it (optional), 0 when absent or not a sane byte count.
std::int64_t file_size(const json* f) {
  const auto n = detail::int_member(f, "file_size");
  return n && *n > 0 ? *n : 0;
}

void parse_message(const json* m, inbound& ev) {
  const json* chat = object_member(m, "chat");
  const json* from = object_member(m, "from");
  ev.from = text_member(chat, "id");
  if (ev.from.empty()) ev.from = text_member(from, "id");
  ev.display_name = display_name(from ? from : chat);
  ev.timestamp = detail::int_member(m, "date").value_or(0);
  ev.reply_to = text_member(object_member(m, "reply_to_message"), "message_id");
  ev.message_ref = text_member(m, "message_id");
  // Forwarded (Bot API 7: forward_origin; before it, forward_date and forward_from*): who wrote
  // it first, and when, kept for staff (a forwarded threat is evidence, not the person's words).
  if (const json* origin = object_member(m, "forward_origin")) {
    ev.forwarded = true;
    ev.forwarded_at = detail::int_member(origin, "date").value_or(0);
    const std::string type = text_member(origin, "type");
    if (type == "user") ev.forwarded_from = display_name(object_member(origin, "sender_user"));
    else if (type == "hidden_user") ev.forwarded_from = text_member(origin, "sender_user_name");
    else if (type == "chat") ev.forwarded_from = text_member(object_member(origin, "sender_chat"), "title");
    else if (type == "channel") ev.forwarded_from = text_member(object_member(origin, "chat"), "title");
  } else if (const auto date = detail::int_member(m, "forward_date")) {
    ev.forwarded = true;
    ev.forwarded_at = *date;
    ev.forwarded_from = display_name(object_member(m, "forward_from"));
    if (ev.forwarded_from.empty()) ev.forwarded_from = text_member(m, "forward_sender_name");
    if (ev.forwarded_from.empty()) ev.forwarded_from = text_member(object_member(m, "forward_from_chat"), "title");
  }

  if (const json* t = member(m, "text"); t && t->is_string()) {
    ev.type = inbound_type::text;
    ev.raw_type = "text";
    ev.text = t->get<std::string>();
  } else if (const json* c = object_member(m, "contact")) {
    ev.type = inbound_type::contact;
    ev.raw_type = "contact";
    ev.contact_phone = text_member(c, "phone_number");
    ev.text = display_name(c);
    const auto contact_user = detail::int_member(c, "user_id");
    const auto sender = detail::int_member(from, "id");
    ev.contact_is_sender = contact_user && sender && *contact_user == *sender;
  } else if (const json* photos = array_member(m, "photo")) {
    // PhotoSize array; Telegram sends the largest last, but pick by area to be safe.
    const json* best = nullptr;
    std::int64_t best_area = -1;
    for (const json& p : *photos) {
      if (!p.is_object() || text_member(&p, "file_id").empty()) continue;
      const std::int64_t w = detail::int_member(&p, "width").value_or(0);
      const std::int64_t h = detail::int_member(&p, "height").value_or(0);
      const std::int64_t area = (w > 0 && h > 0 && w < 1'000'000 && h < 1'000'000) ? w * h : 0;
      if (area >= best_area) {
        best_area = area;
        best = &p;
      }
    }
    ev.raw_type = "photo";
    if (best) {
      ev.type = inbound_type::media;
      ev.media_kind = "image";
      ev.media_id = text_member(best, "file_id");
      ev.media_size = file_size(best);
      ev.media_mime = "image/jpeg";  // Telegram re-encodes photos as JPEG
      ev.text = text_member(m, "caption");
    }
  } else if (const json* d = object_member(m, "document"); d && !object_member(m, "animation")) {
    // (A GIF comes with `document` too, for old clients: it is an animation, below.)
    ev.raw_type = "document";
    ev.media_id = text_member(d, "file_id");
    if (!ev.media_id.empty()) {
      ev.type = inbound_type::media;
      ev.media_kind = "document";
      ev.media_mime = text_member(d, "mime_type");
      ev.media_filename = text_member(d, "file_name");
      ev.media_size = file_size(d);
      ev.text = text_member(m, "caption");
    }
  } else if (const json* venue = object_member(m, "venue"); venue || object_member(m, "location")) {
    // A venue is a location with a name and an address (Telegram sends `location` beside it).
    const json* loc = venue ? object_member(venue, "location") : object_member(m, "location");
    ev.raw_type = venue ? "venue" : "location";
    const auto lat = detail::number_member(loc, "latitude");
    const auto lon = detail::number_member(loc, "longitude");
    if (lat && lon) {
      ev.type = inbound_type::location;
      ev.latitude = *lat;
      ev.longitude = *lon;
      if (!venue) ev.live_period = std::max<std::int64_t>(0, detail::int_member(loc, "live_period").value_or(0));
      const std::string title = text_member(venue, "title");
      const std::string address = text_member(venue, "address");
      ev.text = title;
      if (!address.empty()) ev.text += (title.empty() ? "" : "\n") + address;
    }
  } else {
    // Voice notes, audio, video, round videos, stickers and GIFs are media like the WhatsApp
    // ones: recorded with their file_id, which staff fetch through getFile.
    struct kind_of {
      const char* field;
      const char* media_kind;
      const char* default_mime;
    };
    static constexpr kind_of kinds[] = {{"voice", "audio", "audio/ogg"},      {"audio", "audio", "audio/mpeg"},
                                        {"video", "video", "video/mp4"},      {"video_note", "video", "video/mp4"},
                                        {"animation", "video", "video/mp4"}, {"sticker", "sticker", "image/webp"}};
    ev.raw_type = "message";
    for (const auto& k : kinds) {
      const json* f = object_member(m, k.field);
      if (!f) continue;
      ev.raw_type = k.field;
      ev.media_id = text_member(f, "file_id");
      if (ev.media_id.empty()) break;
      ev.type = inbound_type::media;
      ev.media_kind = k.media_kind;
      ev.media_mime = text_member(f, "mime_type");
      if (ev.media_mime.empty() && std::string_view(k.field) == "sticker") {
        const json* animated = member(f, "is_animated");
        const json* video = member(f, "is_video");
        if (animated && animated->is_boolean() && animated->get<bool>()) ev.media_mime = "application/x-tgsticker";
        else if (video && video->is_boolean() && video->get<bool>()) ev.media_mime = "video/webm";
      }
      if (ev.media_mime.empty()) ev.media_mime = k.default_mime;
      ev.media_filename = text_member(f, "file_name");
      ev.media_size = file_size(f);
      ev.text = text_member(m, "caption");
      break;
    }
    // Kinds a person sends that the bot cannot read, named so that bot/ can tell them so (a
    // service message, say a pin, stays "message" and gets no answer).
    if (ev.raw_type == "message")
      for (const char* k : {"poll", "dice", "game", "story", "paid_media"})
        if (member(m, k)) {
          ev.raw_type = k;
          break;
        }
  }
  // A group, supergroup or channel: recorded for staff, never a dialog turn. The bot would
  // otherwise ask for consent and a national ID in front of everyone in the group.
  if (const std::string type = text_member(chat, "type"); !type.empty() && type != "private") {
    ev.type = inbound_type::unsupported;
    ev.raw_type = "group:" + ev.raw_type;
  }
}

}  // namespace

bool verify_secret(std::string_view header_value, std::string_view secret) {
  if (header_value.empty() || secret.empty()) return false;
  return crypto::equal_constant_time(header_value, secret);
}

parse_result parse(std::string_view body) {
  parse_result r;
  const auto doc = detail::parse_json(body);
  if (!doc) {
    r.error = "malformed json";
    return r;
  }
  if (!doc->is_object()) {
    r.error = "not a json object";
    return r;
  }
  const json* id = member(*doc, "update_id");
  if (!id || !(id->is_number_integer() || id->is_number_unsigned())) {
    r.error = "no integer update_id";
    return r;
  }
  const auto update_id = detail::int_member(&*doc, "update_id");
  if (!update_id) {
    r.error = "update_id out of range";
    return r;
  }

  inbound ev;
  ev.channel = kind::telegram;
  ev.type = inbound_type::unsupported;
  ev.provider_id = std::to_string(*update_id);

  if (const json* m = object_member(&*doc, "message")) {
    parse_message(m, ev);
  } else if (const json* q = object_member(&*doc, "callback_query")) {
    const json* from = object_member(q, "from");
    const json* message = object_member(q, "message");
    ev.raw_type = "callback_query";
    ev.callback_query_id = text_member(q, "id");
    ev.from = text_member(object_member(message, "chat"), "id");
    if (ev.from.empty()) ev.from = text_member(from, "id");
    ev.display_name = display_name(from);
    ev.reply_to = text_member(message, "message_id");
    if (const std::string type = text_member(object_member(message, "chat"), "type"); !type.empty() && type != "private") {
      ev.raw_type = "group:callback_query";  // acknowledged, not a dialog turn (see parse_message)
    } else if (const json* data = member(q, "data"); data && data->is_string() && !data->get_ref<const std::string&>().empty()) {
      ev.type = inbound_type::choice;
      ev.choice_id = data->get<std::string>();
      ev.text = button_title(message, ev.choice_id);
    }
  } else if (const json* edited = object_member(&*doc, "edited_message")) {
    // An edit is not a new answer (the dialog has moved on), but staff see what it now says:
    // recorded with the new text, never a dialog turn.
    parse_message(edited, ev);
    // A live location is updated by editing its message: the place moves, nothing is said.
    ev.location_update = ev.type == inbound_type::location && ev.raw_type == "location" && !ev.message_ref.empty();
    ev.type = inbound_type::unsupported;
    ev.raw_type = ev.raw_type.rfind("group:", 0) == 0 ? "group:edited_message" : "edited_message";
    ev.media_id.clear();
  } else if (const json* cm = object_member(&*doc, "my_chat_member")) {
    // The bot's own membership of a chat changed. In a private chat, "kicked" is the person
    // blocking the bot, and "member" unblocking (restarting) it: nothing can reach them between.
    const json* chat = object_member(cm, "chat");
    ev.from = text_member(chat, "id");
    ev.display_name = display_name(object_member(cm, "from"));
    ev.timestamp = detail::int_member(cm, "date").value_or(0);
    const std::string status = text_member(object_member(cm, "new_chat_member"), "status");
    ev.raw_type = "my_chat_member:" + status;
    if (const std::string type = text_member(chat, "type"); !type.empty() && type != "private")
      ev.raw_type = "group:" + ev.raw_type;
    else if (status == "kicked")
      ev.opt_out = "stop";
    else if (status == "member")
      ev.opt_out = "start";
  } else {
    // channel_post, chat_member, ...: recorded, not routed.
    for (auto it = doc->begin(); it != doc->end(); ++it) {
      if (it.key() == "update_id") continue;
      ev.raw_type = it.key();
      // A business account's chats (Telegram Business, once one is connected to the bot):
      // written between that account and its own contacts, its owner's words included, in a
      // chat whose id is the contact's, the same as their chat with the bot. Never filed as
      // the person's message to us: no sender, so kept for admins only (unroutable).
      if (it.key().find("business") != std::string::npos) {
        ev.raw_type = "business:" + it.key();
        break;
      }
      const json* chat = object_member(object_member(&*doc, it.key()), "chat");
      ev.from = text_member(chat, "id");
      break;
    }
  }
  r.events.push_back(std::move(ev));
  r.ok = true;
  return r;
}

provider_request render(const outgoing& msg, const config& cfg) {
  provider_request req;
  req.method = "POST";
  req.content_type = "application/json";
  const std::string base = cfg.api_base + "/bot" + cfg.token + "/";
  json j;
  if (!msg.callback_query_id.empty()) {
    req.url = base + "answerCallbackQuery";
    j = {{"callback_query_id", msg.callback_query_id}};
    if (!msg.text.empty())
      j["text"] = std::string(crypto::truncate_code_points(msg.text, max_callback_answer));
    j["show_alert"] = false;
    j["cache_time"] = 0;
  } else {
    req.url = base + "sendMessage";
    if (const auto id = detail::parse_int(msg.to))
      j["chat_id"] = *id;
    else
      j["chat_id"] = msg.to;
    j["text"] = std::string(crypto::truncate_code_points(msg.text, max_text));
    if (msg.request_contact) {
      const std::string label = !msg.choices.empty() && !msg.choices.front().title.empty()
                                    ? msg.choices.front().title
                                    : std::string(default_contact_label);
      j["reply_markup"] = {{"keyboard", json::array({json::array({{{"text", label}, {"request_contact", true}}})})},
                           {"resize_keyboard", true},
                           {"one_time_keyboard", true}};
    } else if (!msg.choices.empty()) {
      json rows = json::array();
      for (std::size_t i = 0; i < msg.choices.size(); ++i) {
        const choice& c = msg.choices[i];
        std::string data(crypto::truncate_bytes(c.id, max_callback_data));
        if (data.empty()) data = std::to_string(i + 1);  // callback_data must be 1-64 bytes
        std::string title = c.title.empty() ? c.id : c.title;
        if (title.empty()) title = std::to_string(i + 1);
        rows.push_back(json::array({{{"text", title}, {"callback_data", data}}}));
      }
      j["reply_markup"] = {{"inline_keyboard", std::move(rows)}};
    } else {
      // A plain message takes down the share-contact keyboard, which Telegram otherwise keeps
      // under the input field ("one time" only hides it after a press): pressed at a later
      // question, it would send the number as that answer. Harmless when none is shown.
      j["reply_markup"] = {{"remove_keyboard", true}};
    }
    if (const auto reply = detail::parse_int(msg.reply_to))
      j["reply_parameters"] = {{"message_id", *reply}, {"allow_sending_without_reply", true}};
  }
  req.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return req;
}

send_result interpret(int http_status, std::string_view body, std::string_view retry_after_header) {
  const auto doc = detail::parse_json(body);
  const json* root = doc ? &*doc : nullptr;
  const json* ok = member(root, "ok");
  const bool says_failed = ok && ok->is_boolean() && !ok->get<bool>();
  const std::string code = text_member(root, "error_code");

  if (http_status >= 200 && http_status < 300 && !says_failed) {
    // A 2xx may have sent the message unless it says otherwise ("ok": false): whatever else its
    // body holds (nothing readable, no "ok", a shape we do not know), never resend it.
    send_result r;
    r.outcome = send_outcome::sent;
    r.provider_message_id = text_member(object_member(root, "result"), "message_id");
    return r;
  }
  if (http_status == 429 || code == "429") {
    send_result r;
    r.outcome = send_outcome::rate_limited;
    if (const auto s = detail::int_member(object_member(root, "parameters"), "retry_after"))
      r.retry_after = detail::seconds_clamped(*s);
    else
      r.retry_after = detail::retry_after_header(retry_after_header);
    r.error = detail::error_text(http_status == 0 ? 429 : http_status, code);
    return r;
  }
  if (auto t = detail::classify_transport(http_status, retry_after_header)) {
    if (!code.empty()) t->error = detail::error_text(http_status, code);
    return *t;
  }
  send_result r;
  r.outcome = http_status >= 400 || (root && ok) ? send_outcome::rejected : send_outcome::retry;
  r.error = detail::error_text(http_status, code);
  // Telegram's own 403 (its JSON, not a proxy's page): the person blocked the bot or deleted
  // their account. Its reason is said to staff ("Forbidden: bot was blocked by the user", "…
  // user is deactivated"); other descriptions are not copied (they can echo user content).
  r.recipient_blocked = says_failed && code == "403";
  // The bot's token: revoked (401 Unauthorized) or malformed (Telegram's own 404 "Not Found":
  // our method paths are fixed, so only the token part of the URL can be unknown to it).
  r.credentials_refused = http_status == 401 || code == "401" ||
                          (says_failed && code == "404" && text_member(root, "description") == "Not Found");
  if (r.recipient_blocked)
    if (const std::string why = text_member(root, "description"); why.rfind("Forbidden:", 0) == 0)
      r.error += ": " + std::string(crypto::truncate_code_points(why, 100));
  // A 400 says what Telegram refused ("Bad Request: chat not found", "message is too long",
  // "BUTTON_DATA_INVALID"): staff must tell a chat that is gone from a message we built wrong.
  // Copied only when it is words alone (letters, spaces, _ and '): a description that carries
  // details ("can't parse entities: …", an id) could echo what was sent, and is left out.
  if (says_failed && code == "400") {
    const std::string why = text_member(root, "description");
    const bool words = why.size() > 13 && why.size() <= 100 && why.rfind("Bad Request: ", 0) == 0 &&
                       std::all_of(why.begin() + 13, why.end(), [](char ch) {
                         return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == ' ' || ch == '_' || ch == '\'';
                       });
    if (words) r.error += ": " + why;
  }
  return r;
}

}  // namespace aoun::channels::telegram
