#pragma once
// The channel-neutral message models every provider is translated to and from.
// Plain values; no I/O. Thread-compatible.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aoun::channels {

/// The channels a beneficiary can write on. `to_string` gives the stable name stored in the
/// database and shown by the API ("whatsapp", "telegram", "sms", "webchat").
enum class kind { whatsapp, telegram, sms, webchat };
std::string_view to_string(kind k);
std::optional<kind> kind_from_string(std::string_view s);

/// What one provider event is.
enum class inbound_type {
  text,         ///< free text (`text`)
  choice,       ///< a button / list / callback press (`choice_id`, never empty; its title in `text`)
  contact,      ///< a shared contact card (`contact_phone`, `contact_is_sender`)
  location,     ///< `latitude`, `longitude`, optional `text` = place name/address
  media,        ///< image / document / audio / video / sticker (`media_*`, `media_id` never empty; caption in `text`)
  status,       ///< delivery status of one of OUR outbound messages (`status_*`)
  unsupported,  ///< anything else (reaction, order, system, unknown type): recorded, not routed
};
std::string_view to_string(inbound_type t);

/// One inbound event, parsed from a provider payload.
struct inbound {
  kind channel = kind::whatsapp;
  inbound_type type = inbound_type::unsupported;
  /// Provider's id for this event, the dedupe key: wamid for WhatsApp, the decimal
  /// `update_id` for Telegram, MessageSid for Twilio. For statuses: "<id>:<status>".
  std::string provider_id;
  /// The beneficiary's address on the channel: WhatsApp `wa_id` (or `user_id`), Telegram
  /// `chat.id` as decimal, SMS sender in E.164 ("+9665..."), web-chat session id.
  std::string from;
  std::string display_name;      ///< profile name where the provider gives one (may be empty)
  /// WhatsApp's business-scoped user id (BSUID, "SA.123…") of the sender, given beside the
  /// phone number, or alone (then also `from`) when a person with a username hides their number.
  std::string user_id;
  std::int64_t timestamp = 0;    ///< provider time, unix seconds (0 if absent)
  std::string text;              ///< body, caption, button title, or location name
  std::string choice_id;         ///< button / list row id / Telegram callback_data
  std::string callback_query_id; ///< Telegram callback query to acknowledge (answerCallbackQuery)
  std::string reply_to;          ///< provider id of our message this answers (WhatsApp context.id)
  /// The message was forwarded: written by someone else first (a threat, say). WhatsApp says
  /// only that (context.forwarded, or frequently_forwarded); Telegram says by whom and when.
  bool forwarded = false;
  std::string forwarded_from;    ///< Telegram: the original sender's name or chat title, if given
  std::int64_t forwarded_at = 0; ///< Telegram: the original message's time, unix seconds
  // contact
  std::string contact_phone;     ///< digits as given by the provider
  bool contact_is_sender = false;///< Telegram: contact.user_id == from.id; WhatsApp: wa_id == from
  // location
  double latitude = 0, longitude = 0;
  std::int64_t live_period = 0;  ///< Telegram live location: seconds it is shared for (0: a fixed place)
  /// Telegram: the message's `message_id` in its chat. A live location's updates are edits that
  /// name it, so the place staff see moves instead of a row being added per update.
  std::string message_ref;
  /// An edit that only moves a shared location (Telegram live location): `message_ref` names
  /// the message, latitude/longitude are where it is now.
  bool location_update = false;
  // media
  std::string media_kind;        ///< "image", "document", "audio", "video", "sticker"
  std::string media_id;          ///< provider media id (WhatsApp media id, Telegram file_id, Twilio MediaUrl0)
  std::string media_mime;
  std::string media_filename;
  std::int64_t media_size = 0;   ///< bytes, where the provider says (Telegram file_size); 0 = unknown
  // status (type == status)
  std::string status_for;        ///< provider id of our outbound message (wamid / MessageSid)
  std::string status;            ///< "sent", "delivered", "read", "failed", else the provider's word (never empty)
  std::string status_error;      ///< provider error code + title, for failed
  std::string raw_type;          ///< the provider's own type name (for unsupported kinds, logs)
  // Opting out
  std::string opt_out;           ///< "stop" or "start": the sender opts out (SMS STOP, blocking the Telegram bot), or back in
  /// Addresses the sender had until now on this channel (WhatsApp's system messages
  /// `user_changed_number` and `user_changed_user_id`): the provider vouches that they are the
  /// same person as `from`, so whoever was filed under them moves to `from`.
  std::vector<std::string> previous_addresses;
  /// Set by bot/, not a parser: the address the message came from when it is filed under the
  /// address its writer has now (a message from a changed number, delivered late).
  std::string written_from;
};

/// One choice offered to the beneficiary.
struct choice {
  std::string id;           ///< ASCII, ≤ 64 bytes (Telegram callback_data limit)
  std::string title;        ///< shown text
  std::string description;  ///< optional second line (WhatsApp list rows)
};

/// One message to send, channel-neutral. Renderers fit it into each channel's limits.
struct outgoing {
  kind channel = kind::whatsapp;
  std::string to;                 ///< same address form as `inbound::from`
  std::string text;               ///< body (plain text, may be Arabic)
  std::vector<choice> choices;    ///< buttons / list rows / numbered options
  std::string choices_button;     ///< WhatsApp list button label ("اختر" ...), when a list is used
  bool request_contact = false;   ///< Telegram: contact-request keyboard; others: ignored
  std::string reply_to;           ///< provider id to reply in context (optional)
  // WhatsApp template message (outside the 24-hour window). When `template_name` is set the
  // message is a template with `template_params` as body parameters; `text` is only our copy.
  std::string template_name;
  std::string template_lang;      ///< "ar" / "en"
  std::vector<std::string> template_params;
  // Telegram answerCallbackQuery: when set, this "message" is the acknowledgement of a button
  // press (`text` is the optional toast, ≤ 200 chars), not a chat message.
  std::string callback_query_id;
  // WhatsApp mark-as-read: when set, this is a read receipt for that wamid, not a message.
  std::string mark_read_id;
};

}  // namespace aoun::channels
