#include "bot/http_server.hpp"

#include <array>
#include <chrono>
#include <limits>
#include <random>
#include <tuple>

#include <sys/resource.h>

#include "bot/client_limits.hpp"
#include "bot/http_error.hpp"
#include "bot/log.hpp"
#include "channels/detail/http_wire.hpp"

namespace aoun::bot {

struct http_server::session_state {
  net::strand<net::io_context::executor_type> strand;
  beast::tcp_stream* stream = nullptr;  // valid while the session coroutine runs
  bool idle = true;                     // waiting for a request; touched only on `strand`
  std::string client;                   // counted in per_address_ under this key (empty: not counted)
  explicit session_state(net::io_context& ioc) : strand(net::make_strand(ioc)) {}
};

namespace {

/// What a connection's read buffer may hold: a header (16 KiB at most) and what comes right
/// behind it. Bodies with a Content-Length go into the request as they come.
constexpr std::size_t max_read_buffer = 64 * 1024;

std::string new_request_id() {
  static const std::uint64_t prefix = std::random_device{}();
  static std::atomic<std::uint64_t> counter{0};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08llx-%llx", static_cast<unsigned long long>(prefix & 0xffffffffu),
                static_cast<unsigned long long>(++counter));
  return buf;
}

// Errors that only mean "the peer went away" or "we cancelled it": not worth a warning
// (Beast server-flex's fail()). https://github.com/boostorg/beast/issues/38 for stream_truncated.
bool expected(const boost::system::error_code& ec) {
  return ec == net::error::operation_aborted || ec == http::error::end_of_stream ||
         ec == net::error::connection_reset || ec == net::error::eof || ec == beast::error::timeout ||
         ec == websocket::error::closed;
}

/// Whether a request path reaches `route` ("/a/b") as the router matches it: slashes only
/// separate segments, so "//chat/upload/" and "chat/upload" are "/chat/upload" too, and the body
/// limit follows the route the request reaches. No allocation: it runs on every request.
bool same_route(std::string_view path, std::string_view route) {
  std::size_t i = 0, j = 0;
  for (;;) {
    while (i < path.size() && path[i] == '/') ++i;
    while (j < route.size() && route[j] == '/') ++j;
    if (i == path.size() || j == route.size()) return i == path.size() && j == route.size();
    const auto a = path.find('/', i), b = route.find('/', j);
    const auto seg_a = path.substr(i, a == std::string_view::npos ? std::string_view::npos : a - i);
    const auto seg_b = route.substr(j, b == std::string_view::npos ? std::string_view::npos : b - j);
    if (seg_a != seg_b) return false;
    i += seg_a.size();
    j += seg_b.size();
  }
}

}  // namespace

bool upload_places::enter(const std::string& client, int max_total) {
  std::lock_guard lock(mutex_);
  auto& mine = by_client_[client];
  if (total_ >= max_total || mine >= per_client) {
    if (mine == 0) by_client_.erase(client);
    return false;
  }
  ++mine;
  ++total_;
  return true;
}

void upload_places::leave(const std::string& client) {
  std::lock_guard lock(mutex_);
  auto it = by_client_.find(client);
  if (it == by_client_.end()) return;
  --total_;
  if (--it->second == 0) by_client_.erase(it);
}

std::chrono::milliseconds write_timeout(std::chrono::milliseconds base, std::size_t bytes) {
  return base + std::chrono::milliseconds(static_cast<std::int64_t>(bytes / min_write_rate * 1000 +
                                                                    bytes % min_write_rate * 1000 / min_write_rate));
}

http_server::http_server(net::io_context& ioc, const server_options& opts, const router& routes, metrics& m)
    : ioc_(ioc), opts_(opts), routes_(routes), metrics_(m), acceptor_(net::make_strand(ioc)) {
  // Each connection is a descriptor, and so is every database file, outbound connection and
  // media download: the soft limit (1,024 on Debian) is raised as far as the hard one allows,
  // and connections are capped below it with room for the rest.
  constexpr rlim_t reserve = 512;
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    const rlim_t want = static_cast<rlim_t>(opts_.max_connections) + reserve;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
      rlimit raised = lim;
      raised.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
    }
  }
  metrics_.count("http_connections_refused", 0);  // listed from the start
  max_connections_ = opts_.max_connections;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur > 0) {
    const auto room = lim.rlim_cur > reserve + 16 ? lim.rlim_cur - reserve : 16;
    if (room < static_cast<rlim_t>(max_connections_)) {
      max_connections_ = static_cast<int>(room);
      log::warn("http_connections_capped", {{"max_connections", static_cast<std::int64_t>(max_connections_)},
                                            {"descriptor_limit", static_cast<std::int64_t>(lim.rlim_cur)}});
    }
  }
}

http_server::~http_server() = default;

tcp::endpoint http_server::listen() {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(opts_.host, ec);
  if (ec) throw std::system_error(ec, "AOUN_LISTEN: bad address '" + opts_.host + "'");
  tcp::endpoint ep(addr, opts_.port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(net::socket_base::reuse_address(true));
  acceptor_.bind(ep, ec);
  if (ec) throw std::system_error(ec, "AOUN_LISTEN: cannot bind " + opts_.host + ":" + std::to_string(opts_.port));
  acceptor_.listen(net::socket_base::max_listen_connections);
  return acceptor_.local_endpoint();
}

void http_server::start() {
  net::co_spawn(acceptor_.get_executor(), accept_loop(), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log::error("accept_loop_failed", {{"what", ex.what()}});
      }
    }
  });
}

std::size_t http_server::open_connections() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

net::awaitable<void> http_server::accept_loop() {
  for (;;) {
    auto st = std::make_shared<session_state>(ioc_);
    auto [ec, socket] = co_await acceptor_.async_accept(st->strand, use_tuple);
    if (ec) {
      if (stopping_ || ec == net::error::operation_aborted) co_return;
      log::warn("accept_failed", {{"error", ec.message()}});
      // Out of descriptors and the like: pause instead of spinning.
      net::steady_timer t(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await t.async_wait(use_tuple);
      continue;
    }
    // One client may not hold every descriptor (each connection is one, and a connection with
    // nothing sent is kept for the header timeout, an idle one for the idle timeout): past the
    // caps a new connection is closed at once, before anything is read.
    std::string key;
    {
      boost::system::error_code aec;
      const auto peer = socket.remote_endpoint(aec);
      if (!aec && !opts_.trusted.contains(peer.address())) key = limit_key(peer.address().to_string());
    }
    bool refused = false;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) co_return;
      if (static_cast<int>(sessions_.size()) >= max_connections_ ||
          (!key.empty() && per_address_[key] >= opts_.max_connections_per_address)) {
        refused = true;
        if (!key.empty() && per_address_[key] == 0) per_address_.erase(key);
      } else {
        if (!key.empty()) ++per_address_[key];
        st->client = std::move(key);
        sessions_.insert(st);
      }
    }
    if (refused) {
      metrics_.count("http_connections_refused");
      static std::atomic<std::int64_t> last_logged{0};
      const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
      if (log::once_per(last_logged, now_s))
        log::warn("http_connections_refused", {{"open", static_cast<std::int64_t>(open_connections())},
                                               {"max", static_cast<std::int64_t>(max_connections_)},
                                               {"per_address", static_cast<std::int64_t>(opts_.max_connections_per_address)}});
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    net::co_spawn(st->strand, session(std::move(socket), st), [this, st](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error("session_failed", {{"what", ex.what()}});
        }
      }
      leave(st);
    });
  }
}

void http_server::leave(const std::shared_ptr<session_state>& st) {
  {
    std::lock_guard lock(mutex_);
    sessions_.erase(st);
    if (!st->client.empty())
      if (auto it = per_address_.find(st->client); it != per_address_.end() && --it->second <= 0) per_address_.erase(it);
  }
  check_drained();
}

void http_server::check_drained() {
  std::function<void()> done;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ || !sessions_.empty() || !drained_) return;
    done = std::move(drained_);
    drained_ = nullptr;
    // On the timer's strand, after its wait (posted there first, under this lock): a timer is
    // not to be touched from two threads at once.
    if (grace_timer_) net::post(grace_timer_->get_executor(), [t = grace_timer_.get()] { t->cancel(); });
  }
  done();
}

void http_server::shutdown(std::function<void()> drained) {
  std::vector<std::shared_ptr<session_state>> open;
  {
    std::lock_guard lock(mutex_);
    if (stopping_.exchange(true)) return;
    drained_ = std::move(drained);
    open.assign(sessions_.begin(), sessions_.end());
    // Made, and its wait posted, before check_drained (on any I/O thread) can see it.
    grace_timer_ = std::make_unique<net::steady_timer>(net::make_strand(ioc_), opts_.shutdown_grace);
    net::post(grace_timer_->get_executor(), [this, t = grace_timer_.get()] {
      t->async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        std::function<void()> done;
        {
          std::lock_guard lock(mutex_);
          done = std::move(drained_);
          drained_ = nullptr;
        }
        if (done) {
          log::warn("shutdown_grace_expired", {{"open_connections", static_cast<std::int64_t>(open_connections())}});
          done();
        }
      });
    });
  }
  net::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  // Idle keep-alive connections are closed now; busy ones finish their request first.
  for (auto& st : open)
    net::post(st->strand, [st] {
      if (st->idle && st->stream != nullptr) st->stream->cancel();
    });
  check_drained();
}

net::awaitable<response> http_server::dispatch(request& req, const std::string& request_id, const std::string& remote,
                                               std::string& route, std::shared_ptr<void>& keep_until_written) {
  auto target = std::string_view(req.target().data(), req.target().size());
  auto qpos = target.find('?');
  auto path = target.substr(0, qpos);
  auto m = routes_.find(req.method(), path, false);
  if (m.http == nullptr) {
    if (!m.allow.empty()) {
      route = "method_not_allowed";
      auto res = error_response(req.version(), req.keep_alive(), api_error::bad_method,
                                "method " + std::string(req.method_string()) + " not allowed here");
      res.set(http::field::allow, m.allow);
      co_return res;
    }
    route = "not_found";
    co_return error_response(req.version(), req.keep_alive(), api_error::not_found, "no such resource");
  }
  route = m.route;
  request_context ctx{req, path, qpos == std::string_view::npos ? std::map<std::string, std::string>{}
                                                                : parse_query(target.substr(qpos + 1)),
                      std::move(m.params), request_id, m.route, remote};
  try {
    auto res = co_await (*m.http)(ctx);
    keep_until_written = std::move(ctx.keep_until_written);
    co_return res;
  } catch (const std::exception& e) {
    // A handler bug must cost one 500, never the process.
    log::error("handler_failed", {{"rid", request_id}, {"route", route}, {"what", e.what()}});
  }
  co_return error_response(req.version(), false, api_error::internal, "internal error");
}

net::awaitable<void> http_server::session(tcp::socket socket, std::shared_ptr<session_state> st) {
  beast::tcp_stream stream(std::move(socket));
  st->stream = &stream;
  struct clear_on_exit {
    session_state& s;
    ~clear_on_exit() { s.stream = nullptr; }
  } guard{*st};
  std::string remote;
  {
    boost::system::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string();
  }
  // Capped: Beast 1.81 counts neither a chunk's size line nor the trailers against the header
  // or body limits, so a client sending "1;" and then endless bytes without a line end would
  // grow the buffer without end. Past the cap the read fails with buffer_overflow (a 400
  // below). A Content-Length body does not sit here: the parser moves it into the request.
  beast::flat_buffer buffer(max_read_buffer);
  // Beast reads at most the buffer's free capacity (and at least 512 bytes) per recv(2): a
  // buffer that grew to just fit one request takes two reads for the next one of ~1 KiB more.
  // 8 KiB holds a provider's webhook in one read.
  buffer.reserve(8 * 1024);
  bool first = true;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    // Each route's body limit is set once its header is read (below): Beast would otherwise
    // refuse a Content-Length over a limit as the header ends, before we know the route.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    st->idle = true;
    // While stopping, a request already on the wire is still served (briefly waited for), so
    // that nothing a client managed to send is dropped; an idle connection is simply closed.
    stream.expires_after(stopping_ ? std::chrono::milliseconds(200)
                                   : std::chrono::milliseconds(first ? opts_.header_timeout : opts_.idle_timeout));
    first = false;
    auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    st->idle = false;
    auto started = std::chrono::steady_clock::now();
    // The route's body limit, set once its header is read; a 413 names it (the chat page says it
    // in the visitor's words).
    std::size_t limit = 0;
    auto answer_error = [&](api_error e, std::string_view msg, const char* route) -> net::awaitable<void> {
      auto res = e == api_error::too_large ? too_large_response(11, false, msg, limit) : error_response(11, false, e, msg);
      metrics_.observe(route, res.result_int(),
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      stream.expires_after(std::chrono::seconds(5));
      co_await http::async_write(stream, res, use_tuple);
    };
    // After refusing a request whose body is still coming: a socket closed with unread bytes
    // sends a reset, and a browser then shows "connection reset" instead of our answer. So stop
    // sending, and read and drop what comes for a moment before closing.
    auto linger = [&]() -> net::awaitable<void> {
      beast::error_code sec;
      stream.socket().shutdown(tcp::socket::shutdown_send, sec);
      stream.expires_after(std::chrono::seconds(2));
      std::array<char, 16 * 1024> sink;
      for (std::size_t dropped = 0; dropped < 32 * 1024 * 1024;) {
        auto [rec, rn] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
        if (rec) break;
        dropped += rn;
      }
    };
    if (ec) {
      // After the answer, what the client still sends is read and dropped for a moment before
      // closing: closed with unread bytes, the kernel would reset the connection, and the
      // client would see "connection reset" instead of the answer.
      if (ec == http::error::header_limit) {
        co_await answer_error(api_error::malformed, "request header is too large", "malformed");
        co_await linger();
      } else if (ec.category() == make_error_code(http::error::end_of_stream).category() && ec != http::error::end_of_stream &&
                 ec != http::error::partial_message) {
        // A request line or header Beast could not parse: tell the client, then close.
        co_await answer_error(api_error::malformed, "malformed request", "malformed");
        co_await linger();
      } else if (!expected(ec)) {
        log::debug("read_failed", {{"error", ec.message()}});
      }
      break;
    }
    // A Transfer-Encoding whose last coding is not chunked leaves the body's end unknown
    // (RFC 9112 §6.1: answer 400 and close). Beast takes such a request as one without a
    // body, and its body would be read as the next request: behind a proxy that frames it
    // otherwise, a way to slip a request past the proxy's rules.
    if (parser.get().count(http::field::transfer_encoding) > 0 && !parser.chunked()) {
      co_await answer_error(api_error::malformed, "Transfer-Encoding must end with chunked", "malformed");
      break;
    }
    // Behind a trusted reverse proxy the client is named in X-Forwarded-For (every such
    // header, in order, is one list). Without AOUN_TRUSTED_PROXIES nothing is read.
    std::string client = remote;
    if (!opts_.trusted.empty()) {
      std::string forwarded;
      for (auto [it, end] = parser.get().equal_range("X-Forwarded-For"); it != end; ++it)
        forwarded.append(forwarded.empty() ? "" : ",").append(it->value());
      client = client_address(remote, forwarded, opts_.trusted);
    }
    // A web-chat file is held in memory until it is stored: only so many are read at once,
    // and only a few of them from one client (or one client could hold every place).
    std::shared_ptr<void> upload_slot;
    std::shared_ptr<void> body_slot;  // this request's share of bodies_
    auto body_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(opts_.body_timeout);
    {
      const auto& h = parser.get();
      const auto target = std::string_view(h.target().data(), h.target().size());
      const auto path = target.substr(0, target.find('?'));
      const bool post = h.method() == http::verb::post;
      const bool whatsapp = post && opts_.whatsapp_large_bodies && same_route(path, "/webhooks/whatsapp");
      const bool upload = post && !whatsapp && opts_.upload_limit > 0 && same_route(path, upload_target);
      limit = whatsapp ? std::max(opts_.body_limit, whatsapp_body_limit)
              : upload ? opts_.upload_limit
                       : opts_.body_limit;
      if (parser.content_length() && *parser.content_length() > limit) {
        co_await answer_error(api_error::too_large, "request body is larger than the limit", "too_large");
        co_await linger();
        break;
      }
      if (upload) {
        auto key = limit_key(client);
        if (!uploads_->enter(key, opts_.max_uploads_in_flight)) {
          co_await answer_error(api_error::unavailable, "too many files are being sent; try again in a moment",
                                "unavailable");
          co_await linger();
          break;
        }
        upload_slot = std::shared_ptr<void>(nullptr, [places = uploads_, key = std::move(key)](void*) { places->leave(key); });
        // A file takes its time on a slow link: the deadline grows with its size, as a
        // download's does (write_timeout), instead of cutting a photo off at 30 s.
        body_timeout = write_timeout(body_timeout, parser.content_length().value_or(limit));
      } else if (const std::size_t want = parser.content_length().value_or(parser.chunked() ? limit : 0); want > 0) {
        // Its share of the budget for bodies in memory, as its header names it (a chunked one
        // may grow to the limit): past the budget, or past its client's quarter of it, 503
        // before a byte of it is read.
        auto key = limit_key(client);
        bool reserved = false;
        {
          std::lock_guard lock(bodies_->mutex);
          auto& mine = bodies_->by_client[key];
          if (bodies_->total + want <= opts_.bodies_in_flight_bytes && mine + want <= opts_.bodies_in_flight_bytes / 4) {
            bodies_->total += want;
            mine += want;
            reserved = true;
          } else if (mine == 0) {
            bodies_->by_client.erase(key);
          }
        }
        if (!reserved) {
          auto res = error_response(11, false, api_error::unavailable, "the server is busy; try again in a moment");
          res.set(http::field::retry_after, "1");
          metrics_.observe("unavailable", res.result_int(),
                           std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
          stream.expires_after(std::chrono::seconds(5));
          co_await http::async_write(stream, res, use_tuple);
          co_await linger();
          break;
        }
        body_slot = std::shared_ptr<void>(nullptr, [budget = bodies_, key = std::move(key), want](void*) {
          std::lock_guard lock(budget->mutex);
          budget->total -= want;
          if (auto it = budget->by_client.find(key); it != budget->by_client.end() && (it->second -= want) == 0)
            budget->by_client.erase(it);
        });
      }
      parser.body_limit(limit);  // chunked bodies: counted as they come
    }
    stream.expires_after(body_timeout);
    if (!parser.is_done()) {
      auto [bec, bn] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (bec) {
        if (bec == http::error::body_limit) {
          co_await answer_error(api_error::too_large, "request body is larger than the limit", "too_large");
          co_await linger();
        } else if (bec.category() == make_error_code(http::error::end_of_stream).category() && bec != http::error::end_of_stream &&
                 bec != http::error::partial_message) {
          co_await answer_error(api_error::malformed, "malformed request body", "malformed");
          if (bec == http::error::buffer_overflow) co_await linger();  // the rest may still be coming
        }
        break;
      }
    }
    request req = parser.release();
    auto rid = new_request_id();
    stream.expires_never();

    if (websocket::is_upgrade(req)) {
      auto target = std::string_view(req.target().data(), req.target().size());
      auto qpos = target.find('?');
      auto m = routes_.find(http::verb::get, target.substr(0, qpos), true);
      if (m.ws != nullptr) {
        request_context ctx{req, target.substr(0, qpos),
                            qpos == std::string_view::npos ? std::map<std::string, std::string>{}
                                                           : parse_query(target.substr(qpos + 1)),
                            std::move(m.params), rid, m.route, client};
        metrics_.observe(m.route, 101, 0);
        st->stream = nullptr;  // the WebSocket owns the connection now
        co_await (*m.ws)(std::move(stream), ctx);
        co_return;
      }
    }

    std::string route;
    std::shared_ptr<void> keep_until_written;  // released when this iteration ends: after the write
    response res = co_await dispatch(req, rid, client, route, keep_until_written);
    bool keep_alive = req.keep_alive() && res.keep_alive() && !stopping_;
    res.keep_alive(keep_alive);
    res.set("X-Request-Id", rid);
    if (req.method() == http::verb::head) res.body().clear();
    // Counted before the write, so a client that reads /metrics right after this response
    // already sees it (the latency covers reading the request and the handler).
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_.observe(route, res.result_int(), secs);
    stream.expires_after(write_timeout(opts_.body_timeout, res.body().size()));
    // One contiguous buffer: Beast's serializer costs more than the rest of the write.
    boost::system::error_code wec;
    if (channels::detail::wire_ok(res)) {
      const std::string wire = channels::detail::to_wire(res);
      std::tie(wec, std::ignore) = co_await net::async_write(stream, net::buffer(wire), use_tuple);
    } else {
      std::tie(wec, std::ignore) = co_await http::async_write(stream, res, use_tuple);
    }
    log::info("http", {{"rid", rid},
                       {"method", std::string(req.method_string())},
                       {"route", route},
                       {"status", static_cast<std::int64_t>(res.result_int())},
                       {"ms", secs * 1000.0}});
    if (wec) {
      if (!expected(wec)) log::debug("write_failed", {{"rid", rid}, {"error", wec.message()}});
      break;
    }
    if (!keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace aoun::bot
