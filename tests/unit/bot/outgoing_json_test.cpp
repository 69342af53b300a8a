#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "bot/outgoing_json.hpp"

using aoun::bot::outbound_payload_text;
using aoun::bot::outgoing_from_json;
using aoun::bot::to_json;
using aoun::bot::to_json_text;
using aoun::channels::kind;
using aoun::channels::outgoing;

namespace {

// What record_outbound stored before outbound_payload_text: the same document through nlohmann.
std::string payload_via_dom(const outgoing& o) {
  nlohmann::json p = nlohmann::json::object();
  if (!o.choices.empty()) {
    p["choices"] = nlohmann::json::array();
    for (auto& ch : o.choices) p["choices"].push_back({{"id", ch.id}, {"title", ch.title}});
  }
  if (o.request_contact) p["request_contact"] = true;
  if (!o.template_name.empty()) p["template"] = o.template_name;
  return p.dump();
}

std::vector<outgoing> samples() {
  std::vector<outgoing> v;
  outgoing plain;
  plain.text = "مرحبا بكم في جمعية عون";
  v.push_back(plain);
  outgoing tricky;
  tricky.text = std::string("quote \" backslash \\ slash / tab \t newline \n nul ") + '\0' + " \x1f end 🙂";
  tricky.reply_to = "wamid.\"x\"";
  v.push_back(tricky);
  outgoing menu;
  menu.text = "اختر خدمة:";
  menu.choices = {{"intake", "طلب مساعدة", ""}, {"inquiry", "استفسار", "أسئلة \"شائعة\""}, {"track", "متابعة", "\n"}};
  menu.choices_button = "اختر";
  v.push_back(menu);
  outgoing contact;
  contact.text = "شارك رقمك";
  contact.request_contact = true;
  v.push_back(contact);
  outgoing tmpl;
  tmpl.text = "copy";
  tmpl.template_name = "aoun_followup";
  tmpl.template_lang = "ar";
  tmpl.template_params = {"أحمد", "AWN-2026-000001", ""};
  v.push_back(tmpl);
  outgoing ack;
  ack.callback_query_id = "4382bfdwdsb323b2d9";
  v.push_back(ack);
  outgoing read;
  read.mark_read_id = "wamid.HBgM";
  v.push_back(read);
  outgoing bad_utf8;
  bad_utf8.text = "\xff\xfe broken \xd8";
  v.push_back(bad_utf8);
  return v;
}

}  // namespace

TEST_CASE("the outbox payload is written byte for byte as nlohmann wrote it, and reads back the same") {
  for (const auto& o : samples()) {
    CAPTURE(o.text);
    auto text = to_json_text(o);
    CHECK(text == to_json(o).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    auto back = outgoing_from_json(nlohmann::json::parse(text), kind::whatsapp, "966500000001");
    CHECK(to_json_text(back) == text);
  }
}

TEST_CASE("the transcript payload of an outbound message is the same document as before, {} for plain text") {
  for (const auto& o : samples()) {
    CAPTURE(o.text);
    CHECK(outbound_payload_text(o) == payload_via_dom(o));
  }
  CHECK(outbound_payload_text(samples()[0]) == "{}");
}
