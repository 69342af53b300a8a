#pragma once
// Appending JSON text to a string directly, for request bodies built on the hot path without a
// DOM. Not part of the public API.

#include <string>
#include <string_view>

namespace aoun::channels::detail {

/// Appends `s` as a JSON string literal, quotes included, byte for byte as nlohmann's
/// `dump(-1, ' ', false, error_handler_t::replace)` writes it: UTF-8 (Arabic, emoji) is copied
/// as is; '"', '\\' and \b \f \n \r \t get their short escapes; other control characters
/// (U+0000..U+001F) become \u00xx (lowercase hex); DEL and '/' are not escaped. Invalid UTF-8 is
/// written with U+FFFD in place of the bad bytes, exactly as nlohmann replaces them.
void append_json_string(std::string& out, std::string_view s);

/// True when `s` is well-formed UTF-8 by the same rules (Unicode table 3-7: no overlong forms,
/// surrogates or code points past U+10FFFF), i.e. when append_json_string copies it unchanged.
bool valid_utf8(std::string_view s);
/// `s` with every byte that does not start a well-formed UTF-8 sequence replaced by U+FFFD:
/// form fields (Twilio's) are bytes, and the rest of the system takes text.
std::string scrub_utf8(std::string_view s);

}  // namespace aoun::channels::detail
