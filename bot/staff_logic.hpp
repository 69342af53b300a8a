#pragma once
// Pure rules of the staff side, kept apart from I/O so they are unit-tested
// (tests/unit/bot/staff_logic_test.cpp): roles, the case workflow (SPEC §4), input checks, the
// Asia/Riyadh calendar of the reports, and the satisfaction report's arithmetic and privacy
// rule. Thread-safe (no state).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "storage/reports.hpp"

namespace aoun::bot::staff_logic {

/// agent 0 < supervisor 1 < admin 2; -1 for anything else.
int role_rank(std::string_view role);
constexpr int agent = 0, supervisor = 1, admin = 2;

/// The steps a case at `step` may move to (empty for closed or an unknown step):
/// submitted → collecting_info → evaluating → approved | rejected → closed.
std::vector<std::string> allowed_transitions(std::string_view step);
bool is_step(std::string_view s);
bool is_verification_method(std::string_view s);

/// ISO 8601 date or date-time: YYYY-MM-DD, optionally followed by THH:MM[:SS] and Z or ±HH:MM
/// (a space is accepted for the T). Checks ranges (month 1–12, day of that month, 24-hour time).
bool valid_iso8601(std::string_view s);
/// How an appointment is shown to the beneficiary: "YYYY-MM-DD" or "YYYY-MM-DD HH:MM".
std::string appointment_display(std::string_view iso);

/// The first word of a display name (SPEC §4: the beneficiary sees the first name only).
std::string first_name(std::string_view display_name);
/// Number of Unicode code points in UTF-8 text (invalid bytes count one each).
std::size_t utf8_length(std::string_view s);
/// Arabic-Indic (٠-٩) and Eastern Arabic-Indic (۰-۹) digits as ASCII; other text unchanged.
std::string ascii_digits(std::string_view s);

/// Staff usernames: 3–64 of a-z, 0-9, '.', '_', '-'.
bool valid_username(std::string_view s);

/// Asia/Riyadh (UTC+3, no DST) calendar day of a unix time, "YYYY-MM-DD".
std::string riyadh_day(std::int64_t unix_seconds);
/// The unix time at which Riyadh day "YYYY-MM-DD" starts; nullopt if not a valid date.
std::optional<std::int64_t> riyadh_day_start(std::string_view day);

/// The median of `values` (mean of the two middle ones for an even count); nullopt when empty.
std::optional<double> median(std::vector<std::int64_t> values);

/// The satisfaction report (docs/api.yaml SatisfactionReport). An invitation is a survey row; a
/// response is a survey whose first question (overall) was answered. Averages use every answer
/// given to that question. `by_staff` is present only when `include_staff` (supervisors and
/// admins) and lists only staff with at least `min_staff_responses` responses, by name, so that
/// no individual beneficiary's rating can be singled out. Never contains comments or identities.
nlohmann::json satisfaction_report(const std::vector<storage::survey_sample>& samples, bool include_staff,
                                   int min_staff_responses);

}  // namespace aoun::bot::staff_logic
