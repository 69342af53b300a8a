#include "dialogs/detail/lexicon.hpp"

#include <algorithm>

#include "dialogs/normalize.hpp"

namespace aoun::dialogs::detail {

namespace {

// Proclitics, longest first.
const std::u32string_view proclitics[] = {U"وبال", U"وال", U"بال", U"فال", U"كال", U"لل", U"ال",
                                          U"و", U"ف", U"ب", U"ل"};

message_word make_word(std::u32string_view w) {
  message_word out;
  out.text = w;
  out.mask[0] = letters_mask(w);
  for (auto p : proclitics)
    if (w.size() >= p.size() + 2 && w.substr(0, p.size()) == p) {
      out.mask[out.variants] = letters_mask(w.substr(p.size()));
      out.skip[out.variants++] = static_cast<std::uint8_t>(p.size());
    }
  return out;
}

std::size_t tolerance(std::size_t len) { return len >= 8 ? 2 : len >= 4 ? 1 : 0; }

// edit_distance(a, b) <= 1 for words of the same length: equal, one substitution, or one
// adjacent transposition (an insertion needs a deletion too, which makes 2).
bool within_one_same_length(std::u32string_view a, std::u32string_view b) {
  std::size_t i = 0;
  const std::size_t n = a.size();
  while (i < n && a[i] == b[i]) ++i;
  if (i == n) return true;
  if (a.substr(i + 1) == b.substr(i + 1)) return true;
  return i + 1 < n && a[i] == b[i + 1] && a[i + 1] == b[i] && a.substr(i + 2) == b.substr(i + 2);
}

// 1.0 exact, 0.8 fuzzy, 0 no match. Every variant of the word (the word itself, or without a
// proclitic) is tried; an exact match with any of them wins over a fuzzy one.
double token_match(std::u32string_view kw, std::uint64_t kw_mask, bool prefix, const message_word& word, bool fuzzy) {
  const std::u32string_view w = word.text;
  if (prefix) {
    for (std::uint8_t k = 0; k < word.variants; ++k) {
      auto v = w.substr(word.skip[k]);
      if (v.size() >= kw.size() && v.substr(0, kw.size()) == kw) return 1.0;
    }
    if (kw.size() < 4 || !fuzzy) return 0;
    for (std::uint8_t k = 0; k < word.variants; ++k) {
      auto v = w.substr(word.skip[k]);
      if (v.size() >= kw.size() && within_one_same_length(kw, v.substr(0, kw.size()))) return 0.8;
    }
    return 0;
  }
  for (std::uint8_t k = 0; k < word.variants; ++k)
    if (w.substr(word.skip[k]) == kw) return 1.0;
  const std::size_t tol = fuzzy ? tolerance(kw.size()) : 0;
  if (tol == 0) return 0;
  for (std::uint8_t k = 0; k < word.variants; ++k) {
    auto v = w.substr(word.skip[k]);
    std::size_t diff = v.size() > kw.size() ? v.size() - kw.size() : kw.size() - v.size();
    if (diff > tol) continue;
    const std::uint64_t vm = word.mask[k];
    const auto t = static_cast<std::uint8_t>(tol);
    if (!at_most_bits(kw_mask & ~vm, t) || !at_most_bits(vm & ~kw_mask, t)) continue;
    if (edit_distance_at_most(kw, v, tol) <= tol) return 0.8;
  }
  return 0;
}

}  // namespace

std::uint64_t letters_mask(std::u32string_view w) {
  std::uint64_t m = 0;
  for (char32_t c : w) m |= std::uint64_t{1} << (c & 63);
  return m;
}

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
  p.filter.tokens = static_cast<std::uint32_t>(p.tokens.size());
  for (std::size_t k = 0; k < p.tokens.size(); ++k) {
    const std::size_t len = p.tokens[k].size();
    p.masks.push_back(letters_mask(p.tokens[k]));
    if (k < std::size(p.filter.checks)) {
      // A stem matches the start of a word, with one typo from 4 letters; a word, within its
      // tolerance, so the message's longest word may be that much shorter.
      auto& c = p.filter.checks[p.filter.check_count++];
      c.mask = p.masks.back();
      c.len = static_cast<std::uint32_t>(len);
      c.typos = static_cast<std::uint8_t>(p.prefix[k] ? (len >= 4 ? 1 : 0) : tolerance(len));
      c.slack = p.prefix[k] ? 0 : c.typos;
    }
  }
  return p;
}

message make_message(std::u32string_view normalized) {
  message out;
  std::size_t i = 0;
  while (i < normalized.size()) {
    std::size_t j = normalized.find(U' ', i);
    if (j == std::u32string_view::npos) j = normalized.size();
    if (j > i) {
      out.words.push_back(make_word(normalized.substr(i, j - i)));
      out.letters |= out.words.back().mask[0];
      out.longest = std::max(out.longest, j - i);
    }
    i = j + 1;
  }
  return out;
}

message message_tokens(std::string_view text) { return make_message(normalize_u32(text)); }

double match_phrase(const phrase& p, const message& msg, bool fuzzy) {
  if (p.tokens.empty() || msg.size() < p.tokens.size()) return 0;
  auto mask = [&](std::size_t k) { return k < p.masks.size() ? p.masks[k] : letters_mask(p.tokens[k]); };
  if (!p.filter.may_match(msg)) return 0;
  // Tokens in order; one extra word may sit between two of them ("احذف رقمي وبياناتي"),
  // at a small cost.
  double best = 0;
  for (std::size_t start = 0; start < msg.size(); ++start) {
    double q = token_match(p.tokens[0], mask(0), p.prefix[0], msg.words[start], fuzzy);
    std::size_t pos = start;
    for (std::size_t k = 1; k < p.tokens.size() && q > 0; ++k) {
      double here = 0;
      std::size_t at = pos;
      for (std::size_t gap = 0; gap <= 1 && pos + 1 + gap < msg.size(); ++gap) {
        double m = token_match(p.tokens[k], mask(k), p.prefix[k], msg.words[pos + 1 + gap], fuzzy) * (gap ? 0.9 : 1.0);
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
  return token_match(keyword, letters_mask(keyword), false, make_word(word), true) > 0;
}

}  // namespace aoun::dialogs::detail
