#pragma once
// Protocol-neutral errors of the HTTP boundary, mapped to a status in one place (userver's
// HandlerErrorCode). Handlers return `error_response(req, api_error::..., "message")`.

#include <string_view>

#include "bot/net.hpp"

namespace aoun::bot {

enum class api_error {
  bad_signature,    // 401
  malformed,        // 400
  too_large,        // 413
  not_found,        // 404
  bad_method,       // 405
  unauthenticated,  // 401
  forbidden,        // 403
  conflict,         // 409
  locked,           // 429 (staff sign-in)
  rate_limited,     // 429 (too many from one client)
  unavailable,      // 503
  internal,         // 500
  bad_gateway,      // 502: a provider we called failed (media downloads)
  unsupported_type, // 415: a file of a kind we do not take (web chat uploads)
};

http::status status_of(api_error e);
std::string_view code_of(api_error e);

/// A JSON error body {"error": code, "message": message}; keep-alive follows the request.
response error_response(unsigned version, bool keep_alive, api_error e, std::string_view message);
/// 413 with what the client may send instead: {"error":"too_large","message","limit_bytes"}.
response too_large_response(unsigned version, bool keep_alive, std::string_view message, std::uint64_t limit_bytes);
/// A JSON body with status 200 (or `status`).
response json_response(unsigned version, bool keep_alive, std::string body, http::status status = http::status::ok);

}  // namespace aoun::bot
