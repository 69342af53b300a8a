#include "dialogs/validate.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "dialogs/normalize.hpp"

namespace aoun::dialogs {

namespace {

std::string trim_collapse(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

// Digits only, after removing separators people type in numbers. Returns nullopt if anything
// else is left.
std::optional<std::string> digits_only(std::string_view text, bool allow_plus) {
  std::string t = to_ascii_digits(text);
  std::string out;
  for (std::size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c >= '0' && c <= '9') {
      out.push_back(c);
    } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '\t') {
      continue;
    } else if (c == '+' && allow_plus && out.empty()) {
      out.push_back('+');
    } else if (static_cast<unsigned char>(c) == 0xE2 && i + 2 < t.size() &&
               static_cast<unsigned char>(t[i + 1]) == 0x80) {
      // U+200x: bidi marks and zero-width characters copied with phone numbers
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace

bool national_id_checksum_ok(std::string_view d) {
  if (d.size() != 10) return false;
  int sum = 0;
  for (std::size_t i = 0; i < 10; ++i) {
    if (d[i] < '0' || d[i] > '9') return false;
    int v = d[i] - '0';
    if (i % 2 == 0) {
      v *= 2;
      v = v / 10 + v % 10;
    }
    sum += v;
  }
  return sum % 10 == 0;
}

validation validate_national_id(std::string_view text) {
  std::string t = trim_collapse(text);
  if (t.empty()) return validation::bad("empty");
  auto d = digits_only(t, false);
  if (!d || d->empty()) return validation::bad("not_digits");
  if (d->size() != 10) return validation::bad("wrong_length");
  if ((*d)[0] != '1' && (*d)[0] != '2') return validation::bad("wrong_first_digit");
  if (!national_id_checksum_ok(*d)) return validation::bad("bad_checksum");
  return validation::good(*d);
}

validation validate_mobile(std::string_view text) {
  std::string t = trim_collapse(text);
  if (t.empty()) return validation::bad("empty");
  auto d = digits_only(t, true);
  if (!d || d->empty() || *d == "+") return validation::bad("not_digits");
  std::string n = *d;
  if (n.rfind("+", 0) == 0) n = n.substr(1);
  else if (n.rfind("00", 0) == 0) n = n.substr(2);
  std::string local;
  if (n.size() == 12 && n.rfind("9665", 0) == 0) local = n.substr(3);
  else if (n.size() == 10 && n.rfind("05", 0) == 0) local = n.substr(1);
  else if (n.size() == 9 && n[0] == '5') local = n;
  else return validation::bad("not_mobile");
  return validation::good("+966" + local);
}

validation validate_name(std::string_view text) {
  std::string t = trim_collapse(text);
  if (t.empty()) return validation::bad("empty");
  std::u32string cps = utf8_decode(t);
  if (cps.size() > 60) return validation::bad("too_long");
  std::size_t letters = 0, words = 1;
  for (char32_t c : cps) {
    bool latin = (c >= U'a' && c <= U'z') || (c >= U'A' && c <= U'Z');
    bool arabic = ((c >= U'\u0621' && c <= U'\u064A') || (c >= U'\u0671' && c <= U'\u06D3')) && c != U'\u0640';
    // Diacritics and tatweel are kept but are no letters ("ــ" is no name); direction marks,
    // which phones add around a name, are neither.
    bool mark = (c >= U'\u064B' && c <= U'\u0652') || c == U'\u0640' || c == U'\u200E' || c == U'\u200F' ||
                (c >= U'\u202A' && c <= U'\u202E') || (c >= U'\u2066' && c <= U'\u2069') || c == U'\u061C';
    if (latin || arabic) {
      ++letters;
    } else if (mark) {
      continue;
    } else if (c == U' ') {
      ++words;
    } else if (c == U'-' || c == U'\'' || c == U'.') {
      continue;
    } else {
      return validation::bad("not_letters");
    }
  }
  if (letters < 2) return validation::bad("too_short");
  if (words > 6) return validation::bad("too_long");
  return validation::good(t);
}

validation validate_text(std::string_view text, std::size_t min_chars, std::size_t max_chars) {
  std::string t = trim_collapse(text);
  if (t.empty()) return validation::bad("empty");
  std::size_t n = utf8_length(t);
  if (n < min_chars) return validation::bad("too_short");
  if (n > max_chars) return validation::bad("too_long");
  return validation::good(t);
}

validation validate_city(std::string_view text) {
  auto v = validate_text(text, 2, 40);
  if (!v.ok()) return v;
  std::size_t letters = 0, digits = 0;
  for (char32_t c : utf8_decode(normalize(v.value))) {
    if (c >= U'0' && c <= U'9') ++digits;
    else if (c != U' ') ++letters;
  }
  if (letters < 2 || digits > 4) return validation::bad("not_letters");
  return v;
}

validation validate_reference(std::string_view text) {
  std::string t = to_ascii_digits(trim_collapse(text));
  if (t.empty()) return validation::bad("empty");
  std::string out;
  for (char c : t) {
    if (c >= 'a' && c <= 'z') out.push_back(static_cast<char>(c - 'a' + 'A'));
    else if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) out.push_back(c);
    else if (c == '-') {
      if (!out.empty() && out.back() != '-') out.push_back(c);
    }
    else if (c == ' ') {
      if (!out.empty() && out.back() != '-') out.push_back('-');  // "AWN 2026 000123"
    } else if (c == '#') continue;
    else return validation::bad("bad_format");
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.size() < 4 || out.size() > 32) return validation::bad("bad_format");
  if (std::none_of(out.begin(), out.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return validation::bad("bad_format");
  return validation::good(out);
}

validation validate_date(std::string_view text) {
  std::string t = to_ascii_digits(trim_collapse(text));
  if (t.empty()) return validation::bad("empty");
  auto num = [&](std::size_t pos, std::size_t len, int& out) {
    if (pos + len > t.size()) return false;
    out = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (t[i] < '0' || t[i] > '9') return false;
      out = out * 10 + (t[i] - '0');
    }
    return true;
  };
  int y = 0, m = 0, d = 0;
  bool parsed = false;
  if (t.size() >= 10 && t[4] == '-' && t[7] == '-' && (t.size() == 10 || t[10] == 'T' || t[10] == ' ')) {
    parsed = num(0, 4, y) && num(5, 2, m) && num(8, 2, d);
  } else if (t.size() == 10 && (t[2] == '/' || t[2] == '-' || t[2] == '.') && t[5] == t[2]) {
    parsed = num(0, 2, d) && num(3, 2, m) && num(6, 4, y);
  }
  if (!parsed) return validation::bad("bad_format");
  static constexpr int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (y < 1900 || y > 2200 || m < 1 || m > 12 || d < 1 || d > days[m - 1] ||
      (m == 2 && d == 29 && !leap))
    return validation::bad("bad_date");
  char buf[11];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return validation::good(buf);
}

const std::vector<std::string>& negation_words() {
  static const std::vector<std::string> words = [] {
    std::vector<std::string> v;
    for (const char* n : {"ما", "مو", "مب", "مش", "غير", "لا", "ليس", "لست", "مانيب", "ماني", "مهب", "not", "no", "dont", "don",
                          "never", "cant", "cannot", "isnt", "wasnt", "wont"})
      v.push_back(normalize(n));
    return v;
  }();
  return words;
}

validation validate_score(std::string_view text) {
  std::string n = normalize(text);
  if (n.empty()) return validation::bad("empty");
  if (auto k = parse_choice_number(n, 5)) return validation::good(std::to_string(*k));
  // Words people use for a rating (normalized forms). Longer phrases first.
  static const std::vector<std::pair<std::string, int>> words = {
      {"سيء جدا", 1}, {"سي جدا", 1}, {"very bad", 1}, {"very poor", 1}, {"terrible", 1},
      {"ضعيف جدا", 1}, {"جيد جدا", 4}, {"very good", 4}, {"ممتاز", 5}, {"رايع", 5},
      {"excellent", 5}, {"great", 5}, {"perfect", 5}, {"جيد", 3}, {"good", 4},
      {"مقبول", 3}, {"عادي", 3}, {"ok", 3}, {"okay", 3}, {"average", 3}, {"ضعيف", 2},
      {"poor", 2}, {"bad", 2}, {"سيء", 1}, {"سيي", 1}, {"سي", 1}, {"زفت", 1}};
  for (const auto& [w, score] : words)
    if (n == w) return validation::good(std::to_string(score));
  // Said with other words ("٣ جيد", "5 good", "كانت تجربة ممتازة"): a digit decides, if there is
  // exactly one and it is 1-5; otherwise a rating word, as a whole word (not inside another:
  // "حسيت" holds "سي"), and not negated ("مو سيء", "not bad" are asked again).
  std::vector<std::string> tokens;
  for (std::size_t i = 0; i < n.size();) {
    const auto j = std::min(n.find(' ', i), n.size());
    if (j > i) tokens.push_back(n.substr(i, j - i));
    i = j + 1;
  }
  int digits = 0, digit = 0;
  for (const auto& t : tokens)
    if (std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; })) ++digits, digit = std::atoi(t.c_str());
  if (digits > 0) return digits == 1 && digit >= 1 && digit <= 5 ? validation::good(std::to_string(digit)) : validation::bad("out_of_range");
  const auto& negations = negation_words();
  for (const auto& t : tokens)
    if (std::find(negations.begin(), negations.end(), t) != negations.end()) return validation::bad("out_of_range");
  const std::string padded = " " + [&] {
    std::string j;
    for (const auto& t : tokens) j += (j.empty() ? "" : " ") + t;
    return j;
  }() + " ";
  for (const auto& [w, score] : words)
    for (const std::string& form : {w, w + "ه", w + "ين", w + "ات", "ال" + w, "ال" + w + "ه"})  // ممتازة، ممتازين، الممتاز
      if (padded.find(" " + form + " ") != std::string::npos) return validation::good(std::to_string(score));
  return validation::bad("out_of_range");
}

std::optional<int> parse_choice_number(std::string_view text, int count) {
  // Most messages are words: any byte that is not part of a digit, a space or . ) - would be
  // left in `t` below and refuse the number anyway, so stop before converting anything.
  for (unsigned char c : text) {
    bool possible = (c >= '0' && c <= '9') || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
                    c == '\v' || c == '.' || c == ')' || c == '-' ||
                    c == 0xD9 || c == 0xDB || (c >= 0xA0 && c <= 0xA9) || (c >= 0xB0 && c <= 0xB9);  // ٠-٩ ۰-۹
    if (!possible) return std::nullopt;
  }
  std::string t = trim_collapse(to_ascii_digits(text));
  while (!t.empty() && (t.back() == '.' || t.back() == ')' || t.back() == '-')) t.pop_back();
  if (t.empty() || t.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < 1 || v > count) return std::nullopt;
  return v;
}

namespace {
const std::map<std::string, std::vector<std::string>, std::less<>>& table() {
  static const std::map<std::string, std::vector<std::string>, std::less<>> t = {
      {"name", {"empty", "too_short", "too_long", "not_letters"}},
      {"national_id", {"empty", "not_digits", "wrong_length", "wrong_first_digit", "bad_checksum"}},
      {"mobile", {"empty", "not_digits", "not_mobile"}},
      {"city", {"empty", "too_short", "too_long", "not_letters"}},
      {"description", {"empty", "too_short", "too_long"}},
      {"text", {"empty", "too_short", "too_long"}},
      {"reference", {"empty", "bad_format"}},
      {"date", {"empty", "bad_format", "bad_date"}},
      {"score", {"empty", "out_of_range"}},
  };
  return t;
}
}  // namespace

const std::vector<std::string>& validator_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& [k, _] : table()) v.push_back(k);
    return v;
  }();
  return names;
}

const std::vector<std::string>& validator_errors(std::string_view name) {
  static const std::vector<std::string> none;
  auto it = table().find(name);
  return it == table().end() ? none : it->second;
}

validation run_validator(std::string_view name, std::string_view text) {
  if (name == "name") return validate_name(text);
  if (name == "national_id") return validate_national_id(text);
  if (name == "mobile") return validate_mobile(text);
  if (name == "city") return validate_city(text);
  if (name == "description") return validate_text(text, 3, 500);
  if (name == "text") return validate_text(text, 1, 300);
  if (name == "reference") return validate_reference(text);
  if (name == "date") return validate_date(text);
  if (name == "score") return validate_score(text);
  return validation::bad("unknown_validator");
}

}  // namespace aoun::dialogs
