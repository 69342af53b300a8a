#include "dialogs/engine.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

using namespace aoun::dialogs;
namespace fs = std::filesystem;

namespace {

const std::string src = AOUN_SOURCE_DIR;

// A copy of the real dialogs/ and locales/ in a fresh temporary folder, to break one file.
struct sandbox {
  fs::path root;
  sandbox() {
    std::random_device rd;
    root = fs::temp_directory_path() / ("aoun_dialogs_" + std::to_string(rd()));
    fs::create_directories(root / "dialogs");
    fs::copy(src + "/dialogs/flows", root / "dialogs" / "flows", fs::copy_options::recursive);
    fs::copy(src + "/locales", root / "locales", fs::copy_options::recursive);
  }
  ~sandbox() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }
  std::string read(const std::string& rel) {
    std::ifstream f(root / rel);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  void write(const std::string& rel, const std::string& text) { std::ofstream(root / rel) << text; }
  void replace(const std::string& rel, const std::string& from, const std::string& to) {
    std::string t = read(rel);
    auto pos = t.find(from);
    REQUIRE(pos != std::string::npos);
    t.replace(pos, from.size(), to);
    write(rel, t);
  }
  engine load() { return engine::load((root / "dialogs").string(), (root / "locales").string(), settings{}); }
};

}  // namespace

TEST_CASE("the real dialogs and locales load") {
  CHECK_NOTHROW(engine::load(src + "/dialogs", src + "/locales", settings{}));
}

TEST_CASE("load errors name the file and the key") {
  sandbox box;
  SUBCASE("unknown step") {
    box.replace("dialogs/flows/intake.json", R"("next": "national_id")", R"("next": "nationl_id")");
    CHECK_THROWS_WITH_AS(box.load(), "intake.json: unknown step 'nationl_id'", std::runtime_error);
  }
  SUBCASE("unknown step in another flow") {
    box.replace("dialogs/flows/track.json", R"("next": "menu/idle")", R"("next": "menu/nowhere")");
    CHECK_THROWS_WITH_AS(box.load(), "track.json: unknown step 'menu/nowhere'", std::runtime_error);
  }
  SUBCASE("unknown text key") {
    box.replace("dialogs/flows/volunteer.json", R"("prompt": "volunteer.city")",
                R"("prompt": "volunteer.town")");
    CHECK_THROWS_WITH_AS(box.load(), "volunteer.json: unknown text key 'volunteer.town'", std::runtime_error);
  }
  SUBCASE("unknown validator") {
    box.replace("dialogs/flows/intake.json", R"("validator": "city")", R"("validator": "iban")");
    CHECK_THROWS_WITH_AS(box.load(), "intake.json: unknown validator 'iban'", std::runtime_error);
  }
  SUBCASE("unknown action") {
    box.replace("dialogs/flows/volunteer.json", R"("action": "register_volunteer")",
                R"("action": "register_volunter")");
    CHECK_THROWS_WITH_AS(box.load(), "volunteer.json: unknown action 'register_volunter'", std::runtime_error);
  }
  SUBCASE("a text missing from one locale") {
    box.replace("locales/en.json", R"("city": "Which city do you live in?",)", "");
    CHECK_THROWS_WITH_AS(box.load(), "en.json: missing text key 'intake.city'", std::runtime_error);
  }
  SUBCASE("invalid JSON") {
    box.write("dialogs/flows/survey.json", "{ not json");
    CHECK_THROWS_WITH_AS(box.load(), "survey.json: invalid JSON in 'survey.json'", std::runtime_error);
  }
  SUBCASE("validator error texts must exist") {
    box.replace("locales/ar.json", R"("bad_checksum": "يبدو)", R"("bad_checksumx": "يبدو)");
    CHECK_THROWS_WITH_AS(box.load(), "en.json: missing text key 'invalid.national_id.bad_checksumx'",
                         std::runtime_error);
  }
}

TEST_CASE("state serialization round-trips and tolerates garbage") {
  state s;
  s.lang = "en";
  s.consented = true;
  s.flow = "intake";
  s.step = "city";
  s.slots["full_name"] = "نورة";
  s.misunderstandings = 2;
  s.last_activity = 1800000000;
  state t = state::parse(s.serialize());
  CHECK(t.lang == "en");
  CHECK(t.consented);
  CHECK(t.flow == "intake");
  CHECK(t.step == "city");
  CHECK(t.slots["full_name"] == "نورة");
  CHECK(t.misunderstandings == 2);
  CHECK(t.last_activity == 1800000000);
  CHECK(state::parse("").flow.empty());
  CHECK(state::parse("{oops").lang == "ar");
  CHECK(state::parse(R"({"lang":"fr","flow":7})").lang == "ar");
}

TEST_CASE("the stored state keeps its format, and rows in any other JSON shape still read") {
  // bot/ keeps serialize() in conversations.dialog_state: this exact text is what rows hold.
  state s;
  s.lang = "en";
  s.consented = true;
  s.flow = "intake";
  s.step = "city";
  s.slots["full_name"] = "نورة";
  s.slots["n"] = 3;
  s.misunderstandings = 2;
  s.last_activity = 1800000000;
  const std::string stored =
      R"({"consented":true,"flow":"intake","lang":"en","last_activity":1800000000,"misunderstandings":2,)"
      R"("slots":{"full_name":"نورة","n":3},"step":"city"})";
  CHECK(s.serialize() == stored);
  CHECK(state{}.serialize() ==
        R"({"consented":false,"flow":"","lang":"ar","last_activity":0,"misunderstandings":0,"slots":{},"step":""})");
  // Strings that need escapes are written as nlohmann::json writes them.
  state q;
  q.flow = "a\"b\\c\n";
  CHECK(q.serialize().find(R"("flow":"a\"b\\c\n")") != std::string::npos);
  CHECK(state::parse(q.serialize()).flow == q.flow);

  auto same = [](const state& a, const state& b) {
    return a.lang == b.lang && a.consented == b.consented && a.flow == b.flow && a.step == b.step &&
           a.slots == b.slots && a.misunderstandings == b.misunderstandings && a.last_activity == b.last_activity;
  };
  CHECK(same(state::parse(stored), s));
  // Other key orders, spaces, escapes and duplicate keys read as JSON always did.
  CHECK(same(state::parse(R"( { "step" : "city", "flow":"int\u0061ke", "lang":"en", "consented":true,
      "slots":{"n":3,"full_name":"نورة"}, "misunderstandings":2, "last_activity":1800000000 } )"), s));
  CHECK(state::parse(R"({"consented":true,"flow":"menu","lang":"en","last_activity":1,"misunderstandings":0,)"
                     R"("slots":{},"step":"x","step":"main"})")
            .step == "main");
  CHECK(state::parse(R"({"consented":true,"flow":"menu","lang":"en","last_activity":1,"misunderstandings":0,)"
                     R"("slots":{"a":"x,\"step\":\"z\"}"},"step":"main"})")
            .slots["a"] == "x,\"step\":\"z\"}");
  CHECK(state::parse(R"({"consented":true,"flow":"menu","lang":"en","last_activity":-0,"misunderstandings":500,)"
                     R"("slots":{},"step":"main"})")
            .misunderstandings == 100);
  CHECK(state::parse(R"({"consented":true,"flow":"menu","lang":"fr","last_activity":1.5,"misunderstandings":1,)"
                     R"("slots":[],"step":"main"})")
            .lang == "ar");
  // Not JSON (a trailing brace, a bad number, a lone surrogate): a fresh state.
  for (const char* bad :
       {R"({"consented":true,"flow":"menu","lang":"en","last_activity":1,"misunderstandings":0,"slots":{},"step":"main"}})",
        R"({"consented":true,"flow":"menu","lang":"en","last_activity":007,"misunderstandings":0,"slots":{},"step":"main"})",
        R"({"consented":true,"flow":"menu","lang":"en","last_activity":1,"misunderstandings":0,"slots":{"a":"\ud800"},"step":"main"})"})
    CHECK(state::parse(bad).flow.empty());
}

TEST_CASE("text() fills settings and drops lines of empty optional settings") {
  settings cfg;
  cfg.phone = "920000000";
  engine e = engine::load(src + "/dialogs", src + "/locales", cfg);
  std::string contact = e.text("ar", "faq.contact");
  CHECK(contact.find("920000000") != std::string::npos);
  CHECK(contact.find("بريد") == std::string::npos);  // no email configured: line dropped
  CHECK(e.text("en", "staff_joined", {{"name", "Sara"}}) == "Sara from the association's team has joined you.");
  CHECK(e.text("en", "no.such.key") == "no.such.key");
  CHECK(e.text("fr", "cancelled") == e.text("ar", "cancelled"));
  CHECK(e.text("ar", "after_hours").find(cfg.working_hours) != std::string::npos);
}
