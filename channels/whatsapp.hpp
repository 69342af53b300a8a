#pragma once
// WhatsApp Cloud API (Meta): webhook verification and parsing, outbound rendering, and the
// interpretation of the Graph API's answer. Pure functions; thread-safe; never throw on input.
// Provider reference: docs/channels.md §WhatsApp.

#include <optional>
#include <string>
#include <string_view>

#include "channels/message.hpp"
#include "channels/provider.hpp"

namespace aoun::channels::whatsapp {

/// Secrets and endpoints. A channel whose secrets are empty is disabled by bot/.
struct config {
  std::string verify_token;     ///< typed in the App Dashboard; checked on the GET handshake
  std::string app_secret;       ///< HMAC key of X-Hub-Signature-256
  std::string token;            ///< Graph API access token (Bearer)
  std::string phone_number_id;  ///< our sending number's id
  std::string api_base = "https://graph.facebook.com/v21.0";  ///< no trailing '/'; http:// allowed in tests
};

/// Limits applied by `render` (Meta's published limits).
inline constexpr std::size_t max_text = 4096;         ///< text body, code points
inline constexpr std::size_t max_interactive_body = 1024;
inline constexpr std::size_t max_buttons = 3;
inline constexpr std::size_t max_button_title = 20;
inline constexpr std::size_t max_list_rows = 10;
inline constexpr std::size_t max_list_button = 20;
inline constexpr std::size_t max_row_title = 24;
inline constexpr std::size_t max_row_description = 72;

/// Checks `X-Hub-Signature-256` ("sha256=<64 hex>") over the raw body bytes as received.
/// Constant-time; false when the header, the secret or the hex is missing or malformed.
bool verify_signature(std::string_view raw_body, std::string_view header_value,
                      std::string_view app_secret);

/// The GET subscription handshake: returns the challenge to echo (200, text/plain) when
/// `mode == "subscribe"` and `token` equals `verify_token` (constant time, non-empty);
/// nullopt otherwise (answer 403).
std::optional<std::string> verify_handshake(std::string_view mode, std::string_view token,
                                            std::string_view challenge,
                                            std::string_view verify_token);

/// Parses one webhook POST body into events, in payload order (every entry, change, message
/// and status). Unknown message types become `unsupported` events, never an error.
/// Errors (ok == false): not JSON, not an object, `object` != "whatsapp_business_account",
/// or no `entry` array. Individual items of the wrong shape are skipped.
/// With `our_number_id` (AOUN_WHATSAPP_PHONE_NUMBER_ID) set, a change whose
/// `metadata.phone_number_id` names another number (one Meta app may serve several) is left out
/// and counted in `other_number`: its people are not ours to enrol, nor to answer from our number.
parse_result parse(std::string_view body, std::string_view our_number_id = {});

/// Renders one outgoing message as a Graph API request (POST {api_base}/{phone_number_id}/messages).
/// Precedence: mark_read_id → read receipt; template_name → template; 1–3 choices → reply
/// buttons; 4–10 → list; more than 10 → numbered text. Texts are clamped to the limits above on
/// code-point boundaries (callers should keep texts well below them: clamping loses the end).
provider_request render(const outgoing& msg, const config& cfg);

/// Whether an address is a business-scoped user id ("US.13491208655302741918": two capital
/// letters, a period, then letters and digits) rather than a phone number. `render` sends to a
/// user id in `recipient` instead of `to`.
bool is_user_id(std::string_view address);

/// Interprets the Graph API's answer. `http_status == 0` (network error/timeout) → retry.
/// 2xx → sent with `messages[0].id`; 429 or codes 130429/131056/80007 → rate_limited;
/// 131047 → rejected with outside_window; other 4xx → rejected; 5xx → retry.
send_result interpret(int http_status, std::string_view body, std::string_view retry_after_header);

}  // namespace aoun::channels::whatsapp
