#pragma once
// Small cryptographic and encoding helpers used to verify webhooks and build requests.
// All functions are pure and thread-safe; none throws on any input.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aoun::channels::crypto {

/// Raw (binary) HMAC digests. An empty key is allowed (HMAC defines it).
std::string hmac_sha256(std::string_view key, std::string_view data);
std::string hmac_sha1(std::string_view key, std::string_view data);
/// Raw SHA-256 digest.
std::string sha256(std::string_view data);

/// Lowercase hex of bytes.
std::string hex_encode(std::string_view bytes);
/// Decodes upper- or lowercase hex; nullopt on odd length or a non-hex character.
std::optional<std::string> hex_decode(std::string_view hex);

/// Standard base64 (RFC 4648 §4) with '=' padding.
std::string base64_encode(std::string_view bytes);
/// URL-safe base64 (RFC 4648 §5: '-' and '_'), without padding: tokens and ids.
std::string base64url_encode(std::string_view bytes);
/// Strict standard base64 with padding; nullopt on any invalid character or length.
std::optional<std::string> base64_decode(std::string_view b64);

/// Constant-time equality (CRYPTO_memcmp). Different lengths compare unequal; the length
/// itself is not secret.
bool equal_constant_time(std::string_view a, std::string_view b);

/// Percent-decodes `s`. With `plus_is_space` (form bodies, query strings) '+' becomes ' '.
/// Invalid escapes ("%G1", a trailing "%") are kept literally, as browsers and Twilio's SDKs do.
std::string percent_decode(std::string_view s, bool plus_is_space = true);
/// Percent-encodes for application/x-www-form-urlencoded: unreserved characters
/// (A-Z a-z 0-9 - . _ ~) stay, space becomes '+', everything else %XX (uppercase hex).
std::string form_encode(std::string_view s);

/// Splits an application/x-www-form-urlencoded body (or a URL query string, without '?')
/// into decoded (name, value) pairs, in order, keeping repeated names. Empty fields are skipped;
/// a field without '=' has an empty value.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view body);
/// Same as parse_form; named for URL query strings.
inline std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  return parse_form(query);
}
/// Builds a form body from pairs ("a=1&b=2"), each name and value form_encode'd.
std::string build_form(const std::vector<std::pair<std::string, std::string>>& fields);

/// Number of Unicode code points in UTF-8 text (invalid bytes count one each).
std::size_t code_points(std::string_view utf8);
/// The longest prefix of `utf8` with at most `max_code_points` code points, never cutting a
/// code point (a malformed sequence counts as one code point per byte).
std::string_view truncate_code_points(std::string_view utf8, std::size_t max_code_points);
/// The longest prefix of at most `max_bytes` bytes that does not cut a UTF-8 sequence.
std::string_view truncate_bytes(std::string_view utf8, std::size_t max_bytes);

}  // namespace aoun::channels::crypto
