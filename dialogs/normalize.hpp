#pragma once

// Arabic-aware text normalization shared by the classifier, the validators and choice matching.
// All functions are pure and thread-safe; invalid UTF-8 bytes are replaced by U+FFFD.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace aoun::dialogs {

/// Decodes UTF-8 into code points (invalid sequences become U+FFFD).
std::u32string utf8_decode(std::string_view s);
/// Encodes code points as UTF-8.
std::string utf8_encode(std::u32string_view s);
/// Number of code points in `s`.
std::size_t utf8_length(std::string_view s);

/// Arabic-Indic (٠-٩) and Eastern-Arabic/Persian (۰-۹) digits → ASCII; everything else kept.
std::string to_ascii_digits(std::string_view s);

/// The full normalization used for matching:
///  digits → ASCII; diacritics (tashkeel, superscript alef) and tatweel removed;
///  أ إ آ ٱ → ا; ى → ي; ة → ه; ؤ → و; ئ → ي; Persian ک/ی → ك/ي; Latin lowercased;
///  a letter repeated 3+ times collapsed to one ("مرحباااا" → "مرحبا", "heyyy" → "hey");
///  punctuation, symbols and emoji → space; whitespace collapsed and trimmed.
/// Digits and ASCII letters are kept (Latin-script Arabic uses 3, 7, 2 ... as letters).
std::string normalize(std::string_view s);

/// normalize() as code points: utf8_decode(normalize(s)) without the round trip.
std::u32string normalize_u32(std::string_view s);

/// normalize(), then split on spaces.
std::vector<std::string> tokenize(std::string_view s);

/// Levenshtein distance on code points (adjacent transpositions count 1).
std::size_t edit_distance(std::u32string_view a, std::u32string_view b);
std::size_t edit_distance(std::string_view a, std::string_view b);
/// min(edit_distance(a, b), max + 1), stopping as soon as the distance must exceed `max`.
/// Allocates nothing for words up to 63 code points.
std::size_t edit_distance_at_most(std::u32string_view a, std::u32string_view b, std::size_t max);

/// True if `s` contains at least one Arabic letter / one ASCII letter.
bool has_arabic_letter(std::string_view s);
bool has_latin_letter(std::string_view s);

}  // namespace aoun::dialogs
