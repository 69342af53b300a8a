#pragma once
// Keeps a copy of each file a beneficiary sends on WhatsApp, Telegram or SMS (docs/staff.md,
// "Kept copies"). The providers keep files for their own time (WhatsApp: 30 days), and a case's
// documents may be read later than that. A message with a file asks for a copy in its own
// transaction (storage::want_media_copy); this worker fetches the wanted ones, one at a time
// through the staff downloads' client (bot/media.hpp) and one of its slots, and stores them.
// A failed fetch is tried again with a growing pause, for about two days; a file the provider
// will never hand out (too large, refused, gone) is given up at once. Staff downloads read the copy
// when there is one, and the provider otherwise.
//
// Thread-safety: wake() and stop() from any thread. Lifetime: the app's; the loop holds `this`.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "bot/config.hpp"
#include "bot/media.hpp"
#include "bot/metrics.hpp"
#include "bot/net.hpp"
#include "storage/database.hpp"
#include "storage/media_copies.hpp"

namespace aoun::bot {

class media_archive {
 public:
  media_archive(net::io_context& ioc, storage::database& db, media_downloader& media, metrics& m, const config& cfg);
  void start();
  /// A copy was asked for: look now rather than at the next pause's end.
  void wake();
  void stop();

  /// Attempts before a copy is given up: the pauses double from 1 minute to 6 hours, about two
  /// days in all (WhatsApp keeps a file 30 days).
  static constexpr int max_attempts = 16;
  /// Telegram answers 400 both for an id it will never serve and for a file "temporarily
  /// unavailable": given up at this many such answers (the 4th comes about 7 minutes after the first).
  static constexpr int telegram_400_attempts = 4;
  /// The pause after `attempts` failed attempts.
  static std::chrono::seconds retry_pause(int attempts);

 private:
  net::awaitable<void> loop();
  /// One copy: fetched and kept, or its failure recorded. False if the database write failed.
  net::awaitable<bool> fetch_one(storage::media_copy_due d);

  net::strand<net::io_context::executor_type> strand_;
  storage::database& db_;
  media_downloader& media_;
  metrics& metrics_;
  const config& cfg_;
  net::steady_timer timer_;  // on strand_
  bool woken_ = false;       // on strand_
  std::atomic<bool> stopping_{false};
};

}  // namespace aoun::bot
