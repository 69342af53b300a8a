#include "dialogs/engine.hpp"

#include <doctest/doctest.h>

using namespace aoun::dialogs;

namespace {
const engine& eng() {
  static const engine e = [] {
    settings s;
    s.danger_words = {"كلمة الخطر"};
    return engine::load(std::string(AOUN_SOURCE_DIR) + "/dialogs", std::string(AOUN_SOURCE_DIR) + "/locales", s);
  }();
  return e;
}
std::string intent(const char* t) { return eng().classify(t).intent; }
std::string topic(const char* t) { return eng().classify(t).topic; }
}  // namespace

TEST_CASE("menu numbers in any script and menu button ids") {
  CHECK(intent("1") == "help_request");
  CHECK(intent("٢") == "inquiry");
  CHECK(intent("۳") == "track_request");
  CHECK(intent("4") == "talk_to_staff");
  CHECK(intent("٥") == "volunteer");
  CHECK(intent("menu.track") == "track_request");
}

TEST_CASE("danger takes precedence") {
  CHECK(intent("السلام عليكم انا في خطر") == "danger");
  CHECK(intent("ابي اقدم طلب لأنه يهددني") == "danger");
  CHECK(intent("I want to kill myself") == "danger");
  CHECK(eng().is_danger("بقتل نفسي"));
  CHECK(eng().is_danger("كلمة الخطر"));  // configured in settings
  CHECK_FALSE(eng().is_danger("ابي اقدم طلب مساعدة"));
}

TEST_CASE("intents in MSA, Gulf dialect, Latin-script Arabic and English") {
  CHECK(intent("السلام عليكم") == "greeting");
  CHECK(intent("salaam") == "greeting");
  CHECK(intent("ابغى اقدم طلب مساعدة") == "help_request");
  CHECK(intent("abi mosa3da") == "help_request");
  CHECK(intent("I need help") == "help_request");
  CHECK(intent("وش صار بطلبي") == "track_request");
  CHECK(intent("AWN-2026-000123") == "track_request");
  CHECK(intent("ابي اكلم موظف") == "talk_to_staff");
  CHECK(intent("ابي اتطوع") == "volunteer");
  CHECK(intent("القائمة") == "menu");
  CHECK(intent("ألغي") == "cancel");
  CHECK(intent("احذف بياناتي") == "delete_data");
  CHECK(intent("English") == "switch_language");
  CHECK(intent("شكرا") == "thanks");
  CHECK(intent("وش رايك بالمباراة امس") == "unknown");
  CHECK(intent("") == "unknown");
}

TEST_CASE("small typos are tolerated") {
  CHECK(intent("ابي اكلم موضف") == "talk_to_staff");
  CHECK(intent("مساعدت") != "unknown");
}

TEST_CASE("inquiry topics") {
  CHECK(topic("وش الخدمات اللي تقدمونها") == "services");
  CHECK(topic("ايش الأوراق اللي لازم اجيبها") == "documents");
  CHECK(topic("متى تبدأ ساعات الدوام") == "hours");
  CHECK(topic("وش رقمكم") == "contact");
  CHECK(topic("وش شروط الاستحقاق") == "eligibility");
  CHECK(topic("which channels can I use to contact you") == "channels");
}
