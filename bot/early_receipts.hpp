#pragma once
// Delivery receipts that arrive before our own record of the send.
//
// A provider may report a message's status (sent, delivered, read, failed) before we have
// committed the provider's id for it: the outbox records "sent" after the answer, batched with
// the other answers of that moment, so a fast receipt can meet no row. Such a receipt is kept
// here, in memory, and applied by the job that commits the id (outbox_worker::flush_sent).
// Without it a "failed" that came early was answered 200 and lost: a silent failure.
//
// Bounded: at most `capacity` receipts, each kept `keep_for` at most (a receipt for a message
// we never sent, say one from the WhatsApp Business app on the same number, simply expires).
// Not durable, on purpose: after a crash the rows it could have matched are resent (flagged
// uncertain) and get receipts of their own.
//
// Thread-safety: every member may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace aoun::bot {

class early_receipts {
 public:
  using clock = std::chrono::steady_clock;
  struct receipt {
    std::string status;  ///< sent, delivered, read or failed
    std::string error;   ///< the provider's reason, for failed
  };

  explicit early_receipts(std::size_t capacity = 10000, std::chrono::seconds keep_for = std::chrono::minutes(10))
      : capacity_(capacity), keep_for_(keep_for) {}

  /// Keeps a receipt that matched no row (the caller passes delivered, read or failed: an
  /// early "sent" adds nothing to the send's own record). Of several for one message the furthest along wins
  /// (failed over read over delivered over sent), as storage::outbox_delivery_status ranks them.
  void keep(std::string_view channel, std::string_view provider_id, receipt r, clock::time_point now = clock::now());
  /// The receipt kept for this message, if any; it stays until forget().
  std::optional<receipt> find(std::string_view channel, std::string_view provider_id) const;
  /// Called once what find() returned is committed.
  void forget(std::string_view channel, std::string_view provider_id);
  /// Cheap, lock-free: the common case (nothing kept) costs the outbox nothing more.
  bool empty() const { return size_.load(std::memory_order_relaxed) == 0; }
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }

 private:
  static std::string key(std::string_view channel, std::string_view provider_id);
  void expire(clock::time_point now);  // mutex_ held

  struct entry {
    receipt r;
    clock::time_point at;
  };
  const std::size_t capacity_;
  const clock::duration keep_for_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;        // GUARDED_BY(mutex_)
  std::deque<std::pair<clock::time_point, std::string>> order_;  // GUARDED_BY(mutex_): oldest first
  std::atomic<std::size_t> size_{0};
};

}  // namespace aoun::bot
