#include "dialogs/validate.hpp"

#include <doctest/doctest.h>

using namespace aoun::dialogs;

// Generated with the checksum (digits at even positions doubled and digit-summed).
static const char* valid_ids[] = {"1757491186", "1013962459", "1820018263",
                                  "2486205798", "2682828807", "2136134125"};

TEST_CASE("national ID: valid citizen and iqama numbers") {
  for (const char* id : valid_ids) {
    CAPTURE(id);
    auto v = validate_national_id(id);
    CHECK(v.ok());
    CHECK(v.value == id);
  }
}

TEST_CASE("national ID: Arabic-Indic digits, spaces and dashes") {
  auto v = validate_national_id("١٧٥٧ ٤٩١-١٨٦");
  CHECK(v.ok());
  CHECK(v.value == "1757491186");
  CHECK(validate_national_id("۱۷۵۷۴۹۱۱۸۶").value == "1757491186");
}

TEST_CASE("national ID: each error has its own code") {
  CHECK(validate_national_id("").error == "empty");
  CHECK(validate_national_id("abc").error == "not_digits");
  CHECK(validate_national_id("12345").error == "wrong_length");
  CHECK(validate_national_id("17574911860").error == "wrong_length");
  CHECK(validate_national_id("3757491186").error == "wrong_first_digit");
  CHECK(validate_national_id("1757491187").error == "bad_checksum");
  CHECK(validate_national_id("1234567890").error == "bad_checksum");
  CHECK(national_id_checksum_ok("1013962459"));
  CHECK_FALSE(national_id_checksum_ok("101396245"));
}

TEST_CASE("mobile: every usual Saudi form becomes E.164") {
  for (const char* m : {"0501234567", "501234567", "966501234567", "+966501234567", "00966501234567",
                        "050 123 4567", "050-123-4567", "+966 50 123 4567", "٠٥٠١٢٣٤٥٦٧", "(050) 1234567"}) {
    CAPTURE(m);
    auto v = validate_mobile(m);
    CHECK(v.ok());
    CHECK(v.value == "+966501234567");
  }
}

TEST_CASE("mobile: invalid numbers") {
  CHECK(validate_mobile("").error == "empty");
  CHECK(validate_mobile("جوالي").error == "not_digits");
  CHECK(validate_mobile("0112345678").error == "not_mobile");  // landline
  CHECK(validate_mobile("05012345").error == "not_mobile");
  CHECK(validate_mobile("+971501234567").error == "not_mobile");
}

TEST_CASE("names") {
  CHECK(validate_name("محمد عبدالله القحطاني").ok());
  CHECK(validate_name("  نورة   السبيعي ").value == "نورة السبيعي");
  CHECK(validate_name("Sarah Al-Otaibi").ok());
  CHECK(validate_name("أحمد").ok());
  CHECK(validate_name("م").error == "too_short");
  CHECK(validate_name("محمد 123").error == "not_letters");
  CHECK(validate_name("a b c d e f g").error == "too_long");
  CHECK(validate_name(std::string(70, 'a')).error == "too_long");
}

TEST_CASE("bounded text, city, reference") {
  CHECK(validate_text("  سرقة   جوال ", 3, 500).value == "سرقة جوال");
  CHECK(validate_text("ab", 3, 500).error == "too_short");
  CHECK(validate_text(std::string(501, 'x'), 3, 500).error == "too_long");
  CHECK(validate_city("الرياض").ok());
  CHECK(validate_city("12345").error == "not_letters");
  CHECK(validate_reference("awn-2026-000123").value == "AWN-2026-000123");
  CHECK(validate_reference("AWN-٢٠٢٦-٠٠٠١٢٣").value == "AWN-2026-000123");
  CHECK(validate_reference("طلبي").error == "bad_format");
}

TEST_CASE("dates: ISO and dd/mm/yyyy") {
  CHECK(validate_date("2026-03-01").value == "2026-03-01");
  CHECK(validate_date("2026-03-01T10:00").value == "2026-03-01");
  CHECK(validate_date("01/03/2026").value == "2026-03-01");
  CHECK(validate_date("٠١/٠٣/٢٠٢٦").value == "2026-03-01");
  CHECK(validate_date("29/02/2027").error == "bad_date");
  CHECK(validate_date("29/02/2028").ok());
  CHECK(validate_date("31/04/2026").error == "bad_date");
  CHECK(validate_date("tomorrow").error == "bad_format");
}

TEST_CASE("a name: tatweel and diacritics are no letters; direction marks are allowed") {
  CHECK(validate_name("ــ").error == "too_short");
  CHECK(validate_name("ًٌ").error == "too_short");
  CHECK(validate_name("\u200fهدى محمد\u200f").ok());
  CHECK(validate_name("\u2067هدى العتيبي\u2069").ok());
  CHECK(validate_name("هُدى").ok());
}

TEST_CASE("scores and choice numbers") {
  CHECK(validate_score("٥").value == "5");
  CHECK(validate_score("4").value == "4");
  CHECK(validate_score("ممتاز").value == "5");
  CHECK(validate_score("ممتااااز").value == "5");
  CHECK(validate_score("سيء جدا").value == "1");
  CHECK(validate_score("excellent").value == "5");
  CHECK(validate_score("7").error == "out_of_range");
  // With other words: a single digit decides; a rating word counts whole, and not negated.
  CHECK(validate_score("٣ جيد").value == "3");
  CHECK(validate_score("5 good").value == "5");
  CHECK(validate_score("كانت الخدمة ممتازة").value == "5");
  CHECK(validate_score("كانت سيئة").value == "1");
  CHECK(validate_score("سيئ جدا").value == "1");
  CHECK(validate_score("كانوا ممتازين").value == "5");
  CHECK(validate_score("3 او 4").error == "out_of_range");
  CHECK(validate_score("حسيت بالراحة").error == "out_of_range");  // holds "سي", is no rating
  CHECK(validate_score("مو سيء").error == "out_of_range");
  CHECK(validate_score("not bad").error == "out_of_range");
  CHECK(validate_score("not good").error == "out_of_range");
  CHECK(parse_choice_number(" ٣ ", 5) == 3);
  CHECK(parse_choice_number("2.", 5) == 2);
  CHECK_FALSE(parse_choice_number("6", 5).has_value());
  CHECK_FALSE(parse_choice_number("0", 5).has_value());
  CHECK_FALSE(parse_choice_number("x", 5).has_value());
}

TEST_CASE("run_validator knows its names") {
  CHECK(run_validator("mobile", "0501234567").value == "+966501234567");
  CHECK(run_validator("iban", "x").error == "unknown_validator");
  CHECK(validator_errors("national_id").size() == 5);
}
