#pragma once
// SMS: Twilio webhooks (signature, inbound and status callbacks) and one outbound interface over
// three gateways (Twilio, Unifonic, Taqnyat). Pure functions; thread-safe; never throw on input.

#include <cstddef>
#include <string>
#include <string_view>

#include "channels/message.hpp"
#include "channels/provider.hpp"

namespace aoun::channels::sms {

/// Twilio's Body limit (code points): a longer text is cut when sent.
inline constexpr std::size_t max_body_code_points = 1600;

enum class gateway { twilio, unifonic, taqnyat };

struct config {
  gateway outbound = gateway::twilio;  ///< which gateway `render`/`interpret` target
  // Twilio (inbound webhooks are always Twilio's)
  std::string account_sid;
  std::string auth_token;   ///< HMAC key of X-Twilio-Signature and Basic-auth password
  std::string from;         ///< E.164 sender, or a Messaging Service SID ("MG...")
  std::string api_base = "https://api.twilio.com";
  std::string public_url;   ///< AOUN_PUBLIC_URL (always set; its default is the local listener): StatusCallback = public_url + "/webhooks/sms"
  // Saudi gateways
  std::string unifonic_app_sid, unifonic_sender;
  std::string unifonic_api_base = "https://el.cloud.unifonic.com";
  std::string taqnyat_token, taqnyat_sender;
  std::string taqnyat_api_base = "https://api.taqnyat.sa";
};

/// Checks X-Twilio-Signature: base64(HMAC-SHA1(auth_token, full_url + sorted decoded
/// name/value pairs)). `full_url` is the public URL Twilio called, query included. Accepts the
/// signature computed with and without the scheme's default port (:443 / :80), as Twilio's SDKs
/// do. Constant-time; false when header or token is empty.
bool verify_twilio_signature(std::string_view full_url, std::string_view form_body,
                             std::string_view header, std::string_view auth_token);

/// Parses a Twilio webhook form body. MessageStatus present and no Body → status
/// (provider_id "<MessageSid>:<status>", status normalized to sent/delivered/failed or the
/// raw value); NumMedia > 0 → one media event per MediaUrlN (text = Body on the first; the
/// first keeps provider_id = MessageSid, the others "<MessageSid>:<N>"); otherwise text.
/// Errors: no MessageSid/SmsSid, or no From for an inbound message.
/// The text event carries `opt_out` "stop" or "start" when the sender opts out of SMS or back
/// in (see opt_out_of).
parse_result parse_twilio(std::string_view form_body);

/// "stop", "start" or "": Twilio's OptOutType (Advanced Opt-Out) when present; else the body is
/// exactly one of Twilio's default keywords (STOP, STOPALL, UNSUBSCRIBE, END, QUIT; START,
/// UNSTOP, YES), any case, trailing "." or "!" ignored. CANCEL is left to the dialog.
std::string opt_out_of(std::string_view opt_out_type, std::string_view body);

/// Checks the secret of a Unifonic delivery-receipt callback. Unifonic does not sign its
/// webhooks, so the secret travels in the callback URL registered with Unifonic
/// (`?token=...`). Constant-time; false when either side is empty.
bool verify_unifonic_token(std::string_view given, std::string_view expected);

/// Parses a Unifonic SMS delivery receipt (the account's "DLR webhook": MessageID, DLR,
/// Recipient, TimeCreated, SCTS, DLRTimestamp). Unifonic documents the fields but not the
/// encoding, so they are read from a JSON object body (Content-Type application/json, or a body
/// starting with '{'), else from a form body, else from the query string (`query`, without '?').
/// DLR "Delivered" → delivered; "Undeliverable", "Undelivered", "Failed", "Rejected", "Expired"
/// → failed; "Sent" → sent; anything else is kept lower-cased (it changes no row). One status
/// event: provider_id "unifonic:<MessageID>:<dlr>", status_for "unifonic:<MessageID>" (the id
/// `interpret` stores for a Unifonic send), from = +Recipient.
/// An empty DLR gives no event. Errors: no MessageID, one longer than 128 bytes or with a
/// character outside [A-Za-z0-9._:-], a JSON body that is not an object.
parse_result parse_unifonic_dlr(std::string_view content_type, std::string_view body, std::string_view query);

/// Renders one outgoing SMS for `cfg.outbound`. Choices are appended as numbered lines
/// ("1. title"). Twilio: form To/From (or MessagingServiceSid)/Body[/StatusCallback], Basic auth.
/// Unifonic: form AppSid/SenderID/Recipient (no '+')/Body/responseType=JSON.
/// Taqnyat: JSON {recipients:[no '+'], body, sender}, Bearer token. Body clamped to 1600 code points.
provider_request render(const outgoing& msg, const config& cfg);

/// The SMS body `render` sends (text plus numbered choices), for segment counting and TwiML.
std::string body_text(const outgoing& msg);

/// Number of SMS segments for `utf8`: GSM-7 (extension characters count 2 septets) 160 single /
/// 153 per part, otherwise UCS-2 in UTF-16 code units, 70 single / 67 per part. 0 for empty text.
std::size_t segments(std::string_view utf8);

/// Interprets a gateway's answer (per `gw`). Twilio: 2xx JSON `sid` → sent; 429 → rate_limited;
/// 5xx/0 → retry; other 4xx → rejected. Unifonic: 2xx unless `success:false` → sent ("unifonic:"
/// + data.MessageID, so it cannot meet a Taqnyat id); Taqnyat: 2xx → sent (messageId), unless
/// its `rejected` list names our number and `accepted` none. Any 401 → rejected with
/// credentials_refused.
send_result interpret(gateway gw, int http_status, std::string_view body,
                      std::string_view retry_after_header);

/// The empty TwiML answer for the webhook (Content-Type text/xml); replies go out via the API.
std::string twiml_empty();
/// A TwiML answer carrying one reply message (XML-escaped).
std::string twiml_message(std::string_view text);

}  // namespace aoun::channels::sms
