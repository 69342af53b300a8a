#include "dialogs/normalize.hpp"

#include <algorithm>

namespace aoun::dialogs {

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    char32_t cp = 0;
    std::size_t len = 0;
    if (c < 0x80) {
      cp = c;
      len = 1;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      len = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      len = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      len = 4;
    } else {
      out.push_back(U'\uFFFD');
      ++i;
      continue;
    }
    if (i + len > s.size()) {
      out.push_back(U'\uFFFD');
      break;
    }
    bool ok = true;
    for (std::size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Reject overlong forms, surrogates and out-of-range values.
    if (ok && ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
               cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)))
      ok = false;
    if (!ok) {
      out.push_back(U'\uFFFD');
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size() * 2);
  for (char32_t cp : s) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

namespace {

char32_t ascii_digit(char32_t c) {
  if (c >= U'\u0660' && c <= U'\u0669') return U'0' + (c - U'\u0660');
  if (c >= U'\u06F0' && c <= U'\u06F9') return U'0' + (c - U'\u06F0');
  return c;
}

bool is_arabic_letter(char32_t c) {
  return (c >= U'\u0621' && c <= U'\u063A') || (c >= U'\u0641' && c <= U'\u064A') ||
         (c >= U'\u0671' && c <= U'\u06D3') || c == U'\u06D5';
}

bool is_diacritic(char32_t c) {
  return (c >= U'\u064B' && c <= U'\u065F') || c == U'\u0670' || (c >= U'\u0610' && c <= U'\u061A') ||
         (c >= U'\u06D6' && c <= U'\u06ED');
}

bool is_ignorable(char32_t c) {
  // tatweel, zero-width characters, bidi marks, variation selectors
  return c == U'\u0640' || (c >= U'\u200B' && c <= U'\u200F') || (c >= U'\u202A' && c <= U'\u202E') ||
         (c >= U'\u2066' && c <= U'\u2069') || c == U'\uFEFF' || (c >= U'\uFE00' && c <= U'\uFE0F');
}

char32_t unify_letter(char32_t c) {
  switch (c) {
    case U'\u0623':  // أ
    case U'\u0625':  // إ
    case U'\u0622':  // آ
    case U'\u0671':  // ٱ
      return U'\u0627';
    case U'\u0649':  // ى
    case U'\u06CC':  // ی Persian ya
    case U'\u0626':  // ئ
      return U'\u064A';
    case U'\u0629':  // ة
      return U'\u0647';
    case U'\u0624':  // ؤ
      return U'\u0648';
    case U'\u06A9':  // ک Persian kaf
      return U'\u0643';
    default:
      return c;
  }
}

bool is_word_char(char32_t c) {
  return (c >= U'0' && c <= U'9') || (c >= U'a' && c <= U'z') || is_arabic_letter(c) ||
         c == U'\u0621' /* lone hamza */;
}

}  // namespace

std::string to_ascii_digits(std::string_view s) {
  std::u32string cps = utf8_decode(s);
  for (auto& c : cps) c = ascii_digit(c);
  return utf8_encode(cps);
}

std::u32string normalize_u32(std::string_view s) {
  std::u32string in = utf8_decode(s);
  std::u32string out;
  out.reserve(in.size());
  char32_t prev = 0;
  int run = 0;
  for (char32_t c : in) {
    c = ascii_digit(c);
    if (is_diacritic(c) || is_ignorable(c)) continue;
    if (c >= U'A' && c <= U'Z') c = c - U'A' + U'a';
    c = unify_letter(c);
    if (!is_word_char(c)) c = U' ';
    if (c == U' ') {
      if (out.empty() || out.back() == U' ') {
        prev = U' ';
        continue;
      }
      out.push_back(c);
      prev = c;
      run = 0;
      continue;
    }
    if (c == prev) {
      ++run;
      // A letter typed three or more times is emphasis ("مرحباااا", "heyyy"): keep one. Two in
      // a row are kept, since they are real spelling ("good", "مؤسسة", "تتبع"); fuzzy matching
      // absorbs a doubled letter. Digits are never collapsed.
      bool digit = c >= U'0' && c <= U'9';
      if (!digit && run >= 2) {
        if (run == 2) out.pop_back();  // the second copy was already written
        continue;
      }
    } else {
      run = 0;
    }
    out.push_back(c);
    prev = c;
  }
  while (!out.empty() && out.back() == U' ') out.pop_back();
  return out;
}

std::string normalize(std::string_view s) { return utf8_encode(normalize_u32(s)); }

std::vector<std::string> tokenize(std::string_view s) {
  std::string n = normalize(s);
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < n.size()) {
    std::size_t j = n.find(' ', i);
    if (j == std::string::npos) j = n.size();
    if (j > i) out.emplace_back(n.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::size_t edit_distance(std::u32string_view a, std::u32string_view b) {
  // Optimal string alignment: insertions, deletions, substitutions and adjacent transpositions
  // ("مسعادة" for "مساعدة") each count 1.
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
  for (std::size_t j = 0; j <= m; ++j) prev[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[m];
}

std::size_t edit_distance_at_most(std::u32string_view a, std::u32string_view b, std::size_t max) {
  // The same recurrence as edit_distance(). A row's minimum never decreases from one row to the
  // next (a transposition reaches back two rows, but the row between is at most one more), so
  // once a whole row is above `max` the result is too. Keywords and words are short: the rows
  // live on the stack.
  const std::size_t n = a.size(), m = b.size();
  if ((n > m ? n - m : m - n) > max) return max + 1;
  if (n == 0 || m == 0) return std::max(n, m);
  constexpr std::size_t inline_cols = 64;
  std::size_t buf[3 * inline_cols];
  std::vector<std::size_t> heap;
  std::size_t* rows = buf;
  if (m + 1 > inline_cols) {
    heap.resize(3 * (m + 1));
    rows = heap.data();
  }
  std::size_t* prev2 = rows;
  std::size_t* prev = rows + (m + 1);
  std::size_t* cur = rows + 2 * (m + 1);
  for (std::size_t j = 0; j <= m; ++j) prev[j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    std::size_t row_min = i;
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      std::size_t v = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) v = std::min(v, prev2[j - 2] + 1);
      cur[j] = v;
      row_min = std::min(row_min, v);
    }
    if (row_min > max) return max + 1;
    std::size_t* t = prev2;
    prev2 = prev;
    prev = cur;
    cur = t;
  }
  return std::min(prev[m], max + 1);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  return edit_distance(utf8_decode(a), utf8_decode(b));
}

bool has_arabic_letter(std::string_view s) {
  for (char32_t c : utf8_decode(s))
    if (is_arabic_letter(c)) return true;
  return false;
}

bool has_latin_letter(std::string_view s) {
  for (char c : s)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return false;
}

}  // namespace aoun::dialogs
