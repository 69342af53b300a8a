#pragma once
// The HTTP/1.1 server: one coroutine per connection (no explicit strand needed), keep-alive,
// a fresh parser per request with header and body limits, header/body/idle timeouts, and a
// graceful shutdown that stops accepting, closes idle connections, lets in-flight requests
// finish (answered with Connection: close), then reports that it has drained.
//
// Thread-safety: start() and shutdown() may be called from any thread; the router and metrics
// are shared read-only / internally locked.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "bot/config.hpp"
#include "bot/metrics.hpp"
#include "bot/net.hpp"
#include "bot/router.hpp"

namespace aoun::bot {

/// How long writing a response body of `bytes` may take: `base` plus the time the body takes
/// at `min_rate` bytes/s (64 KiB/s), so a 16 MiB download to a slow staff link is not cut off at
/// a fixed deadline, while a client that stops reading still is.
constexpr std::size_t min_write_rate = 64 * 1024;
/// The least body size accepted on POST /webhooks/whatsapp, whatever AOUN_BODY_LIMIT says: the
/// size Meta documents for a webhook batch.
constexpr std::size_t whatsapp_body_limit = 3 * 1024 * 1024;
/// The web chat's file upload: its body may reach server_options::upload_limit.
constexpr std::string_view upload_target = "/chat/upload";
std::chrono::milliseconds write_timeout(std::chrono::milliseconds base, std::size_t bytes);

/// Web-chat files being read or handled: at most server_options::max_uploads_in_flight in all,
/// and `per_client` from one client (its address, or its /64 for IPv6: limit_key). Thread-safe.
class upload_places {
 public:
  static constexpr int per_client = 2;
  bool enter(const std::string& client, int max_total);
  void leave(const std::string& client);

 private:
  std::mutex mutex_;
  std::map<std::string, int> by_client_;
  int total_ = 0;
};

class http_server {
 public:
  http_server(net::io_context& ioc, const server_options& opts, const router& routes, metrics& m);
  ~http_server();

  /// Binds and listens. Throws std::system_error naming the address if it cannot (start-up only).
  tcp::endpoint listen();
  void start();
  /// Stops accepting and closes idle connections; `drained` runs (on an I/O thread) once no
  /// request is in flight, or when `opts.shutdown_grace` has passed.
  void shutdown(std::function<void()> drained);
  bool stopping() const { return stopping_.load(); }
  std::size_t open_connections() const;

 private:
  struct session_state;
  net::awaitable<void> accept_loop();
  net::awaitable<void> session(tcp::socket socket, std::shared_ptr<session_state> st);
  net::awaitable<response> dispatch(request& req, const std::string& request_id, const std::string& remote,
                                    std::string& route, std::shared_ptr<void>& keep_until_written);
  void leave(const std::shared_ptr<session_state>& st);
  void check_drained();

  // Constant after construction.
  net::io_context& ioc_;
  const server_options opts_;
  const router& routes_;
  metrics& metrics_;
  tcp::acceptor acceptor_;

  std::atomic<bool> stopping_{false};
  /// Shared with each upload's release: a session destroyed after the server (at the end of a
  /// shutdown that ran out of time) still gives its place back to something alive.
  std::shared_ptr<upload_places> uploads_ = std::make_shared<upload_places>();
  /// Bytes of request bodies reserved now: opts_.bodies_in_flight_bytes at most in all, and a
  /// quarter of it from one client (its limit_key), or one client announcing lengths it never
  /// sends would hold the whole budget and every other POST would get 503. Shared for the same
  /// reason as uploads_.
  struct body_budget {
    std::mutex mutex;
    std::size_t total = 0;                          // GUARDED_BY(mutex)
    std::map<std::string, std::size_t> by_client;  // GUARDED_BY(mutex)
  };
  std::shared_ptr<body_budget> bodies_ = std::make_shared<body_budget>();
  mutable std::mutex mutex_;
  std::set<std::shared_ptr<session_state>> sessions_;  // GUARDED_BY(mutex_)
  std::map<std::string, int> per_address_;             // GUARDED_BY(mutex_): open connections by client key
  int max_connections_ = 0;                             // opts_.max_connections, within the descriptor limit
  std::function<void()> drained_;                      // GUARDED_BY(mutex_)
  std::unique_ptr<net::steady_timer> grace_timer_;  // set once, under mutex_; used on its own strand
};

}  // namespace aoun::bot
