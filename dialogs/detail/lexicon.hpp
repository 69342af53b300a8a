#pragma once

// Keyword matching used by the classifier, choice titles and danger words. Internal to dialogs/.
// A keyword phrase is normalized and split into tokens; a token ending in '*' matches any word
// that starts with it. Words are compared after removing common Arabic proclitics
// (و ف ب ل ك ال وال بال فال لل كال), and with a small edit distance for typos
// (1 for words of 4+ letters, 2 for 8+).

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace aoun::dialogs::detail {

struct message;

/// What a message must have for a phrase to match, kept small so that a list of them can rule
/// most phrases out from a few cache lines. Set by make_phrase().
struct phrase_filter {
  struct token_check {
    std::uint64_t mask = 0;  // letters_mask(token)
    std::uint32_t len = 0;   // code points
    std::uint8_t typos = 0;  // letters of it the message may lack
    std::uint8_t slack = 0;  // how much shorter than the token the longest word may be
  };
  token_check checks[2];  // the first tokens
  std::uint8_t check_count = 0;
  std::uint32_t tokens = 0;  // the message needs at least as many words
  /// False only if match_phrase() would return 0. Inline and without branches per token: it
  /// runs for every phrase of the lexicon on every message.
  bool may_match(const message& msg) const;
};

/// popcount(x) <= n for n in 0..2, without branches or a popcnt instruction (not in the
/// baseline x86-64 ISA): clear the lowest set bit n times and see if anything is left.
inline bool at_most_bits(std::uint64_t x, std::uint8_t n) {
  const std::uint64_t x1 = x & (x - 1), x2 = x1 & (x1 - 1);
  const std::uint64_t left[3] = {x, x1, x2};
  return left[n > 2 ? 2 : n] == 0;  // n is a typo tolerance: never above 2
}

struct phrase {
  std::vector<std::u32string> tokens;
  std::vector<bool> prefix;  // token i is a stem ("ساعد*")
  std::size_t weight = 0;    // letters in the phrase: longer phrases are more specific
  std::vector<std::uint64_t> masks;  // letters_mask(tokens[i]), set by make_phrase()
  phrase_filter filter;
};

/// One bit per letter, code point mod 64 (the Arabic letters U+0621-U+064A get a bit each; a
/// collision only makes the bound below weaker). A word needs at least
/// popcount(mask(a) & ~mask(b)) edits to become another, which rules most pairs out at once.
std::uint64_t letters_mask(std::u32string_view w);

/// Builds a phrase from a keyword as written in a locale file; empty if it normalizes to "".
phrase make_phrase(std::string_view keyword);

/// One word of a message with its proclitic-less variants, found once per message rather than
/// once per keyword tried.
struct message_word {
  std::u32string text;
  // Variant k is text.substr(skip[k]); skip[0] == 0 is the word itself.
  std::uint8_t variants = 1;
  std::uint8_t skip[12] = {};
  std::uint64_t mask[12] = {};  // letters_mask() of each variant
};

/// The message as normalized words. Cheap to match many phrases against.
struct message {
  std::vector<message_word> words;
  std::uint64_t letters = 0;  // letters_mask() of the whole message
  std::size_t longest = 0;    // code points in its longest word
  bool empty() const { return words.empty(); }
  std::size_t size() const { return words.size(); }
};

inline bool phrase_filter::may_match(const message& msg) const {
  // Every token must match some word, which needs the message to have all but a typo's worth
  // of its letters and a word long enough.
  if (msg.words.size() < tokens) return false;
  bool ok = true;
  for (std::uint8_t k = 0; k < check_count; ++k) {
    const auto& c = checks[k];
    ok &= at_most_bits(c.mask & ~msg.letters, c.typos) & (msg.longest + c.slack >= c.len);
  }
  return ok;
}

/// From text already normalized (normalize_u32()): split on spaces.
message make_message(std::u32string_view normalized);
/// normalize_u32(), then make_message().
message message_tokens(std::string_view text);

/// 0 if `p` does not occur in `msg`; otherwise its weight (reduced a little for a fuzzy match).
/// `fuzzy` false: each word as written or with a proclitic, no typo (danger words, where a
/// typo's neighbour is an everyday word: انتظار is one letter from انتحار).
double match_phrase(const phrase& p, const message& msg, bool fuzzy = true);

/// True if the two single words match (clitics, typo distance; no stems).
bool word_matches(std::u32string_view keyword, std::u32string_view word);

}  // namespace aoun::dialogs::detail
