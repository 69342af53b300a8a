#include "bot/outgoing_json.hpp"

namespace aoun::bot {

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
