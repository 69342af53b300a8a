#pragma once
// Telegram Bot API: webhook secret check, update parsing, outbound rendering, and the
// interpretation of the Bot API's answer. Pure functions; thread-safe; never throw on input.

#include <string>
#include <string_view>

#include "channels/message.hpp"
#include "channels/provider.hpp"

namespace aoun::channels::telegram {

struct config {
  std::string token;   ///< bot token ("123:ABC..."); part of every API URL, so never log URLs
  std::string secret;  ///< secret_token given to setWebhook
  std::string api_base = "https://api.telegram.org";  ///< no trailing '/'
};

inline constexpr std::size_t max_text = 4096;           ///< sendMessage text, code points
inline constexpr std::size_t max_callback_data = 64;    ///< bytes
inline constexpr std::size_t max_callback_answer = 200; ///< answerCallbackQuery text, code points
inline constexpr std::int64_t max_download_bytes = 20LL << 20;  ///< getFile serves files up to 20 MB

/// Compares header `X-Telegram-Bot-Api-Secret-Token` with the configured secret in constant
/// time. False when either is empty.
bool verify_secret(std::string_view header_value, std::string_view secret);

/// Parses one Update. provider_id = decimal update_id. `message.text` → text (commands such as
/// "/start" are text too); `callback_query` → choice (choice_id = data, callback_query_id,
/// from = message.chat.id, else from.id); `contact` → contact; `photo` → media (largest size);
/// `document` → media; `location` → location; edited_message and everything else → unsupported.
/// Errors: not JSON, not an object, or no integer update_id.
parse_result parse(std::string_view body);

/// Renders one outgoing message. callback_query_id set → answerCallbackQuery (text ≤ 200);
/// request_contact → sendMessage with a one-time contact-request reply keyboard (its button
/// label is the first choice's title, or "مشاركة رقم الجوال");
/// choices → sendMessage with an inline keyboard, one button per row (callback_data clamped to
/// 64 bytes on a UTF-8 boundary); otherwise plain sendMessage. Text clamped to 4096 code points.
/// `msg.to` must be the decimal chat id; it is sent as a JSON number when it parses as one.
provider_request render(const outgoing& msg, const config& cfg);

/// Interprets a Bot API answer: `ok:true` → sent (result.message_id when present);
/// 429 → rate_limited with parameters.retry_after (seconds) or the Retry-After header;
/// 5xx/0 → retry; other `ok:false` → rejected.
send_result interpret(int http_status, std::string_view body, std::string_view retry_after_header);

}  // namespace aoun::channels::telegram
