#pragma once
// Asynchronous HTTP/1.1 client for provider APIs (Boost 1.81 Beast, OpenSSL 3), as coroutines.
//
// Thread-safety: `send` may be called concurrently from any number of coroutines on any threads
// of a multi-threaded io_context. Each request runs on its own connection; only the idle pool is
// shared, guarded by a mutex held just to take or return a connection.
//
// Keep-alive: idle connections are pooled per (scheme, host, port), at most
// `max_idle_per_host` each, and dropped after `idle_timeout` (keep it below the providers' own
// idle timeouts). Reuse rule, chosen so that a request is never sent twice by this client:
//  1. Before reusing an idle connection, a non-blocking peek on its socket checks it is still
//     open and silent; EOF, an error or unexpected bytes (e.g. a TLS close_notify) → discarded.
//     This catches the usual stale case (the server closed it while idle) before anything is sent.
//  2. If writing on a REUSED connection fails with zero bytes written, the server cannot have
//     received the request, so it is retried once on a fresh connection.
//  3. Anything else — an error after some bytes were written, a read error even with zero
//     response bytes, a timeout, any error on a fresh connection — is returned as status 0.
//     Zero bytes read does NOT prove the request was not processed (the server may have acted and
//     then died), so it is not resent here; the caller (the outbox) decides, knowing the send is
//     ambiguous (`request_sent`). The remaining race (the server closes between our peek and our write) surfaces
//     as such a status-0 answer.
//
// Lifetime: the http_client must outlive every `send` in flight. The ssl::context is borrowed.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <boost/system/error_code.hpp>

#include "channels/detail/net.hpp"
#include "channels/provider.hpp"

namespace aoun::channels {

struct http_response {
  int status = 0;  ///< 0 = network error, TLS error, bad URL or timeout (see `ec`)
  std::string body;
  std::string retry_after;  ///< raw Retry-After header, if any
  std::string content_type;  ///< raw Content-Type header, if any
  std::string location;      ///< raw Location header, if any (redirects are NOT followed here)
  /// Set with status 0 and `ec == http::error::body_limit` when the answer's body (declared or
  /// received) exceeds the request's `body_limit`; the connection is then closed, not pooled.
  boost::system::error_code ec;
  /// The whole request was written to the server before the error: with status 0 the server may
  /// have acted on it (sent the message) and died or been slow to answer, so a resend may be a
  /// duplicate. False when nothing, or only part of the request, left.
  bool request_sent = false;
};

struct http_client_options {
  std::size_t max_idle_per_host = 4;                ///< pooled idle connections per origin
  std::chrono::seconds idle_timeout{30};            ///< idle connections older than this are closed
  std::size_t body_limit = 4 * 1024 * 1024;         ///< response body limit, bytes
};

class http_client {
 public:
  /// `tls` must be configured by the caller (verify paths / default paths); `send` sets
  /// verify_peer, SNI and host-name verification on every TLS stream.
  http_client(net::any_io_executor ex, ssl::context& tls, http_client_options opts = {});
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Sends `req` and returns the answer. Never throws for I/O errors: status 0 and `ec` set.
  /// `timeout` covers connect + TLS handshake + write + read of one attempt.
  net::awaitable<http_response> send(const provider_request& req, std::chrono::milliseconds timeout);

  /// Number of idle pooled connections (for tests and metrics).
  std::size_t idle_connections() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace aoun::channels
