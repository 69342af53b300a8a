#include "bot/auth.hpp"

#include <algorithm>

#include "bot/db.hpp"
#include "bot/http_error.hpp"
#include "bot/log.hpp"
#include "bot/password.hpp"
#include "bot/staff_logic.hpp"

namespace aoun::bot {

std::string bearer_token(const request_context& ctx, bool allow_query) {
  auto it = ctx.req.find(http::field::authorization);
  if (it != ctx.req.end()) {
    std::string_view v(it->value().data(), it->value().size());
    // The scheme is case-insensitive (RFC 7235 section 2.1).
    if (v.size() > 7 && beast::iequals(v.substr(0, 7), "bearer ")) {
      auto t = v.substr(7);
      while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
      while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
      return std::string(t);
    }
  }
  if (allow_query) {
    // A browser's WebSocket cannot send headers: the console offers the token as a subprotocol,
    // "token.<token>" beside "aoun.stream", out of the URL that proxies log. `?token=` is still
    // read, for a console page loaded before this changed.
    const auto field = ctx.req[http::field::sec_websocket_protocol];
    for (auto item : list_items(std::string_view(field.data(), field.size())))
      if (item.rfind("token.", 0) == 0) return std::string(item.substr(6));
    if (auto q = ctx.query.find("token"); q != ctx.query.end()) return q->second;
  }
  return {};
}

net::awaitable<auth_outcome> authenticate(const services& s, request_context& ctx, int min_rank, bool allow_query) {
  auth_outcome out;
  auto token = bearer_token(ctx, allow_query);
  if (token.empty() || token.size() > 256) {
    out.error = error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::unauthenticated,
                               "missing bearer token; sign in at POST /api/v1/auth/login");
    co_return out;
  }
  out.token_hash = password::sha256_hex(token);
  auto now = unix_now();
  const std::string& hash = out.token_hash;
  auto who = co_await db_read<storage::staff_row>(
      s.db, [&hash, now](storage::connection& c) { return storage::find_session_staff(c, hash, now); });
  if (!who) {
    if (who.error() == storage::errc::not_found)
      out.error = error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::unauthenticated,
                                 "the token is unknown or has expired; sign in again");
    else
      out.error = error_response(ctx.req.version(), false, api_error::unavailable, "database unavailable");
    co_return out;
  }
  if (staff_logic::role_rank(who->role) < min_rank) {
    out.error = error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::forbidden,
                               "your role may not do this");
    co_return out;
  }
  out.staff = std::move(*who);
  co_return out;
}

void login_throttle::prune(std::deque<std::int64_t>& d, std::int64_t now) const {
  while (!d.empty() && d.front() <= now - window_) d.pop_front();
}

bool login_throttle::blocked(const std::string& address, std::int64_t now) {
  std::lock_guard lock(mutex_);
  auto it = failures_.find(address);
  if (it == failures_.end()) return false;
  prune(it->second, now);
  if (it->second.empty()) {
    failures_.erase(it);
    return false;
  }
  return it->second.size() >= limit_;
}

void login_throttle::failed(const std::string& address, std::int64_t now) {
  std::lock_guard lock(mutex_);
  if (failures_.size() >= max_addresses_ && failures_.find(address) == failures_.end()) {
    // Bounded memory: forget the addresses that are not refused (their failures aged out, or
    // too few), keeping those that are; only a flood of refused ones is forgotten whole.
    for (auto it = failures_.begin(); it != failures_.end();) {
      prune(it->second, now);
      it = it->second.size() < limit_ ? failures_.erase(it) : std::next(it);
    }
    if (failures_.size() >= max_addresses_) failures_.clear();
  }
  auto& d = failures_[address];
  prune(d, now);
  d.push_back(now);
}

bool unknown_user_lockout::failed(const std::string& name, int max_failures, std::int64_t lock_seconds,
                                  std::int64_t now) {
  std::lock_guard lock(mutex_);
  if (names_.size() >= max_names_ && names_.find(name) == names_.end()) {
    for (auto it = names_.begin(); it != names_.end();) it = it->second.locked_until > now ? std::next(it) : names_.erase(it);
    if (names_.size() >= max_names_) names_.clear();
  }
  auto& e = names_[name];
  if (e.locked_until > now) return true;
  if (++e.failures < max_failures) return false;
  e.failures = 0;  // as storage::record_login_failure: the next window gets its tries again
  e.locked_until = now + lock_seconds;
  return true;
}

namespace detail {
net::thread_pool& cpu_pool() {
  static net::thread_pool pool(2);
  return pool;
}
}  // namespace detail

}  // namespace aoun::bot
