// Request bodies written without a DOM (channels/detail/json_write, whatsapp::render): the bytes
// must be those nlohmann's dump() wrote, whatever callers put in the texts.
#include <cstdint>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "channels/detail/json_write.hpp"
#include "channels/whatsapp.hpp"

using namespace aoun::channels;
using nlohmann::json;

namespace {

std::string written(std::string_view s) {
  std::string out;
  detail::append_json_string(out, s);
  return out;
}

std::string nlohmann_written(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

const whatsapp::config cfg{"vt", "test_app_secret", "TOKEN", "106540352242922", "https://graph.facebook.com/v21.0"};

}  // namespace

TEST_CASE("json_write: escapes quotes, backslashes and control characters as nlohmann does") {
  CHECK(written("") == R"("")");
  CHECK(written(R"(say "hi")") == R"("say \"hi\"")");
  CHECK(written(R"(C:\dir\)") == R"("C:\\dir\\")");
  CHECK(written("a\nb\tc\rd\be\ff") == R"("a\nb\tc\rd\be\ff")");
  CHECK(written(std::string("\0\x01\x1f", 3)) == R"("\u0000\u0001\u001f")");
  CHECK(written("\x7f/") == "\"\x7f/\"");  // DEL and '/' are not escaped
  for (int c = 0; c < 0x80; ++c) {
    CAPTURE(c);
    const std::string s(1, static_cast<char>(c));
    CHECK(written(s) == nlohmann_written(s));
  }
}

TEST_CASE("json_write: Arabic and emoji are copied as UTF-8") {
  const std::string ar = "مرحباً، كيف يمكننا مساعدتك؟";
  CHECK(written(ar) == "\"" + ar + "\"");
  const std::string emoji = "👍🏽 😀 ﷽";
  CHECK(written(emoji) == "\"" + emoji + "\"");
  const std::string mixed = "سطر \"أول\"\nسطر\t\\ثانٍ 😀\x01";
  CHECK(written(mixed) == nlohmann_written(mixed));
  CHECK(json::parse(written(mixed)).get<std::string>() == mixed);
}

TEST_CASE("json_write: invalid UTF-8 is replaced exactly as nlohmann replaces it") {
  const std::vector<std::string> bad = {"abc\xff", "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                        "ع\xe2\x82", "\xe2\x82 x", "\x80\x80\"q\"", "😀\xf0\x9f\x98"};
  for (const auto& s : bad) {
    CAPTURE(s);
    CHECK(written(s) == nlohmann_written(s));
    CHECK(json::accept(written(s)));
  }
}

TEST_CASE("json_write: random byte strings are written exactly as nlohmann writes them") {
  // Strings drawn from pieces that exercise every branch: ASCII, escapes, control bytes,
  // valid 2/3/4-byte sequences, and lead or continuation bytes cut short or out of range.
  const std::vector<std::string> pieces = {"a",        " ",        "\"",       "\\",       "\n",       std::string(1, '\0'),
                                           "\x1f",     "\x7f",     "ع",        "ب",        "€",        "\xef\xbf\xbf",
                                           "😀",       "\xf4\x8f\xbf\xbf", "\xc2",   "\xdf\x41", "\xe0\x9f\x80", "\xed\xa0\x80",
                                           "\xf0\x8f\x80\x80", "\xf5", "\x80",    "\xbf",     "\xe2\x82",  "\xc1\xbf"};
  std::uint32_t seed = 12345;
  auto next = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7fff;
  };
  int invalid = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string s;
    const int n = static_cast<int>(next() % 12);
    for (int k = 0; k < n; ++k) s += pieces[next() % pieces.size()];
    CAPTURE(s);
    const std::string expected = nlohmann_written(s);
    REQUIRE(written(s) == expected);
    // Appending keeps what was there before, also when the text falls back to nlohmann.
    std::string out = "prefix:";
    detail::append_json_string(out, s);
    REQUIRE(out == "prefix:" + expected);
    const bool replaced = json::parse(expected).get<std::string>() != s;
    REQUIRE(detail::valid_utf8(s) == !replaced);  // valid exactly when copied unchanged
    invalid += replaced ? 1 : 0;
  }
  CHECK(invalid > 100);  // the invalid pieces were drawn often enough to matter
}

TEST_CASE("whatsapp: render escapes what callers put in texts, ids and titles") {
  const std::string nasty = "قال: \"مرحبا\" \\ سطر\nجديد\t😀 \x01 </script>";
  outgoing m;
  m.to = "966500000000";
  m.text = nasty;
  m.reply_to = "wamid.\"x\"";
  auto body = json::parse(whatsapp::render(m, cfg).body);
  CHECK(body["text"]["body"] == nasty);
  CHECK(body["context"]["message_id"] == "wamid.\"x\"");

  m.choices = {{"a\"b", "ع\\1", ""}, {"c\nd", "\"2\"", ""}, {"e", "😀\t", ""}};
  const std::string buttons = whatsapp::render(m, cfg).body;
  body = json::parse(buttons);
  CHECK(body["interactive"]["body"]["text"] == nasty);
  CHECK(body["interactive"]["action"]["buttons"][0]["reply"]["id"] == "a\"b");
  CHECK(body["interactive"]["action"]["buttons"][0]["reply"]["title"] == "ع\\1");
  CHECK(body["interactive"]["action"]["buttons"][1]["reply"]["id"] == "c\nd");
  CHECK(body["interactive"]["action"]["buttons"][2]["reply"]["title"] == "😀\t");
  // The bytes are those nlohmann's dump() wrote: sorted keys, no spaces.
  CHECK(buttons == body.dump());

  m.choices.push_back({"f", "\x1f", "وصف \"x\""});
  const std::string list = whatsapp::render(m, cfg).body;
  body = json::parse(list);
  CHECK(body["interactive"]["action"]["sections"][0]["rows"][3]["description"] == "وصف \"x\"");
  CHECK(body["interactive"]["action"]["sections"][0]["rows"][3]["title"] == "\x1f");
  CHECK(list == body.dump());

  outgoing t;
  t.to = "1";
  t.template_name = "survey\"1";
  t.template_params = {"أحمد \"الأول\"", "a\\b\n"};
  const std::string tpl = whatsapp::render(t, cfg).body;
  body = json::parse(tpl);
  CHECK(body["template"]["components"][0]["parameters"][0]["text"] == "أحمد \"الأول\"");
  CHECK(body["template"]["components"][0]["parameters"][1]["text"] == "a\\b\n");
  CHECK(tpl == body.dump());

  outgoing r;
  r.mark_read_id = "wamid.\\";
  CHECK(whatsapp::render(r, cfg).body == R"({"message_id":"wamid.\\","messaging_product":"whatsapp","status":"read"})");
}
