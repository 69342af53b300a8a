#include "bot/media_archive.hpp"

#include <algorithm>

#include "bot/db.hpp"
#include "bot/log.hpp"
#include "bot/services.hpp"
#include "storage/media_copies.hpp"

namespace aoun::bot {

using channels::media::failure;

media_archive::media_archive(net::io_context& ioc, storage::database& db, media_downloader& media, metrics& m,
                             const config& cfg)
    : strand_(net::make_strand(ioc)), db_(db), media_(media), metrics_(m), cfg_(cfg), timer_(strand_) {
  metrics_.count("media_copies_kept", 0);
  metrics_.count("media_copies_given_up", 0);
}

std::chrono::seconds media_archive::retry_pause(int attempts) {
  const int doubling = std::clamp(attempts, 0, 9);
  return std::min(std::chrono::seconds(60 << doubling), std::chrono::seconds(6 * 3600));
}

void media_archive::start() {
  if (!cfg_.media.keep_copies) return;
  net::co_spawn(strand_, loop(), net::detached);
}

void media_archive::wake() {
  net::post(strand_, [this] {
    woken_ = true;
    timer_.cancel();
  });
}

void media_archive::stop() {
  stopping_ = true;
  wake();
}

net::awaitable<void> media_archive::loop() {
  constexpr int batch = 8;
  // After a database write failed (a full disk, a lock): fetching again at once would download
  // the same files from the provider over and over. The pause doubles while it lasts.
  std::chrono::seconds write_backoff(0);
  while (!stopping_) {
    woken_ = false;
    const auto now = unix_now();
    auto due = co_await db_read<std::vector<storage::media_copy_due>>(
        db_, [now](storage::connection& c) { return storage::due_media_copies(c, now, batch); });
    bool busy = false, write_failed = false;
    if (!due) {
      log::error("media_copy_scan_failed", {{"error", due.error().message()}});
      write_failed = true;
    } else {
      for (auto& d : *due) {
        if (stopping_) co_return;
        // Staff downloads come first: the archive takes a slot only when one is free.
        auto slot = media_.try_acquire();
        if (!slot) {
          busy = true;
          break;
        }
        if (!co_await fetch_one(d)) {
          write_failed = true;
          break;
        }
      }
    }
    if (stopping_) co_return;
    std::chrono::seconds pause(60);
    if (write_failed) {
      write_backoff = std::min(std::max(write_backoff * 2, std::chrono::seconds(60)), std::chrono::seconds(3600));
      pause = write_backoff;
    } else if (busy) {
      write_backoff = std::chrono::seconds(0);
      pause = std::chrono::seconds(5);
    } else if (static_cast<int>(due->size()) == batch) {
      write_backoff = std::chrono::seconds(0);
      continue;  // more are due now (each row done has moved on: kept, failed or later)
    } else {
      write_backoff = std::chrono::seconds(0);
      auto next = co_await db_read<std::optional<std::int64_t>>(
          db_, [](storage::connection& c) { return storage::next_media_copy_at(c); });
      if (next && *next) pause = std::chrono::seconds(std::clamp<std::int64_t>(**next - unix_now(), 1, 60));
    }
    if (woken_ && !write_failed) continue;
    timer_.expires_after(pause);
    co_await timer_.async_wait(use_tuple);
  }
}

net::awaitable<bool> media_archive::fetch_one(storage::media_copy_due d) {
  auto ch = channels::kind_from_string(d.channel);
  const bool enabled = ch && media_.enabled(*ch);
  channels::media::fetched got;
  if (enabled) got = co_await media_.fetch(*ch, d.media_id);
  if (stopping_) co_return true;  // cut short by the shutdown: not an attempt
  const std::string result(!enabled                     ? "channel_off"
                           : got.error == failure::none ? "ok"
                                                        : std::string(channels::media::to_string(got.error)));
  storage::result<int> w = 0;
  if (enabled && got.error == failure::none) {
    const auto mime = media_http::content_type(got.content_type, got.mime, "");
    w = co_await db_write<int>(db_, storage::rerun::safe, [&d, &mime, &got](storage::connection& c) -> storage::result<int> {
      if (auto ec = storage::keep_media_copy(c, d, mime, got.file_path, got.body)) return ec;
      return 1;
    });
    if (w) {
      metrics_.count("media_copies_kept");
      log::info("media_copy_kept", {{"channel", d.channel}, {"bytes", static_cast<std::int64_t>(got.body.size())}});
    }
  } else {
    // What the provider will never hand out is given up now; the rest is tried again later
    // (a channel switched off for now included). WhatsApp answers a refused token with 401 and
    // sometimes 400 (channels/whatsapp.cpp), so a 400 is never final from it. Telegram's 400
    // says "invalid file_id" or "file is too big", but also "wrong file_id or the file is
    // temporarily unavailable": a copy of evidence is not given up on one of those, only after
    // telegram_400_attempts of them (about 7 minutes).
    const int status = got.provider_status;
    const bool final = d.attempts + 1 >= max_attempts ||
                       (enabled && (got.error == failure::too_large || got.error == failure::bad_id ||
                                    got.error == failure::refused_url ||
                                    (got.error == failure::provider_error &&
                                     (status == 404 || status == 410 ||
                                      (status == 400 && ch == channels::kind::telegram && d.attempts + 1 >= telegram_400_attempts)))));
    std::optional<std::int64_t> retry_at;
    if (!final) retry_at = unix_now() + retry_pause(d.attempts).count();
    std::string error = result;
    if (status) error += " (http " + std::to_string(status) + ")";
    w = co_await db_write<int>(db_, storage::rerun::safe, [&d, &error, retry_at](storage::connection& c) -> storage::result<int> {
      if (auto ec = storage::media_copy_attempt_failed(c, d, error, retry_at)) return ec;
      return 1;
    });
    if (w && final) metrics_.count("media_copies_given_up");
    log::warn("media_copy_failed", {{"channel", d.channel}, {"result", result}, {"provider_status", static_cast<std::int64_t>(status)},
                                    {"given_up", final}});
  }
  if (!w) log::error("media_copy_write_failed", {{"error", w.error().message()}});
  co_return static_cast<bool>(w);
}

}  // namespace aoun::bot
