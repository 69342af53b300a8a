#include <doctest/doctest.h>

#include <map>

#include "bot/config.hpp"
#include "bot/event_hub.hpp"
#include "bot/metrics.hpp"
#include "bot/outbox.hpp"
#include "bot/outgoing_json.hpp"
#include "tests/unit/bot/support.hpp"

using namespace aoun;
using channels::outgoing;

namespace {

bot::config all_channels() {
  return bot::testing::config_from({
      {"AOUN_DB", ":memory:"},
      {"AOUN_WHATSAPP_VERIFY_TOKEN", "verify"},
      {"AOUN_WHATSAPP_APP_SECRET", "secret"},
      {"AOUN_WHATSAPP_TOKEN", "wa-token"},
      {"AOUN_WHATSAPP_PHONE_NUMBER_ID", "106540352242922"},
      {"AOUN_WHATSAPP_API_BASE", "http://127.0.0.1:1"},
      {"AOUN_TELEGRAM_TOKEN", "123:abc"},
      {"AOUN_TELEGRAM_SECRET", "tg-secret"},
      {"AOUN_TELEGRAM_API_BASE", "http://127.0.0.1:2"},
      {"AOUN_TWILIO_ACCOUNT_SID", "AC123"},
      {"AOUN_TWILIO_AUTH_TOKEN", "twilio-token"},
      {"AOUN_TWILIO_FROM", "+15005550006"},
      {"AOUN_TWILIO_API_BASE", "http://127.0.0.1:3"},
      {"AOUN_PUBLIC_URL", "https://bot.example.org"},
  });
}

std::vector<outgoing> messages() {
  std::vector<outgoing> v;
  outgoing plain;
  plain.text = "مرحبا بكم في جمعية عون";
  v.push_back(plain);
  outgoing tricky;
  tricky.text = std::string("quote \" backslash \\ tab \t newline \n nul ") + '\0' + " \x1f 🙂";
  tricky.reply_to = "wamid.\"x\"";
  v.push_back(tricky);
  outgoing buttons;
  buttons.text = "هل تريد المتابعة؟";
  buttons.choices = {{"yes", "نعم", ""}, {"no", "لا", ""}};
  v.push_back(buttons);
  outgoing list;
  list.text = "اختر خدمة:";
  list.choices = {{"intake", "طلب مساعدة", ""}, {"inquiry", "استفسار", "أسئلة \"شائعة\""},
                  {"track", "متابعة طلب", ""}, {"volunteer", "تطوع", ""}};
  list.choices_button = "اختر";
  v.push_back(list);
  outgoing contact;
  contact.text = "شارك رقمك";
  contact.request_contact = true;
  v.push_back(contact);
  outgoing tmpl;
  tmpl.text = "copy";
  tmpl.template_name = "aoun_followup";
  tmpl.template_lang = "ar";
  tmpl.template_params = {"أحمد", "AWN-2026-000001"};
  v.push_back(tmpl);
  outgoing read;
  read.mark_read_id = "wamid.HBgM";
  v.push_back(read);
  outgoing ack;
  ack.callback_query_id = "4382bfdwdsb323b2d9";
  v.push_back(ack);
  outgoing bad_utf8;
  bad_utf8.text = "\xff\xfe broken \xd8";
  v.push_back(bad_utf8);
  return v;
}

}  // namespace

// A reply claimed at commit time is rendered from the message still in memory; a row read back
// from the table, from its JSON payload. Both must put the same request on the wire.
TEST_CASE("the outbox renders the same provider request from the message in memory as from its stored payload") {
  auto cfg = all_channels();
  REQUIRE(cfg.whatsapp_enabled);
  REQUIRE(cfg.telegram_enabled);
  REQUIRE(cfg.sms_enabled);
  storage::options opts;
  opts.path = ":memory:";
  opts.readers = 0;
  auto db = storage::database::open(opts);
  REQUIRE(db);
  bot::net::io_context ioc;
  bot::event_hub hub;
  bot::metrics stats;
  bot::early_receipts receipts;
  bot::outbox_worker worker(ioc, **db, cfg, hub, stats, receipts);

  const std::map<std::string, std::string> recipients{
      {"whatsapp", "966500000001"}, {"telegram", "123456789"}, {"sms", "+966500000001"}};
  int compared = 0;
  for (const auto& [channel, to] : recipients) {
    for (auto o : messages()) {
      CAPTURE(channel);
      CAPTURE(o.text);
      o.channel = *channels::kind_from_string(channel);
      o.to = to;
      bot::outbox_send s;
      s.row.channel = channel;
      s.row.recipient = to;
      s.row.payload = bot::to_json_text(o);
      auto from_payload = worker.render(s.row);
      // As conversation_ops::enqueue does: the message in memory only when it survives JSON.
      if (bot::survives_json(o)) s.out = o;
      auto from_memory = worker.render(s);
      CHECK(from_memory.method == from_payload.method);
      CHECK(from_memory.url == from_payload.url);
      CHECK(from_memory.headers == from_payload.headers);
      CHECK(from_memory.content_type == from_payload.content_type);
      CHECK(from_memory.body == from_payload.body);
      compared += from_payload.url.empty() ? 0 : 1;
    }
  }
  CHECK_FALSE(bot::survives_json(messages().back()));  // the invalid UTF-8 one: rendered from its payload
  // Most (channel, message) pairs render to a real request; the comparison is not vacuous.
  CHECK(compared >= 20);
}

TEST_CASE("survives_json accepts valid UTF-8 only") {
  auto with_text = [](std::string t) {
    outgoing o;
    o.text = std::move(t);
    return bot::survives_json(o);
  };
  CHECK(with_text(""));
  CHECK(with_text("plain ascii"));
  CHECK(with_text("عون ١٢٣ 🙂 \u00e9"));
  CHECK(with_text("\xf4\x8f\xbf\xbf"));          // U+10FFFF
  CHECK_FALSE(with_text("\xf4\x90\x80\x80"));    // past U+10FFFF
  CHECK_FALSE(with_text("\xc0\xaf"));              // overlong '/'
  CHECK_FALSE(with_text("\xe0\x80\xaf"));          // overlong
  CHECK_FALSE(with_text("\xed\xa0\x80"));          // a surrogate
  CHECK_FALSE(with_text("\xd8"));                  // cut short
  CHECK_FALSE(with_text("abc\xe2\x82"));           // cut short at the end
  CHECK_FALSE(with_text("\x80"));                  // a lone continuation byte
  outgoing o;
  o.text = "ok";
  o.choices = {{"id", "\xff", ""}};
  CHECK_FALSE(bot::survives_json(o));
  o.choices = {{"id", "نعم", ""}};
  o.template_params = {"\xfe"};
  CHECK_FALSE(bot::survives_json(o));
}
