#pragma once
// The persistent outbox. A row moves pending → sending → sent, or back to pending with a later
// next_attempt_at_ms, or to dead after the last attempt. A row found in `sending` when the
// process starts was handed to the provider by a process that died before recording the answer:
// it becomes `uncertain` (flagged) and is sent again — see docs/outbox.md for the guarantee.
// REQUIRES for writes: called inside a database write job.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/connection.hpp"

namespace aoun::storage {

struct outbox_row {
  std::int64_t id = 0;
  std::optional<std::int64_t> message_id, conversation_id;
  std::string channel, recipient, payload, state;
  int attempts = 0;
  std::int64_t next_attempt_at_ms = 0;
  std::string last_error;
  std::optional<std::string> provider_message_id, delivery_status;
  bool uncertain = false;  ///< was in flight during a crash: may be a duplicate at the provider
  std::int64_t created_at = 0;
};

/// Inserts `r` as pending, or as `sending` with its first attempt counted when r.state is
/// "sending" (the job that writes it hands it to the worker right after its commit).
result<std::int64_t> outbox_enqueue(connection& c, const outbox_row& r);

/// Rows due now, each the oldest unsent row of its recipient (order per recipient is kept), at
/// most `limit`, oldest first. Marks them `sending` and counts the attempt.
/// `skip`: channels not to claim now (",sms,telegram,"; their rate limit is saturated), "" for none.
result<std::vector<outbox_row>> outbox_claim(connection& c, std::int64_t now_ms, int limit, std::string_view skip = "");
/// Whether the recipient has an unsent (pending or sending) row: a new row may be sent at once
/// only when it has none (order per recipient).
result<bool> outbox_has_unsent(connection& c, std::string_view channel, std::string_view recipient);
/// Row `id`'s recipient as stored now (a number change or reassignment re-addresses rows that
/// a sender may hold in memory); nullopt if there is no such row.
result<std::optional<std::string>> outbox_recipient(connection& c, std::int64_t id);
/// Rows handed to the worker but not attempted (an earlier row of their recipient failed):
/// back to pending, their attempt not counted.
boost::system::error_code outbox_release(connection& c, std::int64_t id);
/// What the worker needs to know to sleep: whether any row is `pending` at all (a recipient's
/// next reply queued behind one being sent counts), and the earliest time one can be claimed,
/// counting only rows at the head of their recipient's line (a row behind a `sending` one
/// becomes due when that send finishes, not on a clock).
struct outbox_backlog {
  bool any_pending = false;
  std::optional<std::int64_t> next_due_ms;
};
/// `skip` as outbox_claim's: the channels left out of this claim are left out of next_due_ms
/// too (their rows are due, and the worker looks at them again on its own clock).
result<outbox_backlog> outbox_backlog_of(connection& c, std::string_view skip = "");

/// The outcome of a send, for a row that is `sending` (a row in any other state is left alone,
/// so writing an outcome again, after a write reported failed that did commit, changes nothing).
boost::system::error_code outbox_mark_sent(connection& c, std::int64_t id, std::string_view provider_message_id,
                                           std::int64_t now);
/// Back to pending, to be tried at `next_ms`.
boost::system::error_code outbox_retry(connection& c, std::int64_t id, std::int64_t next_ms, std::string_view error);
/// Back to pending until `next_ms` without spending an attempt: the message was not tried (its
/// channel's credentials are refused). `error` says why it waits.
boost::system::error_code outbox_hold(connection& c, std::int64_t id, std::int64_t next_ms, std::string_view error);
boost::system::error_code outbox_dead(connection& c, std::int64_t id, std::string_view error);
/// Every `pending` row for this recipient becomes `dead` with `error` (a `sending` one is in
/// flight and cannot be called back).
boost::system::error_code outbox_refuse_unsent(connection& c, std::string_view channel, std::string_view recipient,
                                               std::string_view error);
/// Staff retry of a dead row: pending again, attempts reset. errc::not_found if there is no
/// dead row with this id; errc::invalid if its payload was erased with its beneficiary's data, it
/// is an SMS to someone who texted STOP, or it is for a Telegram group or channel.
boost::system::error_code outbox_revive(connection& c, std::int64_t id, std::int64_t now_ms);
/// At start-up: rows left in `sending` become `uncertain` and pending again. Returns how many.
/// Rows held for refused credentials are due at once: the restart may be the fix.
result<int> outbox_recover(connection& c);
/// Rows held for refused credentials (of `channel`, or of every channel if empty) are due now.
result<int> outbox_release_held(connection& c, std::string_view channel);
/// What a held row's last_error starts with (after any "uncertain; ").
inline constexpr std::string_view held_credentials_prefix = "credentials_refused: ";
/// One of our rows a provider's delivery status moved on.
struct delivery_change {
  std::int64_t outbox_id = 0;
  std::optional<std::int64_t> message_id, conversation_id;
};
/// A provider delivery status for our message on `channel` whose provider id is
/// `provider_message_id` (monotonic: sent < delivered < read; failed final). A `failed` status
/// puts the provider's reason (`error`; NULL when empty) in last_error, in place of an older
/// send error that no longer explains anything; a row flagged `uncertain` (it may have gone out
/// twice) keeps the flag in front of the reason. Statuses we do not rank
/// change nothing. Returns the rows it changed (none for a repeat or a stale status).
result<std::vector<delivery_change>> outbox_delivery_status(connection& c, std::string_view channel,
                                                            std::string_view provider_message_id,
                                                            std::string_view status, std::string_view error);
/// How far along a delivery status is: sent 1, delivered 2, read 3, failed 4 (final); 0 for a
/// status we do not rank.
int delivery_status_rank(std::string_view status);
/// Whether one of our rows on `channel` carries this provider id (a status that changed nothing
/// was then a repeat or stale, not early).
result<bool> outbox_has_provider_id(connection& c, std::string_view channel, std::string_view provider_message_id);
result<std::vector<outbox_row>> outbox_list(connection& c, std::string_view state, int limit);

}  // namespace aoun::storage
