#pragma once
// Beneficiaries, their conversation, its transcript, webhook dedupe, cases created by the bot,
// volunteers, surveys and erasure. REQUIRES for every write: called inside a database write job
// (the caller's transaction). Rows carry personal data: never log their fields.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/connection.hpp"

namespace aoun::storage {

struct beneficiary_row {
  std::int64_t id = 0;
  std::string channel, address, display_name, lang = "ar";
  std::optional<std::int64_t> consented_at, last_inbound_at, erased_at;
  std::optional<std::int64_t> opted_out_at;  ///< an SMS STOP or a Telegram block still in force
  std::optional<std::string> user_id;        ///< WhatsApp's business-scoped user id, once seen
  std::int64_t created_at = 0;
};

struct conversation_row {
  std::int64_t id = 0;
  std::int64_t beneficiary_id = 0;
  std::string mode = "bot";  // bot | waiting | staff | resolved
  int priority = 0;
  std::string queue_reason;
  std::optional<std::int64_t> queued_at, assigned_staff_id, last_message_at, first_staff_reply_at, resolved_at;
  std::string dialog_state = "{}";
  std::int64_t created_at = 0, updated_at = 0;
  // joined from beneficiaries
  std::string channel, address, display_name, lang;
  std::optional<std::int64_t> last_inbound_at;
};

struct message_row {
  std::int64_t id = 0;
  std::int64_t conversation_id = 0;
  std::string direction, sender;  // in|out ; beneficiary|bot|staff|system
  std::optional<std::int64_t> staff_id;
  std::string kind = "text", text, payload = "{}";
  std::optional<std::string> provider_id;
  std::int64_t created_at = 0;
  // joined
  std::string staff_name;
  std::optional<std::string> outbox_state, delivery_status;
  std::optional<std::string> outbox_error;  ///< the outbox row's last_error
};

/// Records a provider event id. False if it was seen before (a duplicate to drop).
result<bool> mark_processed(connection& c, std::string_view channel, std::string_view provider_id, std::int64_t now);
/// How long an event id is kept to recognise a provider's retry: well past the longest retry
/// period (Meta retries a webhook for up to 7 days; Twilio retries within minutes). A retry of
/// an older event would be taken as new.
inline constexpr std::int64_t processed_keep_seconds = 30 * 86400;
/// Telegram's, shorter: Telegram keeps an update 24 hours, and after a week without updates it
/// picks the next update_id at random, so a key kept a week could match a new message, which
/// would be dropped as a duplicate. Three days: a retry is still recognised, and every key is
/// gone (pruned hourly) before an id can be drawn again.
inline constexpr std::int64_t telegram_processed_keep_seconds = 3 * 86400;
/// How long `channel`'s event ids are kept.
constexpr std::int64_t processed_keep_seconds_for(std::string_view channel) {
  return channel == "telegram" ? telegram_processed_keep_seconds : processed_keep_seconds;
}
/// One step of a sweep through the event ids in key order (no index on time: that would cost
/// every webhook an index insert): up to `limit` keys after (after_channel, after_id); which
/// of them are past their keeping at `now` (unix seconds: recorded before now minus
/// processed_keep_seconds_for their channel); where the next step starts.
struct processed_scan {
  std::vector<std::pair<std::string, std::string>> old;  ///< (channel, provider_id)
  std::size_t seen = 0;                                  ///< keys read; < limit: the sweep is done
  std::string last_channel, last_id;
};
result<processed_scan> scan_processed(connection& c, std::string_view after_channel, std::string_view after_id,
                                      std::int64_t now, int limit);
/// Deletes these event ids; returns how many were there.
result<int> delete_processed(connection& c, const std::vector<std::pair<std::string, std::string>>& keys);

/// last_inbound_at is rewritten only when it is this old (or unset): it may lag the newest
/// message by up to a minute, which only makes the 24-hour window close that much earlier.
inline constexpr std::int64_t inbound_refresh_seconds = 60;

/// Finds or creates the beneficiary for (channel, address); refreshes display_name (when a
/// non-empty, different one comes and the beneficiary was not erased) and, when `inbound` is
/// set, last_inbound_at (see inbound_refresh_seconds). Writes nothing when nothing changes.
/// `written_at` (0: now) is when the person wrote, which WhatsApp's 24-hour window runs from: a
/// message delivered late (Meta retries for days) does not reopen a window that has closed.
/// last_inbound_at only moves forward, but for one in the future (a clock set back since).
result<beneficiary_row> upsert_beneficiary(connection& c, std::string_view channel, std::string_view address,
                                           std::string_view display_name, std::int64_t now, bool inbound,
                                           std::int64_t written_at = 0);
/// A beneficiary who asked for nothing more on their channel (`at`), or came back (nullopt): an
/// SMS STOP and START, a Telegram user who blocked the bot and wrote again. Nothing is sent to
/// them on that channel while opted out (docs/channels.md, "Opting out").
boost::system::error_code set_opt_out(connection& c, std::string_view channel, std::string_view address,
                                      std::optional<std::int64_t> at);
/// The address of the beneficiary known by this provider user id (WhatsApp's BSUID), if any.
result<std::optional<std::string>> address_for_user_id(connection& c, std::string_view channel, std::string_view user_id);
/// How long a changed or reassigned address keeps leading its late messages to the person who
/// wrote them (Meta retries a webhook for up to 7 days).
inline constexpr std::int64_t address_move_keep_seconds = 8 * 86400;
/// Where a message from (channel, from) belongs when its writer has since left that address
/// (move_address, retire_address): the address of that person's record now ("retired:…" for a
/// number's previous holder), found by the user id the message carries (the one they had at
/// `from`, unless a record holds it now), or else by when it was written (`written_at`, unix
/// seconds: at or before the first change recorded after it, and not under another user id
/// than theirs). nullopt: it is the address's current holder's. Rows outlive an erasure (the
/// erased record keeps its address too) until they are pruned.
result<std::optional<std::string>> moved_address_for(connection& c, std::string_view channel, std::string_view from,
                                                     std::int64_t written_at, std::string_view user_id);
/// Forgets the changes of address recorded before `before` (unix seconds); how many.
result<int> prune_address_moves(connection& c, std::int64_t before);
/// Whether any change of address is recorded.
result<bool> address_moves_exist(connection& c);
/// Records that beneficiary `id` is known by `user_id` on `channel` (taken from any other
/// beneficiary that had it: one user id, one person).
boost::system::error_code set_user_id(connection& c, std::int64_t id, std::string_view channel, std::string_view user_id);

/// What move_address did.
enum class address_move { none, moved, merged };
struct address_moved {
  address_move what = address_move::none;
  std::int64_t beneficiary_id = 0;                      ///< the one who now has the address
  std::optional<std::int64_t> folded_conversation;     ///< merged: the conversation that is gone
  std::optional<std::int64_t> into_conversation;       ///< ... and the one its rows joined
  std::optional<std::int64_t> retired_beneficiary;     ///< the number's previous holder, set aside
};
/// Without the notice's time: a record at the new number begun this long before it may be the
/// person's own.
inline constexpr std::int64_t fold_window_seconds = 7 * 24 * 3600;
/// With it: one begun this long before the change may be theirs (webhooks are not ordered, and
/// clocks differ).
inline constexpr std::int64_t change_slack_seconds = 600;
/// What the provider said of a change of address.
struct address_change {
  std::int64_t at = 0;       ///< when the change happened (the notice's timestamp), 0 if unknown
  std::int64_t now = 0;      ///< unix seconds
  /// The provider's own id for the person (WhatsApp's user id), never handed on to anyone
  /// else: a record at the new address is theirs whatever its age.
  bool same_person = false;
  /// Folding, keep the older of the two records (its id, conversation, language, erasure
  /// time) even when it is the one at the new address: a long-standing record at the number,
  /// and a younger one filed under a user id. Without it the record at the old address stays.
  bool keep_to = false;
};
/// Sets aside whoever holds (channel, address) as a number's previous holder (see
/// move_address): nullopt when nobody does.
result<std::optional<std::int64_t>> retire_address(connection& c, std::string_view channel, std::string_view address,
                                                   std::int64_t now);
/// The person filed under (channel, from) now writes as (channel, to), on the provider's word
/// (WhatsApp's user_changed_number): their beneficiary takes the address `to`; unsent and dead
/// replies for `from` are addressed to `to`, and so is the mobile of their cases where it was
/// `+from`. A beneficiary already at `to`:
/// - begun before the change (change.at, give or take change_slack_seconds; without it, more
///   than fold_window_seconds ago or with a case or volunteer record), or before the person last
///   wrote from `from`, is the number's previous holder (unless change.same_person): set aside
///   under the address "retired:<id>:<to>" with its unsent and dead replies (pending ones
///   dead, "number_reassigned"), its user id and its cases' mobile `+to` cleared, its
///   conversation resolved (`retired_beneficiary`). This happens even when `from` has no
///   beneficiary.
/// - otherwise the person wrote from the new number before the notice came: it is folded into
///   the older record (`merged`). Its conversation's messages, replies, cases and surveys join
///   the older conversation, which takes the newer one's mode, queue place, assignee and dialog
///   when they rank higher (staff > waiting > bot) or, both with the bot, when the newer dialog
///   is past consent. The higher priority (danger) and any consent stay.
/// A number changed (not change.same_person): the user id recorded was the old number's, so
/// the person keeps the one of a record begun from the new number, or none until the caller or
/// their next message records it.
/// `none` when `from` has no beneficiary or equals `to`. REQUIRES: inside a write job.
result<address_moved> move_address(connection& c, std::string_view channel, std::string_view from, std::string_view to,
                                   const address_change& change);
/// Whether this conversation has an inbound message from a later provider update than
/// `update_id`, recorded at or after `since` (unix seconds), among its newest 50 messages.
/// Telegram's update ids increase, except that after a week without updates the next one is
/// random: hence the recent window.
result<bool> inbound_update_after(connection& c, std::int64_t conversation_id, std::string_view update_id,
                                  std::int64_t since);
/// Whether this conversation has the person blocking the bot on Telegram (my_chat_member
/// "kicked") from a later update than `update_id`, recorded at or after `since`, among its
/// newest 50 messages: an older message delivered late does not undo a newer block.
result<bool> block_after(connection& c, std::int64_t conversation_id, std::string_view update_id, std::int64_t since);
/// Whether the beneficiary wrote in this conversation after message `message_id`.
result<bool> inbound_after(connection& c, std::int64_t conversation_id, std::int64_t message_id);
/// Whether an address opted out on its channel (false for one never seen).
result<bool> opted_out(connection& c, std::string_view channel, std::string_view address);
/// Whether the bot wrote exactly `text` in this conversation at or after `since` (unix s).
result<bool> bot_said_since(connection& c, std::int64_t conversation_id, std::string_view text, std::int64_t since);
/// The beneficiary's conversation (one per beneficiary), created on first use.
result<conversation_row> conversation_for(connection& c, std::int64_t beneficiary_id, std::int64_t now);
/// errc::not_found if there is no such conversation.
result<conversation_row> find_conversation(connection& c, std::int64_t id);
/// mode = "all" or one of the modes; waiting ones come in queue order (danger first, then oldest).
result<std::vector<conversation_row>> list_conversations(connection& c, std::string_view mode,
                                                         std::optional<std::int64_t> assigned_to, int limit);

/// Writes mode, priority, queue fields, assignment, state and timestamps from `conv`.
boost::system::error_code save_conversation(connection& c, const conversation_row& conv);
/// The same, but when the queue and assignment fields are those of `before` (the row as read),
/// writes only the dialog state and timestamps: an UPDATE that sets an indexed column rewrites
/// that index's entry even when the value is unchanged (one more page per message).
boost::system::error_code save_conversation(connection& c, const conversation_row& conv,
                                            const conversation_row& before);
boost::system::error_code set_beneficiary_lang(connection& c, std::int64_t id, std::string_view lang);
boost::system::error_code set_consented(connection& c, std::int64_t id, std::int64_t now);

result<std::int64_t> insert_message(connection& c, const message_row& m);
result<std::vector<message_row>> list_messages(connection& c, std::int64_t conversation_id, int limit);
result<message_row> find_message(connection& c, std::int64_t id);
/// The location a beneficiary shared in this conversation as message `message_ref` (Telegram's
/// message_id, kept in the payload as location.message_ref), among its newest 1,000 messages,
/// or the record of a move of one shared before an erasure (kind unsupported, no place);
/// errc::not_found if there is none.
result<message_row> find_shared_location(connection& c, std::int64_t conversation_id, std::string_view message_ref);
/// Replaces a message's payload (a live location that moved). Its text and time stay.
boost::system::error_code set_message_payload(connection& c, std::int64_t id, std::string_view payload);

/// Next value of a named counter (case reference numbers). Starts at 1.
result<std::int64_t> next_counter(connection& c, std::string_view name);

struct case_row {
  std::int64_t id = 0;
  std::string reference;
  std::int64_t beneficiary_id = 0;
  std::optional<std::int64_t> conversation_id;
  std::string channel, step = "submitted";
  std::optional<std::string> verification_method, appointment;
  std::string full_name, national_id, mobile, city, service_type, description;
  std::int64_t created_at = 0, updated_at = 0;
};
struct case_document_row {
  std::int64_t case_id = 0;
  std::optional<std::int64_t> message_id;
  std::string media_kind, media_id, mime, filename;
  std::int64_t at = 0;
};

result<std::int64_t> insert_case(connection& c, const case_row& k);
result<case_row> find_case_by_reference(connection& c, std::string_view reference);
result<std::vector<case_row>> cases_of_conversation(connection& c, std::int64_t conversation_id);
boost::system::error_code insert_case_event(connection& c, std::int64_t case_id, std::optional<std::string> from,
                                            std::string_view to, std::optional<std::int64_t> staff_id,
                                            std::string_view note, std::int64_t at);
boost::system::error_code insert_case_document(connection& c, const case_document_row& d);

struct volunteer_row {
  std::optional<std::int64_t> beneficiary_id;
  std::string name, city, skills, availability;
  std::int64_t created_at = 0;
};
boost::system::error_code insert_volunteer(connection& c, const volunteer_row& v);

/// Opens a survey invitation for a conversation (trigger: case_closed | conversation_resolved).
result<std::int64_t> open_survey(connection& c, std::int64_t conversation_id, std::optional<std::int64_t> case_id,
                                 std::optional<std::int64_t> staff_id, std::string_view channel,
                                 std::optional<std::string> service_type, std::string_view trigger, std::int64_t now);
/// Records one answer (question: overall | speed | courtesy) on the conversation's latest open survey.
boost::system::error_code survey_answer(connection& c, std::int64_t conversation_id, std::string_view question,
                                        int score);
boost::system::error_code survey_complete(connection& c, std::int64_t conversation_id, std::string_view comment,
                                          std::int64_t now);

/// Erases the beneficiary's personal data: transcript texts and payloads, the outbox's copies
/// of the replies already sent or given up on (a staff retry of one goes out empty; one still
/// to send goes, and forgets its copy when sent or given up on), display
/// name, case personal fields, staff notes on case steps, case documents, volunteer rows,
/// survey comments. Keeps ids, timestamps and anonymous survey scores so that reports stay
/// correct. Sets erased_at.
boost::system::error_code erase_beneficiary(connection& c, std::int64_t beneficiary_id, std::int64_t now);

/// Retention (docs/privacy.md): a beneficiary is due for erasure when
///  - nothing of theirs happened after `before` (unix seconds; at `before` itself is old
///    enough): not their creation, their last inbound message, a conversation's creation,
///    last message or last change by staff, its newest transcript row, nor a step of any of
///    their cases;
///  - no case of theirs is open (every one is `closed`, the workflow's only final step);
///  - no conversation of theirs is queued for staff or held by staff (mode waiting or staff);
///  - they were never erased, or something happened after the last erasure (they came back).
/// The caller erases each one with erase_if_retention_due, which asks again.
struct retention_scan {
  std::vector<std::int64_t> due;  ///< beneficiary ids, ascending
  std::size_t seen = 0;           ///< beneficiaries read; < limit: the sweep is done
  std::int64_t last_id = 0;       ///< where the next step starts
};
/// One step of the retention sweep through the beneficiaries in id order: up to `limit` of
/// them after `after_id`, and which of those are due. Read-only: run it on a reader.
result<retention_scan> scan_retention(connection& c, std::int64_t after_id, std::int64_t before, int limit);
/// Whether this beneficiary is due (see above); errc::not_found if there is no such beneficiary.
result<bool> retention_due(connection& c, std::int64_t beneficiary_id, std::int64_t before);
/// Erases the beneficiary (erase_beneficiary, erased_at = now) if they are still due: a message
/// or a staff action may have come between the sweep's read and this write. Returns whether it
/// erased. REQUIRES: inside a write job.
result<bool> erase_if_retention_due(connection& c, std::int64_t beneficiary_id, std::int64_t before,
                                    std::int64_t now);
/// The statement scan_retention runs (?1 after_id, ?2 limit), for tests of its query plan.
std::string TEST_retention_scan_sql();

}  // namespace aoun::storage
