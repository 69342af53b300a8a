#include "bot/http_error.hpp"

#include <nlohmann/json.hpp>

namespace aoun::bot {

http::status status_of(api_error e) {
  switch (e) {
    case api_error::bad_signature: return http::status::unauthorized;
    case api_error::malformed: return http::status::bad_request;
    case api_error::too_large: return http::status::payload_too_large;
    case api_error::not_found: return http::status::not_found;
    case api_error::bad_method: return http::status::method_not_allowed;
    case api_error::unauthenticated: return http::status::unauthorized;
    case api_error::forbidden: return http::status::forbidden;
    case api_error::conflict: return http::status::conflict;
    case api_error::locked: return http::status::too_many_requests;
    case api_error::rate_limited: return http::status::too_many_requests;
    case api_error::unavailable: return http::status::service_unavailable;
    case api_error::internal: return http::status::internal_server_error;
    case api_error::bad_gateway: return http::status::bad_gateway;
    case api_error::unsupported_type: return http::status::unsupported_media_type;
  }
  return http::status::internal_server_error;
}

std::string_view code_of(api_error e) {
  switch (e) {
    case api_error::bad_signature: return "bad_signature";
    case api_error::malformed: return "malformed";
    case api_error::too_large: return "too_large";
    case api_error::not_found: return "not_found";
    case api_error::bad_method: return "bad_method";
    case api_error::unauthenticated: return "unauthenticated";
    case api_error::forbidden: return "forbidden";
    case api_error::conflict: return "conflict";
    case api_error::locked: return "locked";
    case api_error::rate_limited: return "rate_limited";
    case api_error::unavailable: return "unavailable";
    case api_error::internal: return "internal";
    case api_error::bad_gateway: return "bad_gateway";
    case api_error::unsupported_type: return "unsupported_type";
  }
  return "internal";
}

response json_response(unsigned version, bool keep_alive, std::string body, http::status status) {
  response res{status, version};
  res.set(http::field::content_type, "application/json; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

response too_large_response(unsigned version, bool keep_alive, std::string_view message, std::uint64_t limit_bytes) {
  nlohmann::json j{{"error", code_of(api_error::too_large)}, {"message", message}, {"limit_bytes", limit_bytes}};
  return json_response(version, keep_alive, j.dump(), status_of(api_error::too_large));
}

response error_response(unsigned version, bool keep_alive, api_error e, std::string_view message) {
  nlohmann::json j{{"error", code_of(e)}, {"message", message}};
  auto res = json_response(version, keep_alive, j.dump(), status_of(e));
  if (e == api_error::unauthenticated) res.set(http::field::www_authenticate, "Bearer");
  return res;
}

}  // namespace aoun::bot
