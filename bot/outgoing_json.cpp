#include "bot/outgoing_json.hpp"

#include "channels/detail/json_write.hpp"

namespace aoun::bot {
namespace {

using channels::detail::append_json_string;
using channels::detail::valid_utf8;

// Writes `"key":` preceded by a comma unless it is the first member.
void key(std::string& out, bool& first, std::string_view k) {
  if (!first) out += ',';
  first = false;
  append_json_string(out, k);
  out += ':';
}

}  // namespace

bool survives_json(const channels::outgoing& o) {
  if (!valid_utf8(o.text) || !valid_utf8(o.choices_button) || !valid_utf8(o.reply_to) ||
      !valid_utf8(o.template_name) || !valid_utf8(o.template_lang) || !valid_utf8(o.callback_query_id) ||
      !valid_utf8(o.mark_read_id))
    return false;
  for (const auto& ch : o.choices)
    if (!valid_utf8(ch.id) || !valid_utf8(ch.title) || !valid_utf8(ch.description)) return false;
  for (const auto& p : o.template_params)
    if (!valid_utf8(p)) return false;
  return true;
}

std::string to_json_text(const channels::outgoing& o) {
  // Members in the order nlohmann's std::map keeps them (sorted by key).
  std::string out;
  out.reserve(64 + o.text.size() + o.choices.size() * 64);
  out += '{';
  bool first = true;
  if (!o.callback_query_id.empty()) {
    key(out, first, "callback_query_id");
    append_json_string(out, o.callback_query_id);
  }
  if (!o.choices.empty()) {
    key(out, first, "choices");
    out += '[';
    for (std::size_t i = 0; i < o.choices.size(); ++i) {
      if (i) out += ',';
      out += "{\"description\":";
      append_json_string(out, o.choices[i].description);
      out += ",\"id\":";
      append_json_string(out, o.choices[i].id);
      out += ",\"title\":";
      append_json_string(out, o.choices[i].title);
      out += '}';
    }
    out += ']';
    key(out, first, "choices_button");
    append_json_string(out, o.choices_button);
  }
  if (!o.mark_read_id.empty()) {
    key(out, first, "mark_read_id");
    append_json_string(out, o.mark_read_id);
  }
  if (!o.reply_to.empty()) {
    key(out, first, "reply_to");
    append_json_string(out, o.reply_to);
  }
  if (o.request_contact) {
    key(out, first, "request_contact");
    out += "true";
  }
  if (!o.template_name.empty()) {
    key(out, first, "template_lang");
    append_json_string(out, o.template_lang);
    key(out, first, "template_name");
    append_json_string(out, o.template_name);
    key(out, first, "template_params");
    out += '[';
    for (std::size_t i = 0; i < o.template_params.size(); ++i) {
      if (i) out += ',';
      append_json_string(out, o.template_params[i]);
    }
    out += ']';
  }
  key(out, first, "text");
  append_json_string(out, o.text);
  out += '}';
  return out;
}

std::string outbound_payload_text(const channels::outgoing& o) {
  if (o.choices.empty() && !o.request_contact && o.template_name.empty()) return "{}";
  std::string out = "{";
  bool first = true;
  if (!o.choices.empty()) {
    key(out, first, "choices");
    out += '[';
    for (std::size_t i = 0; i < o.choices.size(); ++i) {
      if (i) out += ',';
      out += "{\"id\":";
      append_json_string(out, o.choices[i].id);
      out += ",\"title\":";
      append_json_string(out, o.choices[i].title);
      out += '}';
    }
    out += ']';
  }
  if (o.request_contact) {
    key(out, first, "request_contact");
    out += "true";
  }
  if (!o.template_name.empty()) {
    key(out, first, "template");
    append_json_string(out, o.template_name);
  }
  out += '}';
  return out;
}

nlohmann::json to_json(const channels::outgoing& o) {
  nlohmann::json j;
  j["text"] = o.text;
  if (!o.choices.empty()) {
    auto& arr = j["choices"] = nlohmann::json::array();
    for (auto& c : o.choices) arr.push_back({{"id", c.id}, {"title", c.title}, {"description", c.description}});
    j["choices_button"] = o.choices_button;
  }
  if (o.request_contact) j["request_contact"] = true;
  if (!o.reply_to.empty()) j["reply_to"] = o.reply_to;
  if (!o.template_name.empty()) {
    j["template_name"] = o.template_name;
    j["template_lang"] = o.template_lang;
    j["template_params"] = o.template_params;
  }
  if (!o.callback_query_id.empty()) j["callback_query_id"] = o.callback_query_id;
  if (!o.mark_read_id.empty()) j["mark_read_id"] = o.mark_read_id;
  return j;
}

channels::outgoing outgoing_from_json(const nlohmann::json& j, channels::kind channel, std::string to) {
  channels::outgoing o;
  o.channel = channel;
  o.to = std::move(to);
  if (!j.is_object()) return o;
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string(); };
  o.text = str("text");
  if (j.contains("choices") && j["choices"].is_array())
    for (auto& c : j["choices"])
      if (c.is_object())
        o.choices.push_back({c.value("id", ""), c.value("title", ""), c.value("description", "")});
  o.choices_button = str("choices_button");
  o.request_contact = j.value("request_contact", false);
  o.reply_to = str("reply_to");
  o.template_name = str("template_name");
  o.template_lang = str("template_lang");
  if (j.contains("template_params") && j["template_params"].is_array())
    for (auto& p : j["template_params"])
      if (p.is_string()) o.template_params.push_back(p.get<std::string>());
  o.callback_query_id = str("callback_query_id");
  o.mark_read_id = str("mark_read_id");
  return o;
}

channels::outgoing to_outgoing(const dialogs::reply& r, channels::kind channel, const std::string& to,
                               std::string_view lang) {
  channels::outgoing o;
  o.channel = channel;
  o.to = to;
  o.text = r.text;
  for (auto& c : r.choices) o.choices.push_back({c.id, c.title, c.description});
  o.choices_button = lang == "en" ? "Choose" : "اختر";
  o.request_contact = r.request_contact;
  return o;
}

}  // namespace aoun::bot
