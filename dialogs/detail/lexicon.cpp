#include "dialogs/detail/lexicon.hpp"

#include <algorithm>

#include "dialogs/normalize.hpp"

namespace aoun::dialogs::detail {

namespace {

// Variants of a word with a proclitic removed, longest first; the word itself included.
std::vector<std::u32string_view> variants(std::u32string_view w) {
  static const std::u32string prefixes[] = {U"وبال", U"وال", U"بال", U"فال", U"كال", U"لل", U"ال",
                                            U"و", U"ف", U"ب", U"ل"};
  std::vector<std::u32string_view> out{w};
  for (const auto& p : prefixes) {
    if (w.size() >= p.size() + 2 && w.substr(0, p.size()) == p) out.push_back(w.substr(p.size()));
  }
  return out;
}

std::size_t tolerance(std::size_t len) { return len >= 8 ? 2 : len >= 4 ? 1 : 0; }

// 1.0 exact, 0.8 fuzzy, 0 no match.
double token_match(std::u32string_view kw, bool prefix, std::u32string_view word) {
  double best = 0;
  for (auto v : variants(word)) {
    if (prefix) {
      if (v.size() >= kw.size() && v.substr(0, kw.size()) == kw) return 1.0;
      if (kw.size() >= 4 && v.size() >= kw.size() &&
          edit_distance(kw, v.substr(0, kw.size())) <= 1)
        best = 0.8;
    } else {
      if (v == kw) return 1.0;
      std::size_t tol = tolerance(kw.size());
      std::size_t diff = v.size() > kw.size() ? v.size() - kw.size() : kw.size() - v.size();
      if (tol > 0 && diff <= tol && edit_distance(kw, v) <= tol) best = 0.8;
    }
  }
  return best;
}

}  // namespace

phrase make_phrase(std::string_view keyword) {
  phrase p;
  std::string k(keyword);
  // Keep the stem marker through normalization, which turns '*' into a space.
  std::vector<std::string> raw;
  std::size_t i = 0;
  while (i <= k.size()) {
    std::size_t j = k.find(' ', i);
    if (j == std::string::npos) j = k.size();
    if (j > i) raw.push_back(k.substr(i, j - i));
    i = j + 1;
  }
  for (auto& r : raw) {
    bool stem = !r.empty() && r.back() == '*';
    if (stem) r.pop_back();
    for (auto& t : tokenize(r)) {
      std::u32string u = utf8_decode(t);
      // The article is optional on both sides: words in messages are also tried without it.
      if (u.size() >= 5 && u.substr(0, 2) == U"ال") u = u.substr(2);
      p.tokens.push_back(u);
      p.prefix.push_back(false);
      p.weight += p.tokens.back().size();
    }
    if (stem && !p.prefix.empty()) p.prefix.back() = true;
  }
  return p;
}

std::vector<std::u32string> message_tokens(std::string_view text) {
  std::vector<std::u32string> out;
  for (auto& t : tokenize(text)) out.push_back(utf8_decode(t));
  return out;
}

double match_phrase(const phrase& p, const std::vector<std::u32string>& msg) {
  if (p.tokens.empty() || msg.size() < p.tokens.size()) return 0;
  // Tokens in order; one extra word may sit between two of them ("احذف رقمي وبياناتي"),
  // at a small cost.
  double best = 0;
  for (std::size_t start = 0; start < msg.size(); ++start) {
    double q = token_match(p.tokens[0], p.prefix[0], msg[start]);
    std::size_t pos = start;
    for (std::size_t k = 1; k < p.tokens.size() && q > 0; ++k) {
      double here = 0;
      std::size_t at = pos;
      for (std::size_t gap = 0; gap <= 1 && pos + 1 + gap < msg.size(); ++gap) {
        double m = token_match(p.tokens[k], p.prefix[k], msg[pos + 1 + gap]) * (gap ? 0.9 : 1.0);
        if (m > here) here = m, at = pos + 1 + gap;
      }
      q = std::min(q, here);
      pos = at;
    }
    if (q > best) best = q;
    if (best == 1.0) break;
  }
  return best * static_cast<double>(p.weight);
}

bool word_matches(std::u32string_view keyword, std::u32string_view word) {
  return token_match(keyword, false, word) > 0;
}

}  // namespace aoun::dialogs::detail
