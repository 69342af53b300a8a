#include "channels/http_client.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include <openssl/err.h>

#include <boost/asio/ssl/host_name_verification.hpp>

#include "channels/detail/http_wire.hpp"
#include "channels/detail/url.hpp"

namespace aoun::channels {
namespace {

using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

// One HTTP/1.1 connection, plain or TLS. Used by one coroutine at a time.
struct connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  clock_type::time_point idle_since{};

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  // True when the idle socket is still open and nothing arrived on it (see the header's rule 1).
  bool still_usable() {
    if (buffer.size() != 0) return false;
    auto& sock = lowest().socket();
    if (!sock.is_open()) return false;
    // One recv(2) with MSG_DONTWAIT, straight on the descriptor: Asio's non_blocking(true),
    // receive(message_peek), non_blocking(false) costs three ioctls and a recvfrom per send.
    char byte;
    ssize_t n;
    do {
      n = ::recv(sock.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void close() {
    boost::system::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
  }
};

/// A name lookup that gives up at `deadline`. Asio's resolver cannot be cancelled (getaddrinfo
/// runs on one private thread per io_context, and `resolve || timer` waits for both branches),
/// so a lookup stuck on an unanswering DNS server would hold a send far past its deadline, and
/// a stop with it. Here the first of the answer and the deadline completes the wait; a late
/// answer finds no one waiting and is dropped. Resolver and timer live on one strand, so the
/// two handlers never run at once.
struct lookup : std::enable_shared_from_this<lookup> {
  explicit lookup(const net::any_io_executor& ex) : strand(net::make_strand(ex)), resolver(strand), timer(strand) {}
  net::strand<net::any_io_executor> strand;
  tcp::resolver resolver;
  net::steady_timer timer;
};

template <class Handler>
struct lookup_waiter {
  std::optional<Handler> handler;  // touched only on the lookup's strand
  void finish(boost::system::error_code ec, tcp::resolver::results_type r) {
    if (!handler) return;
    auto h = std::move(*handler);
    handler.reset();
    auto ex = net::get_associated_executor(h);
    net::dispatch(ex, [h = std::move(h), ec, r = std::move(r)]() mutable { h(ec, std::move(r)); });
  }
};

auto resolve_until(const net::any_io_executor& ex, const std::string& host, const std::string& port,
                   clock_type::time_point deadline) {
  return net::async_initiate<decltype(tuple_awaitable), void(boost::system::error_code, tcp::resolver::results_type)>(
      [](auto handler, std::shared_ptr<lookup> l, std::string host, std::string port, clock_type::time_point deadline) {
        using waiter_t = lookup_waiter<decltype(handler)>;
        // A cancellation (a stop: the media downloader's, say) ends the wait at once too. The
        // slot (in the caller's frame) holds the waiter weakly: the waiter holds the handler,
        // which holds that frame, and a strong hold would keep both alive for ever.
        auto slot = net::get_associated_cancellation_slot(handler);
        auto w = std::make_shared<waiter_t>();
        w->handler.emplace(std::move(handler));
        if (slot.is_connected())
          slot.assign([l, weak = std::weak_ptr<waiter_t>(w)](net::cancellation_type) {
            net::dispatch(l->strand, [l, weak] {
              auto w = weak.lock();
              if (!w) return;
              l->timer.cancel();
              w->finish(net::error::operation_aborted, {});
            });
          });
        net::dispatch(l->strand, [l, w, host = std::move(host), port = std::move(port), deadline] {
          l->timer.expires_at(deadline);
          l->timer.async_wait(net::bind_executor(l->strand, [l, w](boost::system::error_code ec) {
            if (!ec) w->finish(make_error_code(beast::error::timeout), {});
          }));
          l->resolver.async_resolve(host, port, net::bind_executor(l->strand, [l, w](boost::system::error_code ec,
                                                                                    tcp::resolver::results_type r) {
                                      l->timer.cancel();
                                      w->finish(ec, std::move(r));
                                    }));
        });
      },
      tuple_awaitable, std::make_shared<lookup>(ex), host, port, deadline);
}

}  // namespace

struct http_client::impl {
  impl(net::any_io_executor ex, ssl::context& tls, http_client_options opts)
      : ex_(std::move(ex)), tls_(tls), opts_(opts) {}

  // Constant after construction
  const net::any_io_executor ex_;
  ssl::context& tls_;
  const http_client_options opts_;

  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::unique_ptr<connection>>> idle_;  // GUARDED_BY(mutex_)

  static std::string key(const detail::url_parts& u) {
    return std::string(u.tls ? "https://" : "http://") + u.host + ":" + u.port;
  }

  std::unique_ptr<connection> take(const std::string& k) {
    std::vector<std::unique_ptr<connection>> stale;
    std::unique_ptr<connection> found;
    {
      std::lock_guard lock(mutex_);
      auto it = idle_.find(k);
      if (it == idle_.end()) return nullptr;
      auto& v = it->second;
      const auto now = clock_type::now();
      while (!v.empty()) {
        auto c = std::move(v.back());  // most recently used first: least likely to be stale
        v.pop_back();
        if (now - c->idle_since < opts_.idle_timeout) {
          found = std::move(c);
          break;
        }
        stale.push_back(std::move(c));
      }
    }
    for (auto& c : stale) c->close();
    return found;
  }

  void put(const std::string& k, std::unique_ptr<connection> c) {
    c->idle_since = clock_type::now();
    {
      std::lock_guard lock(mutex_);
      auto& v = idle_[k];
      if (v.size() < opts_.max_idle_per_host) {
        v.push_back(std::move(c));
        return;
      }
    }
    c->close();
  }

  net::awaitable<std::tuple<boost::system::error_code, std::unique_ptr<connection>>> open(
      const detail::url_parts& u, clock_type::time_point deadline) {
    auto c = std::make_unique<connection>();
    auto [rec, results] = co_await resolve_until(ex_, u.host, u.port, deadline);
    if (rec) co_return std::make_tuple(rec, nullptr);

    if (u.tls) {
      c->secure.emplace(ex_, tls_);
      // SNI, then verify the chain (verify_peer) and that the certificate names this host.
      if (!SSL_set_tlsext_host_name(c->secure->native_handle(), u.host.c_str()))
        co_return std::make_tuple(
            boost::system::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()),
            nullptr);
      c->secure->set_verify_mode(ssl::verify_peer);
      c->secure->set_verify_callback(ssl::host_name_verification(u.host));
    } else {
      c->plain.emplace(ex_);
    }
    c->lowest().expires_at(deadline);
    auto [cec, ep] = co_await c->lowest().async_connect(results, tuple_awaitable);
    if (cec) co_return std::make_tuple(cec, nullptr);
    if (u.tls) {
      c->lowest().expires_at(deadline);
      auto [hec] = co_await c->secure->async_handshake(ssl::stream_base::client, tuple_awaitable);
      if (hec) co_return std::make_tuple(hec, nullptr);
    }
    co_return std::make_tuple(boost::system::error_code{}, std::move(c));
  }
};

http_client::http_client(net::any_io_executor ex, ssl::context& tls, http_client_options opts)
    : impl_(std::make_shared<impl>(std::move(ex), tls, opts)) {}

http_client::~http_client() {
  std::lock_guard lock(impl_->mutex_);
  for (auto& [k, v] : impl_->idle_)
    for (auto& c : v) c->close();
  impl_->idle_.clear();
}

std::size_t http_client::idle_connections() const {
  std::lock_guard lock(impl_->mutex_);
  std::size_t n = 0;
  for (const auto& [k, v] : impl_->idle_) n += v.size();
  return n;
}

net::awaitable<http_response> http_client::send(const provider_request& preq,
                                                std::chrono::milliseconds timeout) {
  const std::shared_ptr<impl> self = impl_;  // the pool outlives this call
  http_response out;
  const auto u = detail::split_url(preq.url);
  if (!u) {
    out.ec = make_error_code(boost::system::errc::invalid_argument);
    co_return out;
  }
  const auto deadline = clock_type::now() + timeout;

  const http::verb verb = http::string_to_verb(preq.method);
  if (verb == http::verb::unknown) {  // req.method(unknown) would throw
    out.ec = make_error_code(boost::system::errc::invalid_argument);
    co_return out;
  }
  http::request<http::string_body> req;
  req.method(verb);
  req.target(u->target);
  req.version(11);
  const bool ipv6 = u->host.find(':') != std::string::npos;
  std::string host_header = ipv6 ? "[" + u->host + "]" : u->host;
  if (!u->default_port) host_header += ":" + u->port;
  req.set(http::field::host, host_header);
  req.set(http::field::user_agent, "aoun/0.1");
  for (const auto& [name, value] : preq.headers) req.set(name, value);
  if (!preq.content_type.empty()) req.set(http::field::content_type, preq.content_type);
  req.body() = preq.body;
  req.keep_alive(true);
  req.prepare_payload();
  // Written as one buffer (detail/http_wire.hpp); a string body is never chunked here.
  const std::string wire = detail::to_wire(req);

  const std::string pool_key = impl::key(*u);
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<connection> conn;
    bool reused = false;
    if (attempt == 0) {
      while ((conn = self->take(pool_key))) {
        if (conn->still_usable()) {
          reused = true;
          break;
        }
        conn->close();
      }
    }
    if (!conn) {
      auto [ec, fresh] = co_await self->open(*u, deadline);
      if (ec) {
        out.ec = ec;
        co_return out;
      }
      conn = std::move(fresh);
    }

    conn->lowest().expires_at(deadline);
    boost::system::error_code wec;
    std::size_t written = 0;
    if (conn->secure)
      std::tie(wec, written) = co_await net::async_write(*conn->secure, net::buffer(wire), tuple_awaitable);
    else
      std::tie(wec, written) = co_await net::async_write(*conn->plain, net::buffer(wire), tuple_awaitable);
    if (wec) {
      conn->close();
      // Rule 2: nothing reached the server on a reused connection → one fresh attempt.
      if (reused && written == 0 && wec != beast::error::timeout) continue;
      out.ec = wec;
      co_return out;
    }

    out.request_sent = true;
    http::response_parser<http::string_body> parser;
    parser.body_limit(preq.body_limit ? preq.body_limit : self->opts_.body_limit);
    conn->lowest().expires_at(deadline);
    boost::system::error_code rec;
    if (conn->secure)
      std::tie(rec, std::ignore) = co_await http::async_read(*conn->secure, conn->buffer, parser, tuple_awaitable);
    else
      std::tie(rec, std::ignore) = co_await http::async_read(*conn->plain, conn->buffer, parser, tuple_awaitable);
    if (rec) {
      conn->close();  // Rule 3: the request may have been received; never resend it here.
      out.ec = rec;
      co_return out;
    }

    auto res = parser.release();
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    if (auto it = res.find(http::field::retry_after); it != res.end()) out.retry_after = std::string(it->value());
    if (auto it = res.find(http::field::content_type); it != res.end()) out.content_type = std::string(it->value());
    if (auto it = res.find(http::field::location); it != res.end()) out.location = std::string(it->value());
    conn->lowest().expires_never();
    if (res.keep_alive() && conn->buffer.size() == 0)
      self->put(pool_key, std::move(conn));
    else
      conn->close();
    co_return out;
  }
  co_return out;  // not reached: attempt 1 never `continue`s
}

}  // namespace aoun::channels
