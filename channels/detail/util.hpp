#pragma once
// Internals shared by the provider modules: defensive JSON access for untrusted payloads,
// number parsing, Retry-After, and status classification. Not part of the public API.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "channels/provider.hpp"

namespace aoun::channels::detail {

using json = nlohmann::json;

/// Parses untrusted JSON without throwing; nullopt when malformed.
std::optional<json> parse_json(std::string_view body);

/// The member `key` of `j` when `j` is an object that has it, else nullptr.
const json* member(const json& j, std::string_view key);
const json* member(const json* j, std::string_view key);
/// `member` that must be an object / array / string, else nullptr.
const json* object_member(const json* j, std::string_view key);
const json* array_member(const json* j, std::string_view key);

/// A string member as is; an integer member as decimal; anything else "".
std::string text_member(const json* j, std::string_view key);
/// An integer member (JSON integer in int64 range, or a string of decimal digits with an
/// optional '-'), else nullopt. Huge or fractional numbers give nullopt.
std::optional<std::int64_t> int_member(const json* j, std::string_view key);
/// A finite number member, else nullopt.
std::optional<double> number_member(const json* j, std::string_view key);

/// Parses a decimal int64 ("123", "-5"); nullopt on anything else or overflow.
std::optional<std::int64_t> parse_int(std::string_view s);

/// Retry-After header (RFC 9110 section 10.2.3): delta-seconds, or an HTTP-date (IMF-fixdate) as
/// the time from `now_unix` (0: the clock) until then; clamped to [0, 1 h]; 0 when unreadable.
std::chrono::milliseconds retry_after_header(std::string_view value, std::int64_t now_unix = 0);
/// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") as unix seconds; nullopt otherwise.
std::optional<std::int64_t> http_date(std::string_view value);
/// Seconds clamped to [0, 1 h] as milliseconds.
std::chrono::milliseconds seconds_clamped(std::int64_t seconds);

/// The common part of every interpret(): status 0 → retry "network"; 429 → rate_limited with
/// the header; 5xx → retry; other → nullopt (the provider decides).
std::optional<send_result> classify_transport(int http_status, std::string_view retry_after);

/// "http <status>[ code <code>]" for send_result::error.
std::string error_text(int http_status, std::string_view code = {});

}  // namespace aoun::channels::detail
