#pragma once
// What happens to a conversation, as steps inside one database write job: an inbound event
// (store, dedupe, dialog step, effects, replies into the outbox) and the staff side's actions
// (notify, survey, request documents, hand back to the bot). Every function here runs on the
// storage writer thread inside the caller's transaction; after the commit the caller publishes
// `after_commit::events` and wakes the outbox.
//
// Thread-safety: const after construction except the engine, which is swapped atomically on
// reload (a step uses the engine it started with).

#include <cstdint>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bot/config.hpp"
#include "bot/early_receipts.hpp"
#include "bot/event_hub.hpp"
#include "channels/message.hpp"
#include "bot/outbox_send.hpp"
#include "dialogs/engine.hpp"
#include "storage/connection.hpp"
#include "storage/conversations.hpp"
#include "storage/outbox.hpp"

namespace aoun::bot {

/// Collected inside a write job, acted on after its commit.
struct after_commit {
  std::vector<event> events;
  /// A row was written `pending` (its recipient had one unsent already): the worker must look
  /// for it once the rows ahead of it are sent. Rows in `claimed` need no wake.
  bool wake_outbox = false;
  /// Outbox rows this job wrote AND marked `sending`: handed to the worker right after the
  /// commit, in order, without waiting for a claim (the fast path of a reply).
  std::vector<outbox_send> claimed;
  /// Recipients ("channel\naddress") whose rows this job claimed: their later rows in the
  /// same job follow them.
  std::set<std::string> chains;
  /// False when no console is connected: the staff-stream events (which cost extra queries
  /// per message) are then not built. Nothing is lost: the console loads state on connect.
  bool staff_listening = true;
  /// Provider ids of events that named no sender: recorded in the audit log, not routed.
  std::vector<std::string> unroutable;
  /// Addresses ("channel\naddress") whose unsent rows this job re-addressed (a changed number,
  /// a number's previous holder set aside): rows of theirs a sender holds in memory are stale.
  std::vector<std::string> readdressed;
  /// Beneficiaries who asked for their data to be erased, and were: logged and counted.
  std::vector<std::int64_t> erased;
  /// Our messages a provider reported it could not deliver ("channel", outbox id): logged (ids
  /// only) and counted, so a failure nobody is looking at still shows in /metrics.
  std::vector<std::pair<std::string, std::int64_t>> delivery_failed;
  /// A file this job asked a copy of (storage/media_copies.hpp): the archive fetches it.
  bool media_wanted = false;

  /// Back to empty, keeping staff_listening: the first thing a write job that may run twice
  /// does (storage::rerun::safe).
  void clear() {
    events.clear();
    wake_outbox = false;
    claimed.clear();
    chains.clear();
    readdressed.clear();
    unroutable.clear();
    erased.clear();
    delivery_failed.clear();
    media_wanted = false;
  }
};

class conversation_ops {
 public:
  /// Why a row was refused before any attempt (its last_error, dead): an SMS to someone who
  /// texted STOP; anything but a button's acknowledgement to a Telegram group or channel.
  static constexpr std::string_view sms_opted_out_reason = "opted_out: the beneficiary texted STOP (START lifts it)";
  static constexpr std::string_view telegram_blocked_reason =
      "blocked: the beneficiary blocked the bot on Telegram (lifted when they write to it again)";
  /// Channels where a person can opt out (SMS STOP, blocking the Telegram bot), and the reason
  /// written on what is then not sent; empty for the others.
  static std::string_view opted_out_reason(std::string_view channel) {
    return channel == "sms" ? sms_opted_out_reason : channel == "telegram" ? telegram_blocked_reason : std::string_view();
  }
  static constexpr std::string_view telegram_group_reason =
      "group_chat: the bot does not write to Telegram groups or channels";
  /// Whether a Telegram recipient is a group, supergroup or channel (their chat ids are negative;
  /// a private chat's id is the user's, positive).
  static bool telegram_group(std::string_view recipient) { return !recipient.empty() && recipient.front() == '-'; }
  /// The address of a number's previous holder, set aside when WhatsApp said the number is now
  /// someone else's (storage::move_address): nothing is ever sent to it.
  static bool retired_address(std::string_view recipient) { return recipient.rfind("retired:", 0) == 0; }
  static constexpr std::string_view number_reassigned_reason = "number_reassigned: the number now belongs to someone else";

  conversation_ops(const config& cfg, std::shared_ptr<const dialogs::engine> engine);

  std::shared_ptr<const dialogs::engine> engine() const;
  void set_engine(std::shared_ptr<const dialogs::engine> e);

  /// One inbound provider event. Statuses update our outbound rows; duplicates (seen provider
  /// id) change nothing and return false; everything else is stored and routed.
  storage::result<bool> handle_inbound(storage::connection& c, const channels::inbound& in, std::int64_t now,
                                       after_commit& fx) const;

  /// The write job of one webhook, or of one web-chat message: every event in order, stopping
  /// at the first error. It starts `fx` from scratch, so the writer may run it twice
  /// (storage::rerun::safe). Returns how many events were new (not duplicates).
  storage::result<int> handle_all(storage::connection& c, std::span<const channels::inbound> events, std::int64_t now,
                                  after_commit& fx) const;

  /// Queues a text (and choices) to the beneficiary: transcript row + outbox row.
  storage::result<std::int64_t> send(storage::connection& c, storage::conversation_row& conv,
                                     const channels::outgoing& o, std::string_view sender,
                                     std::optional<std::int64_t> staff_id, std::int64_t now, after_commit& fx) const;
  /// WhatsApp: the person's latest message marked read (their blue ticks), when a member of
  /// staff takes the conversation over or answers it, within the 24-hour window. Nothing on
  /// other channels, and nothing in the transcript.
  boost::system::error_code mark_read(storage::connection& c, const storage::conversation_row& conv, std::int64_t now,
                                      after_commit& fx) const;
  /// A locale text (key, vars) in the beneficiary's language, sent by "system".
  boost::system::error_code notify(storage::connection& c, storage::conversation_row& conv, std::string_view key,
                                   const std::map<std::string, std::string>& vars, std::int64_t now,
                                   after_commit& fx) const;
  /// Opens a survey row and asks its first question.
  boost::system::error_code start_survey(storage::connection& c, storage::conversation_row& conv,
                                         std::string_view trigger, std::optional<std::int64_t> case_id,
                                         std::optional<std::int64_t> staff_id, std::optional<std::string> service_type,
                                         std::int64_t now, after_commit& fx) const;
  boost::system::error_code request_documents(storage::connection& c, storage::conversation_row& conv,
                                              std::string_view reference, std::int64_t now, after_commit& fx) const;
  /// `quiet`: the dialog starts over without a word to the person (outside WhatsApp's 24-hour
  /// window, where anything but a template would fail).
  boost::system::error_code back_to_bot(storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                                        after_commit& fx, bool quiet = false) const;

  /// Delivery statuses that came before the outbox committed their provider id; the outbox
  /// applies them when it does (bot/early_receipts.hpp).
  early_receipts& receipts() const { return receipts_; }
  /// What a provider's "failed" for our messages (`changed`) means beyond the row, in the same
  /// transaction: WhatsApp's 131047 closes the 24-hour window, Twilio's 21610 opts the
  /// recipient out (unless they wrote since). Shared by a status webhook and an early receipt.
  static boost::system::error_code after_failure(storage::connection& c, std::string_view channel,
                                                 std::string_view error,
                                                 const std::vector<storage::delivery_change>& changed, std::int64_t now);

  /// Whether `now` (unix s) falls in the configured working hours, Asia/Riyadh (UTC+3).
  bool within_working_hours(std::int64_t now) const;
  /// WhatsApp's 24-hour customer-service window is open for this conversation.
  static bool window_open(const storage::conversation_row& conv, std::int64_t now);

  /// API shapes (SPEC §5); the console and the stream use the same ones.
  nlohmann::json conversation_json(storage::connection& c, const storage::conversation_row& conv,
                                   std::int64_t now) const;
  static nlohmann::json message_json(const storage::message_row& m);
  /// What the web chat's visitor gets of a message: what the page shows, nothing of staff
  /// (no names: a staff member introduces themselves by first name when they join).
  static nlohmann::json visitor_message_json(const storage::message_row& m);
  /// The stream's `message.status` event: our message `message_id` is now `status`; `error`
  /// (the reason of a failed or dead one) goes in `delivery_error` when not empty.
  static std::string message_status_event(std::optional<std::int64_t> conversation_id, std::int64_t message_id,
                                          std::string_view status, std::string_view error);
  static nlohmann::json case_json(const storage::case_row& k);
  /// case_json without the national ID, mobile and description: what lists and the live stream
  /// carry to every console (a case's own page, GET /api/v1/cases/{ref}, has them).
  static nlohmann::json case_listed_json(const storage::case_row& k);

  /// Publishes an updated conversation to the staff stream (and waiting if queued).
  void conversation_event(storage::connection& c, const storage::conversation_row& conv, std::int64_t now,
                          after_commit& fx, const char* type = "conversation.updated") const;

 /// Whether any late-message route (storage::address_moves) may exist: false only when the
  /// table is known to be empty (at start-up, after a prune).
  void set_address_moves_present(bool present) const { moves_maybe_.store(present, std::memory_order_relaxed); }

 private:
  /// After storage::move_address / retire_address: consoles drop a folded conversation
  /// (`conversation.merged`) and see a retired one resolved (`conversation.updated`).
  boost::system::error_code announce_move(storage::connection& c, const storage::address_moved& moved,
                                          std::int64_t now, after_commit& fx) const;
  boost::system::error_code announce_retired(storage::connection& c, std::int64_t beneficiary_id, std::int64_t now,
                                             after_commit& fx) const;
  dialogs::context make_context(storage::connection& c, const storage::conversation_row& conv, std::int64_t now) const;
  boost::system::error_code apply(storage::connection& c, storage::conversation_row& conv,
                                  const dialogs::step_result& r, std::optional<std::int64_t> inbound_message_id,
                                  std::int64_t now, after_commit& fx) const;
  storage::result<std::int64_t> record_outbound(storage::connection& c, storage::conversation_row& conv,
                                                const channels::outgoing& o, std::string_view sender,
                                                std::optional<std::int64_t> staff_id, std::int64_t now,
                                                after_commit& fx) const;
  boost::system::error_code enqueue(storage::connection& c, storage::outbox_row& row, const channels::outgoing& o,
                                    after_commit& fx) const;
  void queue(storage::conversation_row& conv, std::string_view reason, int priority, std::int64_t now) const;

  // Constant after construction.
  const config& cfg_;
  mutable std::mutex engine_mutex_;
  std::shared_ptr<const dialogs::engine> engine_;  // GUARDED_BY(engine_mutex_)
  mutable early_receipts receipts_;                // thread-safe itself
  // Whether address_moves may have rows: when it has none (nearly always), a message costs no
  // lookup there. Set before any job runs (app), whenever a job moves or sets aside an address,
  // and by the prune; read and written by write jobs (the writer thread), atomic for the rest.
  mutable std::atomic<bool> moves_maybe_{true};
};

}  // namespace aoun::bot
