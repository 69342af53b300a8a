#pragma once

// Validators for what beneficiaries type. Errors are values: each function returns either the
// cleaned value or an error code (a short ASCII word the flows map to a locale text
// "invalid.<validator>.<code>"). Pure and thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aoun::dialogs {

/// Either a cleaned value or an error code; `ok()` when `error` is empty.
struct validation {
  std::string value;
  std::string error;
  bool ok() const { return error.empty(); }
  static validation good(std::string v) { return {std::move(v), {}}; }
  static validation bad(std::string e) { return {{}, std::move(e)}; }
};

/// Words that negate what follows ("ما أوافق", "مو سيء", "not bad"), as normalize() writes
/// them: a choice's phrase or a rating word they come with is not taken.
const std::vector<std::string>& negation_words();

/// Saudi national ID (first digit 1) or iqama (first digit 2): 10 digits in any script,
/// spaces/dashes allowed, Luhn checksum (digits at even 0-based positions doubled and
/// digit-summed; the total is a multiple of 10). Value: the 10 ASCII digits.
/// Errors: "empty", "not_digits", "wrong_length", "wrong_first_digit", "bad_checksum".
validation validate_national_id(std::string_view text);
/// True if the 10 ASCII digits pass the Saudi ID checksum (no other checks).
bool national_id_checksum_ok(std::string_view ten_digits);

/// Saudi mobile: 05xxxxxxxx, 5xxxxxxxx, 9665xxxxxxxx, +9665xxxxxxxx, 009665xxxxxxxx, with
/// spaces, dashes, dots, brackets and any digit script. Value: "+9665xxxxxxxx".
/// Errors: "empty", "not_digits", "not_mobile".
validation validate_mobile(std::string_view text);

/// A person's name: 2–6 words (one word of ≥ 2 letters is accepted too: people give what
/// they are comfortable with), letters (Arabic or Latin), spaces, hyphen, apostrophe and dot;
/// 2–60 characters. Value: the trimmed, space-collapsed text.
/// Errors: "empty", "too_short", "too_long", "not_letters".
validation validate_name(std::string_view text);

/// Free text bounded to [min_chars, max_chars] code points, trimmed and space-collapsed.
/// Errors: "empty", "too_short", "too_long".
validation validate_text(std::string_view text, std::size_t min_chars, std::size_t max_chars);

/// City: 2–40 characters, at least two letters, no more than 4 digits.
/// Errors: "empty", "too_short", "too_long", "not_letters".
validation validate_city(std::string_view text);

/// Case reference as made by bot/: letters, digits and dashes, 4–32 characters, uppercased;
/// Arabic digits accepted. Errors: "empty", "bad_format".
validation validate_reference(std::string_view text);

/// Appointment date: "YYYY-MM-DD" (ISO 8601, optional "THH:MM[:SS]" ignored) or "dd/mm/yyyy"
/// ("-" or "." also accepted as separators), any digit script. Value: "YYYY-MM-DD".
/// Errors: "empty", "bad_format", "bad_date".
validation validate_date(std::string_view text);

/// A 1–5 score from digits in any script or words ("ممتاز", "excellent", "سيء" ...).
/// Errors: "empty", "out_of_range".
validation validate_score(std::string_view text);

/// `text` as a 1-based number in [1, count] (any digit script, surrounding spaces or a final
/// "." / ")" allowed); nullopt otherwise.
std::optional<int> parse_choice_number(std::string_view text, int count);

/// Every validator name known to the engine, for load-time cross-checks, and the error
/// codes each can return.
const std::vector<std::string>& validator_names();
const std::vector<std::string>& validator_errors(std::string_view name);

/// Runs the validator called `name` ("name", "national_id", "mobile", "city", "description",
/// "text", "reference", "date", "score"). An unknown name gives error "unknown_validator".
validation run_validator(std::string_view name, std::string_view text);

}  // namespace aoun::dialogs
