// Pure rules of the staff side: roles, the case workflow, input checks, the Riyadh calendar and
// the satisfaction report's arithmetic and privacy rule.
#include <doctest/doctest.h>

#include "bot/staff_logic.hpp"

namespace sl = aoun::bot::staff_logic;
using nlohmann::json;

TEST_CASE("roles are ordered agent < supervisor < admin") {
  CHECK(sl::role_rank("agent") == sl::agent);
  CHECK(sl::role_rank("supervisor") == sl::supervisor);
  CHECK(sl::role_rank("admin") == sl::admin);
  CHECK(sl::role_rank("Admin") == -1);
  CHECK(sl::role_rank("") == -1);
}

TEST_CASE("case workflow: exactly the chain of SPEC §4") {
  using v = std::vector<std::string>;
  CHECK(sl::allowed_transitions("submitted") == v{"collecting_info"});
  CHECK(sl::allowed_transitions("collecting_info") == v{"evaluating"});
  CHECK(sl::allowed_transitions("evaluating") == v{"approved", "rejected"});
  CHECK(sl::allowed_transitions("approved") == v{"closed"});
  CHECK(sl::allowed_transitions("rejected") == v{"closed"});
  CHECK(sl::allowed_transitions("closed").empty());
  CHECK(sl::allowed_transitions("bogus").empty());
  // No skipping, no going back.
  for (const char* from : {"submitted", "collecting_info", "evaluating", "approved", "rejected", "closed"}) {
    auto next = sl::allowed_transitions(from);
    for (auto& n : next) CHECK(sl::is_step(n));
    CHECK(std::find(next.begin(), next.end(), std::string(from)) == next.end());
  }
  CHECK(sl::is_verification_method("document_check"));
  CHECK(sl::is_verification_method("interview"));
  CHECK(sl::is_verification_method("field_visit"));
  CHECK_FALSE(sl::is_verification_method("phone"));
}

TEST_CASE("ISO 8601 appointments") {
  for (const char* ok : {"2026-05-03", "2026-05-03T10:00", "2026-05-03T10:00:30", "2026-05-03T10:00:30.5Z",
                         "2026-05-03T10:00+03:00", "2026-05-03T10:00Z", "2024-02-29", "2026-05-03 09:15",
                         "2026-05-03T10:00:00+0300"})
    CHECK_MESSAGE(sl::valid_iso8601(ok), ok);
  for (const char* bad : {"", "2026-5-3", "2026-13-01", "2026-02-29", "2026-04-31", "2026-05-03T24:00",
                          "2026-05-03T10", "2026-05-03T10:60", "tomorrow", "2026-05-03T10:00+3", "2026-05-03X",
                          "2026-05-03T10:00:00Zjunk"})
    CHECK_MESSAGE(!sl::valid_iso8601(bad), bad);
  CHECK(sl::appointment_display("2026-05-03T10:00:00+03:00") == "2026-05-03 10:00");
  CHECK(sl::appointment_display("2026-05-03") == "2026-05-03");
  // Regression (browser test): the console sends UTC, and 10:30 in Riyadh reached the
  // beneficiary as "07:30". Times with an offset are shown in Riyadh time.
  CHECK(sl::appointment_display("2026-05-03T07:30:00.000Z") == "2026-05-03 10:30");
  CHECK(sl::appointment_display("2026-12-31T22:15Z") == "2027-01-01 01:15");
  CHECK(sl::appointment_display("2026-05-03T10:00") == "2026-05-03 10:00");
  CHECK(sl::appointment_display("2026-05-03T09:00:00+02:00") == "2026-05-03 10:00");
  // Every offset form the check takes is converted (a review found "+0000" shown as Riyadh time).
  for (const char* utc7 : {"2026-05-03T07:00:00+0000", "2026-05-03T07:00+00", "2026-05-03T07:00:00.5+00:00"}) {
    REQUIRE_MESSAGE(sl::valid_iso8601(utc7), utc7);
    CHECK_MESSAGE(sl::appointment_display(utc7) == "2026-05-03 10:00", utc7);
  }
  CHECK(sl::appointment_display("2026-05-03T10:00-05") == "2026-05-03 18:00");
  CHECK(sl::appointment_display("2026-05-03T10:00-0530") == "2026-05-03 18:30");
}

TEST_CASE("first name only, lengths and digits") {
  CHECK(sl::first_name("نورة العتيبي") == "نورة");
  CHECK(sl::first_name("  Khalid  Al-Shehri ") == "Khalid");
  CHECK(sl::first_name("admin") == "admin");
  CHECK(sl::first_name("   ").empty());
  CHECK(sl::utf8_length("سلام") == 4);
  CHECK(sl::utf8_length("abc") == 3);
  CHECK(sl::ascii_digits("١٠١٢٣٤٥٦٧٤") == "1012345674");
  CHECK(sl::ascii_digits("۱۲3") == "123");
  CHECK(sl::ascii_digits("AWN-2026") == "AWN-2026");
  CHECK(sl::valid_username("khalid.s"));
  CHECK_FALSE(sl::valid_username("Khalid"));
  CHECK_FALSE(sl::valid_username("ab"));
  CHECK_FALSE(sl::valid_username("a b c"));
}

TEST_CASE("Riyadh calendar days") {
  // 2026-01-01T00:00+03:00 == 2025-12-31T21:00Z
  auto start = sl::riyadh_day_start("2026-01-01");
  REQUIRE(start);
  CHECK(*start == 1767214800);
  CHECK(sl::riyadh_day(*start) == "2026-01-01");
  CHECK(sl::riyadh_day(*start - 1) == "2025-12-31");
  CHECK(sl::riyadh_day(*start + 86399) == "2026-01-01");
  CHECK(sl::riyadh_day(0) == "1970-01-01");
  CHECK_FALSE(sl::riyadh_day_start("2026-02-30"));
  CHECK_FALSE(sl::riyadh_day_start("2026-01-01T00:00"));
}

TEST_CASE("median") {
  CHECK_FALSE(sl::median({}));
  CHECK(*sl::median({5}) == 5.0);
  CHECK(*sl::median({9, 1, 5}) == 5.0);
  CHECK(*sl::median({4, 1, 3, 2}) == 2.5);
}

namespace {
aoun::storage::survey_sample sample(std::string channel, std::optional<std::string> service,
                                    std::optional<std::int64_t> staff, std::string name, std::int64_t at,
                                    std::optional<int> o, std::optional<int> sp, std::optional<int> co) {
  aoun::storage::survey_sample x;
  x.channel = std::move(channel);
  x.service_type = std::move(service);
  x.staff_id = staff;
  x.staff_name = std::move(name);
  x.started_at = at;
  x.overall = o;
  x.speed = sp;
  x.courtesy = co;
  return x;
}
}  // namespace

TEST_CASE("satisfaction report arithmetic") {
  const std::int64_t d1 = *sl::riyadh_day_start("2026-03-01") + 3600, d2 = d1 + 86400;
  std::vector<aoun::storage::survey_sample> v = {
      sample("whatsapp", "legal", 1, "Noura", d1, 5, 4, 5),
      sample("whatsapp", std::nullopt, 1, "Noura", d1, 4, 4, 4),
      sample("sms", "financial", 2, "Khalid", d2, 2, std::nullopt, std::nullopt),  // left after one answer
      sample("telegram", "legal", 1, "Noura", d2, std::nullopt, std::nullopt, std::nullopt),  // no answer
  };
  auto j = sl::satisfaction_report(v, true, 2);
  CHECK(j["invited"] == 4);
  CHECK(j["responses"] == 3);
  CHECK(j["response_rate"].get<double>() == doctest::Approx(0.75));
  CHECK(j["averages"]["overall"].get<double>() == doctest::Approx(3.67));
  CHECK(j["averages"]["speed"].get<double>() == doctest::Approx(4.0));
  CHECK(j["averages"]["courtesy"].get<double>() == doctest::Approx(4.5));
  CHECK(j["distribution"]["overall"] == json{{"1", 0}, {"2", 1}, {"3", 0}, {"4", 1}, {"5", 1}});
  CHECK(j["distribution"]["speed"]["4"] == 2);
  CHECK(j["by_channel"]["whatsapp"]["responses"] == 2);
  CHECK(j["by_channel"]["whatsapp"]["overall"].get<double>() == doctest::Approx(4.5));
  CHECK(j["by_channel"]["sms"]["speed"].is_null());
  CHECK_FALSE(j["by_channel"].contains("telegram"));
  CHECK(j["by_service_type"]["unspecified"]["responses"] == 1);
  CHECK(j["by_service_type"]["legal"]["responses"] == 1);
  REQUIRE(j["by_period"].size() == 2);
  CHECK(j["by_period"][0]["period"] == "2026-03-01");
  CHECK(j["by_period"][1]["period"] == "2026-03-02");
  // Per staff: only those with at least the minimum number of responses (Khalid has 1).
  REQUIRE(j["by_staff"].size() == 1);
  CHECK(j["by_staff"][0]["display_name"] == "Noura");
  CHECK(j["by_staff"][0]["responses"] == 2);
  // Nothing per beneficiary, and no per-staff figures for agents.
  CHECK_FALSE(j.dump().find("comment") != std::string::npos);
  auto agent_view = sl::satisfaction_report(v, false, 2);
  CHECK_FALSE(agent_view.contains("by_staff"));
  // Agents see no group of fewer answers than the minimum: a day or a channel with one answer
  // would be one beneficiary's ratings of a colleague they can name. Counts stay.
  CHECK(agent_view["by_channel"]["sms"]["responses"] == 1);
  CHECK(agent_view["by_channel"]["sms"]["overall"].is_null());
  CHECK(agent_view["by_service_type"]["legal"]["overall"].is_null());
  CHECK(agent_view["by_period"][1]["overall"].is_null());
  CHECK(agent_view["averages"]["overall"].get<double>() == doctest::Approx(3.67));
  // Nor can they subtract: the totals (3.67 over 3) less WhatsApp's (4.5 over 2) would be the
  // SMS answer, 2. With the hidden groups holding fewer answers than the minimum together, the
  // next smallest shown is hidden as well.
  CHECK(agent_view["by_channel"]["whatsapp"]["responses"] == 2);
  CHECK(agent_view["by_channel"]["whatsapp"]["overall"].is_null());
  CHECK(agent_view["by_channel"]["whatsapp"]["speed"].is_null());
  CHECK(agent_view["by_period"][0]["overall"].is_null());
  // Hidden groups that hold the minimum together need no company: three channels, two of one
  // answer each beside one of three.
  std::vector<aoun::storage::survey_sample> w = {
      sample("whatsapp", "legal", 1, "Noura", d1, 5, 5, 5), sample("whatsapp", "legal", 1, "Noura", d1, 4, 4, 4),
      sample("whatsapp", "legal", 1, "Noura", d1, 3, 3, 3), sample("sms", "legal", 1, "Noura", d1, 1, 1, 1),
      sample("telegram", "legal", 1, "Noura", d1, 2, 2, 2)};
  auto split = sl::satisfaction_report(w, false, 2);
  CHECK(split["by_channel"]["whatsapp"]["overall"].get<double>() == doctest::Approx(4.0));
  CHECK(split["by_channel"]["sms"]["overall"].is_null());
  CHECK(split["by_channel"]["telegram"]["overall"].is_null());
  CHECK(split["by_service_type"]["legal"]["overall"].get<double>() == doctest::Approx(3.0));
  CHECK(agent_view["min_group_responses"] == 2);
  CHECK(j["min_group_responses"] == 0);
  // A range with a single answer shows agents its count, not the answer.
  auto one = sl::satisfaction_report({v[2]}, false, 2);
  CHECK(one["responses"] == 1);
  CHECK(one["averages"]["overall"].is_null());
  CHECK(one["distribution"]["overall"]["2"] == 0);
  CHECK(sl::satisfaction_report({v[2]}, true, 2)["averages"]["overall"].get<double>() == doctest::Approx(2.0));
}

TEST_CASE("satisfaction report with no surveys") {
  auto j = sl::satisfaction_report({}, true, 5);
  CHECK(j["invited"] == 0);
  CHECK(j["responses"] == 0);
  CHECK(j["response_rate"] == 0.0);
  CHECK(j["averages"]["overall"].is_null());
  CHECK(j["by_staff"].empty());
  CHECK(j["distribution"]["courtesy"]["5"] == 0);
}
