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

struct phrase {
  std::vector<std::u32string> tokens;
  std::vector<bool> prefix;  // token i is a stem ("ساعد*")
  std::size_t weight = 0;    // letters in the phrase: longer phrases are more specific
  std::vector<std::uint64_t> masks;  // letters_mask(tokens[i]), set by make_phrase()
};

/// One bit per letter (code point mod 64; Arabic letters do not collide). A word needs at least
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
  bool empty() const { return words.empty(); }
  std::size_t size() const { return words.size(); }
};

/// From text already normalized (normalize_u32()): split on spaces.
message make_message(std::u32string_view normalized);
/// normalize_u32(), then make_message().
message message_tokens(std::string_view text);

/// 0 if `p` does not occur in `msg`; otherwise its weight (reduced a little for a fuzzy match).
double match_phrase(const phrase& p, const message& msg);

/// True if the two single words match (clitics, typo distance; no stems).
bool word_matches(std::u32string_view keyword, std::u32string_view word);

}  // namespace aoun::dialogs::detail
