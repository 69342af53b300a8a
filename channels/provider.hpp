#pragma once
// Types shared by every provider module: the result of parsing a webhook, a rendered outbound
// HTTP request, and the interpretation of a provider's answer to it. Plain values; no I/O.

#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "channels/message.hpp"

namespace aoun::channels {

/// The result of parsing one webhook body.
/// `ok == false` means the body is malformed or has the wrong shape (the caller answers 400);
/// `error` is then a short, fixed description that never contains payload text.
/// `ok == true` with no events is valid (e.g. a payload that only carries fields we ignore).
struct parse_result {
  bool ok = false;
  std::string error;
  std::vector<inbound> events;
  /// WhatsApp: changes left out because they are for another number of the same app.
  std::size_t other_number = 0;
};

/// One HTTP request to a provider, ready for `http_client::send`.
/// `headers` never include Host, Content-Type or Content-Length (the client sets them);
/// they do include Authorization, so a provider_request must never be logged whole.
struct provider_request {
  std::string method = "POST";
  std::string url;  ///< absolute http:// or https:// URL
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type;
  std::string body;
  /// Largest response body accepted, bytes; 0 = the client's `http_client_options::body_limit`.
  std::size_t body_limit = 0;
};

/// What to do with an outbound message after the provider answered (or did not).
enum class send_outcome {
  sent,          ///< accepted by the provider; `provider_message_id` set where the provider gives one
  retry,         ///< 5xx, timeout, network error, unreadable answer: retry with backoff
  rate_limited,  ///< 429 or a provider rate-limit code: retry after `retry_after` (0 = use backoff)
  rejected,      ///< 4xx: the request itself is wrong or not allowed; do not retry
};

/// `error` is a short diagnostic ("http 400 code 21211") and never contains message text.
struct send_result {
  send_outcome outcome = send_outcome::retry;
  std::string provider_message_id;
  std::chrono::milliseconds retry_after{0};
  std::string error;
  bool outside_window = false;  ///< WhatsApp 131047: free-form outside the 24 h window; send a template
  /// Telegram 403: the person blocked the bot (or deleted their account): nothing more reaches
  /// them until they write again.
  bool recipient_blocked = false;
  /// The provider refused our own credentials (HTTP 401, WhatsApp's code 190: an expired or
  /// revoked token, a wrong key): a fault of the channel, not of this message, which is held
  /// until the credentials work again (docs/outbox.md, "Refused credentials").
  bool credentials_refused = false;
};

}  // namespace aoun::channels
