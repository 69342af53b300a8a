#pragma once
// A faster reader for untrusted JSON payloads on the hot paths (the WhatsApp webhook and the Graph
// API's answers): Boost.JSON's parser into an arena that starts on the stack, in place of a
// nlohmann DOM, with the same accessors as util.hpp. Not part of the public API.
//
// It accepts and rejects what `parse_json` (nlohmann, strict) does, and gives the same
// values, so callers can switch without a change in behaviour:
//  - a leading UTF-8 byte-order mark is skipped (nlohmann skips it);
//  - no nesting limit and no stack overflow: Boost's parser recurses per level, so a document
//    nested deeper than 64, like one with an exponent too long for Boost ("1e-99999999999", zero
//    for strtod), is handed to nlohmann's iterative SAX parser, which builds the same value;
//  - a number whose magnitude overflows a double (1e400) is an error (nlohmann: "number overflow");
//  - floating-point numbers are converted exactly (std::from_chars, like nlohmann's strtod), not by
//    Boost 1.81's faster conversion, which may be one ulp off;
//  - a repeated key keeps its last value (as nlohmann does);
//  - strings must be valid UTF-8 and \u escapes valid UTF-16 (both libraries reject the rest),
//    with one exception: a \u escape of a lone surrogate (an emoji's half, cut off by whoever
//    truncated the text) is read as U+FFFD rather than the whole document refused.
//
// Thread-compatible: one document per call; nothing is shared.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value.hpp>

namespace aoun::channels::detail {

/// `body` with each \u escape of a lone UTF-16 surrogate replaced by \uFFFD, or nothing if it
/// has none. Escapes are read in sequence, so "\\ud800" (a backslash, then text) is left alone.
std::optional<std::string> replace_lone_surrogates(std::string_view body);

class json_doc {
 public:
  json_doc() = default;
  json_doc(const json_doc&) = delete;
  json_doc& operator=(const json_doc&) = delete;

  /// Parses `body`; false when it is not one well-formed JSON text (then `root()` is null).
  /// May be called once per document.
  bool parse(std::string_view body);
  const boost::json::value& root() const { return root_; }

 private:
  // A typical webhook (1-2 KB of JSON) fits here; larger ones continue on the heap.
  alignas(16) unsigned char initial_[8192];
  boost::json::monotonic_resource arena_{initial_, sizeof initial_};
  // In the arena from the start: then taking the parser's result is a move, not a deep copy.
  boost::json::value root_ = boost::json::value(boost::json::storage_ptr(&arena_));
};

using jvalue = boost::json::value;

/// The member `key` of `j` when `j` is an object that has it, else nullptr.
const jvalue* member(const jvalue* j, std::string_view key);
/// `member` that must be an object / array, else nullptr.
const jvalue* object_member(const jvalue* j, std::string_view key);
const jvalue* array_member(const jvalue* j, std::string_view key);

/// A string member as is; an integer member as decimal; anything else "".
std::string text_member(const jvalue* j, std::string_view key);
/// An integer member (JSON integer in int64 range, or a string of decimal digits with an
/// optional '-'), else nullopt. Huge or fractional numbers give nullopt.
std::optional<std::int64_t> int_member(const jvalue* j, std::string_view key);
/// A finite number member, else nullopt.
std::optional<double> number_member(const jvalue* j, std::string_view key);

}  // namespace aoun::channels::detail
