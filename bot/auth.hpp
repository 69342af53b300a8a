#pragma once
// Staff authentication for /api/v1: bearer tokens (random, stored only as SHA-256 in
// `sessions`), roles, a per-address throttle of failed sign-ins, and a small pool for the
// CPU-heavy scrypt work so that it never runs on an I/O thread.
//
// Thread-safety: everything here may be used from any thread.

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "bot/net.hpp"
#include "bot/router.hpp"
#include "bot/services.hpp"
#include "storage/staff.hpp"

namespace aoun::bot {

/// The token of "Authorization: Bearer <token>", or, when `allow_query` (a WebSocket upgrade:
/// browsers cannot set its headers), of a "token.<token>" subprotocol or `?token=`. Empty when
/// there is none.
std::string bearer_token(const request_context& ctx, bool allow_query);

struct auth_outcome {
  std::optional<storage::staff_row> staff;  ///< set when allowed
  response error;                           ///< 401 / 403 / 503 otherwise
  std::string token_hash;
};

/// Checks the bearer token and that the staff member's role is at least `min_rank`
/// (staff_logic::agent / supervisor / admin). Missing, unknown or expired token → 401, a lower
/// role → 403.
net::awaitable<auth_outcome> authenticate(const services& s, request_context& ctx, int min_rank,
                                          bool allow_query = false);

/// Failed sign-ins per client address: at most `limit` in a sliding `window`; beyond that the
/// address is refused (429) until old failures age out. Guards against guessing across many
/// usernames, which the per-account lockout cannot see.
class login_throttle {
 public:
  /// At most `max_addresses` addresses are remembered: past that, those not (yet) refused are
  /// forgotten first, so a flood of new addresses (IPv6 /64s are cheap) does not wipe the
  /// count of the one actually guessing.
  login_throttle(std::size_t limit, std::int64_t window_seconds, std::size_t max_addresses = 100000)
      : limit_(limit), window_(window_seconds), max_addresses_(max_addresses) {}
  bool blocked(const std::string& address, std::int64_t now);
  void failed(const std::string& address, std::int64_t now);

 private:
  void prune(std::deque<std::int64_t>& d, std::int64_t now) const;
  const std::size_t limit_;
  const std::int64_t window_;
  const std::size_t max_addresses_;
  std::mutex mutex_;
  std::map<std::string, std::deque<std::int64_t>> failures_;  // GUARDED_BY(mutex_)
};

/// The per-account lockout, for usernames that do not exist: without it the fifth wrong
/// password would answer 429 "locked" for a real account and 401 for a made-up one, which tells
/// who exists. Mirrors storage::record_login_failure: `max_failures` consecutive failures lock
/// the name for `lock_seconds`; while locked, a try is refused and not counted.
class unknown_user_lockout {
 public:
  /// At most `max_names` names are remembered; past that, those not locked are forgotten first.
  explicit unknown_user_lockout(std::size_t max_names = 100000) : max_names_(max_names) {}
  /// Records a failed sign-in as `name`; true when the name is locked (by this one or before).
  bool failed(const std::string& name, int max_failures, std::int64_t lock_seconds, std::int64_t now);

 private:
  struct entry {
    int failures = 0;
    std::int64_t locked_until = 0;
  };
  const std::size_t max_names_;
  std::mutex mutex_;
  std::map<std::string, entry> names_;  // GUARDED_BY(mutex_)
};

namespace detail {
/// Two threads for password hashing (scrypt, 32 MiB, ~0.1 s each).
net::thread_pool& cpu_pool();
}  // namespace detail

/// Runs `f()` (returning T) on the CPU pool and resumes the caller on its own executor. A plain
/// function, not a coroutine, for the same GCC 12 reason as db.hpp; `f` should capture only
/// references to the caller's locals (it finishes before the co_await returns).
template <class T, class F>
auto off_io(F f) {
  return net::async_initiate<decltype(net::use_awaitable), void(T)>(
      [](auto handler, F f) {
        auto ex = net::get_associated_executor(handler);
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        net::post(detail::cpu_pool(), [f = std::move(f), h, ex]() mutable {
          auto out = std::make_shared<T>(f());
          net::post(ex, [h, out]() mutable { (*h)(std::move(*out)); });
        });
      },
      net::use_awaitable, std::move(f));
}

}  // namespace aoun::bot
