#pragma once
// The outbox worker: takes due rows from the persistent outbox (head of line per recipient, so
// order is kept), paces them per channel (token bucket; Telegram also per chat), sends them with
// the channel's client, and records the answer: sent, retried with exponential backoff and
// jitter (5xx, timeouts), retried after the provider's retry-after (429), or dead-lettered.
// A row is marked `sending` in a committed transaction BEFORE its request leaves, and `sent`
// right after the answer (batched with the other answers that arrived meanwhile): see
// docs/outbox.md for what a crash in between means.
//
// Runs on the application's io_context; wake() and stop() are thread-safe.

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <vector>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "bot/config.hpp"
#include "bot/early_receipts.hpp"
#include "bot/event_hub.hpp"
#include "bot/metrics.hpp"
#include "bot/net.hpp"
#include "bot/outbox_send.hpp"
#include "channels/http_client.hpp"
#include "channels/provider.hpp"
#include "storage/database.hpp"
#include "storage/outbox.hpp"

namespace aoun::bot {

class outbox_worker {
 public:
  /// `receipts`: delivery statuses that came before their send was recorded, applied when it is.
  outbox_worker(net::io_context& ioc, storage::database& db, const config& cfg, event_hub& hub, metrics& m,
                early_receipts& receipts);
  ~outbox_worker();
  /// Starts the loop. REQUIRES: storage::outbox_recover committed first (app::recover_outbox),
  /// before any job could claim a row.
  void start();
  /// Something was enqueued: look now instead of at the next timer.
  void wake();
  /// Rows a committed job already marked `sending` (conversation_ops::enqueue): sent now, in
  /// order per recipient. Thread-safe.
  void deliver_claimed(std::vector<outbox_send> rows);
  /// Committed jobs re-addressed the unsent rows of these addresses ("channel\naddress": a
  /// changed number, a number's previous holder set aside): a row of theirs that a chain holds
  /// is read again before it is sent, and goes where it goes now (or nowhere). Thread-safe.
  void addresses_changed(std::vector<std::string> keys);
  /// Stops claiming; `done` runs once the in-flight sends have recorded their outcome.
  void stop(std::function<void()> done);

  /// A channel whose provider refuses our credentials (HTTP 401, WhatsApp's 190): its messages
  /// are held, not dead-lettered, and tried again with a single probe after a pause (30 s,
  /// doubling to 15 min) until one is accepted. Thread-safe.
  struct channel_fault {
    std::string channel;
    std::int64_t since = 0;  ///< unix seconds of the first refusal
    std::string error;       ///< the provider's answer ("http 401 code 190")
  };
  std::vector<channel_fault> channel_faults() const;

  /// Builds the provider request for one row, from its JSON payload (exposed for tests).
  channels::provider_request render(const storage::outbox_row& row) const;
  /// The same from the message in memory when there is one (same request, byte for byte).
  channels::provider_request render(const outbox_send& s) const;

 private:
  struct limiter;
  struct provider_configs;
  net::awaitable<void> loop();
  /// Sends one row and records the outcome; false if the recipient's next rows must wait
  /// (this one is to be retried later).
  net::awaitable<bool> deliver(outbox_send s);
  /// Sends a recipient's rows one after the other; releases the rest if one must be retried.
  net::awaitable<void> deliver_chain(std::vector<outbox_send> rows);
  void spawn_chain(std::vector<outbox_send> rows);
  /// Puts rows that will not be sent now back to `pending` (order kept: they are behind a retry).
  net::awaitable<void> release_rows(std::vector<outbox_send> rows);
  /// One row back to `pending`, its attempt not counted (written until it is, or the worker stops).
  net::awaitable<void> release_row(std::int64_t id);
  /// At most max_in_flight provider requests at once (sockets): a send waits here, on strand_,
  /// for a slot, after its pacing. Release hands the slot to the next waiter, oldest first.
  net::awaitable<void> acquire_send_slot();
  void release_send_slot();
  /// Waits for the channel's rate limit and, for a Telegram chat message, the chat's own gap.
  /// `chat_message` is false for what Telegram does not count as a message in the chat (the
  /// answer to a button press), which must not hold back the reply behind it.
  /// False if the worker stopped while this send waited for its turn (it was not sent).
  net::awaitable<bool> pace(const storage::outbox_row& row, bool chat_message, double cost);
  channels::send_result interpret(const std::string& channel, const channels::http_response& r) const;
  /// Renders, sends and reads the answer of one row. Runs on the io_context, off the strand:
  /// it touches only const state and the (thread-safe) client, so sends proceed on every I/O
  /// thread at once while the strand keeps the bookkeeping.
  net::awaitable<channels::send_result> send_row(const outbox_send& s) const;
  std::chrono::milliseconds backoff(int attempts) const;
  void finished_one();
  /// Rows became pending (on strand_): the loop claims and re-reads when to wake.
  void backlog_changed();
  struct claim_result {
    std::vector<storage::outbox_row> rows;
    storage::outbox_backlog backlog;
  };
  /// Records one `sent` outcome. Outcomes that arrive while a write of them is in flight are
  /// committed together by the next one (one write job for many sends under load, one each
  /// when idle). Completes once this row's mark is committed, or failed.
  net::awaitable<storage::result<int>> record_sent(std::int64_t id, std::string channel, std::string provider_message_id,
                                                   std::int64_t at_s);
  void flush_sent();  ///< on strand_
  /// What one send's outcome writes to its row.
  struct outcome_write {
    enum class kind { sent, retry, dead, hold } what = kind::sent;
    std::string provider_message_id;  // sent
    std::int64_t at_s = 0;            // sent: when the provider answered (unix s)
    std::int64_t next_ms = 0;         // retry, hold
    std::string error;                // retry, dead
    std::string opted_out;            // dead: a recipient the provider says opted out (Twilio 21610, Telegram 403)
    std::int64_t at_ms = 0;           // opted_out: when the answer came
    std::int64_t conversation_id = 0; // opted_out, window_closed: the row's conversation
    std::int64_t message_id = 0;      // opted_out, window_closed: the row's message
    bool window_closed = false;       // dead: WhatsApp refused it outside the 24-hour window (131047)
  };
  net::awaitable<storage::result<int>> write_outcome(std::int64_t id, const std::string& channel, const outcome_write& w);
  /// Writes the outcome until it is committed or the worker stops. A row whose outcome is not
  /// recorded stays `sending`, and a recipient with a row `sending` gets nothing more (one send
  /// at a time): a failed write (disk full, a lock held too long) must not stop their messages.
  /// False if it gave up (the worker is stopping and the last try failed).
  net::awaitable<bool> record_outcome(std::int64_t id, const std::string& channel, const outcome_write& w);
  /// After a failed write of row `id`'s state: counts and logs it, waits `pause` (doubled for the
  /// next time, cut short by stop()), and says whether to write again (not once stopping).
  net::awaitable<bool> wait_to_rewrite(std::int64_t id, const boost::system::error_code& ec, std::chrono::milliseconds& pause);
  static constexpr std::chrono::milliseconds first_rewrite_pause{100};
  static constexpr std::chrono::milliseconds max_rewrite_pause{5000};

  net::io_context& ioc_;
  storage::database& db_;
  const config& cfg_;
  event_hub& hub_;
  metrics& metrics_;
  early_receipts& receipts_;
  net::strand<net::io_context::executor_type> strand_;
  net::ssl::context tls_;
  std::unique_ptr<channels::http_client> client_;
  net::steady_timer timer_;                      // touched only on strand_
  bool woken_ = false;                           // touched only on strand_
  bool pending_left_ = true;                     // some row may be pending (strand_)
  std::uint64_t backlog_changes_ = 0;            // backlog_changed() calls (strand_)
  std::unique_ptr<limiter> limits_;              // touched only on strand_
  std::unique_ptr<const provider_configs> providers_;  // built once from cfg_, read-only
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
  std::function<void()> on_stopped_;             // touched only on strand_
  int sends_in_flight_ = 0;                                         // strand_: requests in flight
  std::deque<std::shared_ptr<net::steady_timer>> slot_waiters_;      // strand_: sends waiting for a slot
  std::set<std::shared_ptr<net::steady_timer>> record_waits_;        // strand_: outcomes waiting to be written again, sends waiting for their rate limit
  bool loop_done_ = false;                       // touched only on strand_
  struct sent_mark {
    std::int64_t id = 0;
    std::string channel, provider_message_id;
    std::int64_t at = 0;
    std::function<void(boost::system::error_code)> done;
  };
  std::vector<sent_mark> sent_marks_;            // touched only on strand_
  // Channels whose credentials were refused (strand_), and a copy for other threads.
  struct fault_state {
    channel_fault shown;
    std::chrono::steady_clock::time_point until;  // no send before, except the probe
    std::chrono::milliseconds pause{0};            // the current pause; doubles on each refused probe
    bool probing = false;                          // one send is trying the credentials
  };
  std::map<std::string, fault_state> faults_;
  // strand_: recipients ("channel\nrecipient") whose send was refused as if for the whole
  // channel, with when first (kept half an hour); and per channel, when the latest send it
  // accepted began. A recipient refused again after the channel accepted a send begun since
  // is refused alone: that row is dead, and the channel is not held for it.
  std::unordered_map<std::string, std::chrono::steady_clock::time_point> refused_recipients_;
  std::map<std::string, std::chrono::steady_clock::time_point> accepted_began_;
  /// After a send refused as if for the whole channel (strand_): whether the channel has
  /// carried another send begun after this recipient's first such refusal. Records the refusal.
  bool refused_alone(const storage::outbox_row& row, std::chrono::steady_clock::time_point now);
  // strand_: addresses re-addressed lately (addresses_changed), with when; an hour at most.
  std::map<std::string, std::chrono::steady_clock::time_point> readdressed_;
  /// If the row's address was re-addressed lately, reads where it goes now (strand_).
  net::awaitable<void> follow_readdress(outbox_send& s);
  std::map<std::string, int> unpaced_;  // strand_: rows handed to chains, per channel, not yet paced
  std::map<std::string, int> held_;     // strand_: rows handed to chains, per channel, not yet done
  std::map<std::string, std::chrono::steady_clock::time_point> skipped_since_;  // strand_: channels left out of claims
  std::chrono::steady_clock::time_point claim_quiet_until_{};  // strand_: finished sends do not wake the claim before
  std::set<std::string> release_held_;  // strand_: channels whose held rows are to be made due
  mutable std::mutex faults_mutex_;
  std::vector<channel_fault> faults_shown_;  // GUARDED_BY(faults_mutex_)
  /// Before a send (strand_): how long this row must wait for its channel's credentials, or
  /// nothing if it may go (no fault, or it is the probe).
  std::optional<std::chrono::milliseconds> credentials_hold(const std::string& channel);
  /// After a send (strand_): what its answer says of the channel's credentials.
  void credentials_answer(const std::string& channel, bool probe, const channels::send_result& r);
  /// A probe that got no answer at all (its send threw): the next one comes after the pause.
  void credentials_abandoned(const std::string& channel);
  void publish_faults();
  bool flushing_sent_ = false;                   // touched only on strand_
};

}  // namespace aoun::bot
