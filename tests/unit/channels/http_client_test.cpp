#include "channels/http_client.hpp"

#include <atomic>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "channels/detail/url.hpp"

using namespace aoun::channels;
using tcp = net::ip::tcp;

namespace {

// A tiny loopback HTTP/1.1 server for the tests. `silent` reads requests and never answers.
struct test_server {
  net::io_context& ioc;
  tcp::acceptor acceptor{ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};
  std::atomic<int> accepted{0};
  std::atomic<int> requests{0};
  bool silent = false;
  bool close_after_each = false;
  bool drop_after_answer = false;  // answer keep-alive, then close anyway (a stale idle connection)

  explicit test_server(net::io_context& io) : ioc(io) {}
  unsigned short port() const { return acceptor.local_endpoint().port(); }

  net::awaitable<void> session(tcp::socket sock) {
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      stream.expires_after(std::chrono::seconds(10));
      auto [ec, n] = co_await http::async_read(stream, buf, req, net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ++requests;
      if (silent) continue;
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "text/plain");
      if (req.target() == "/limited") {
        res.result(http::status::too_many_requests);
        res.set(http::field::retry_after, "5");
      } else if (req.target() == "/moved") {
        res.result(http::status::found);
        res.set(http::field::location, "http://elsewhere.example/file?sig=1");
      } else if (req.target() == "/pdf") {
        res.set(http::field::content_type, "application/pdf");
      }
      res.body() = std::string(req.method_string()) + " " + std::string(req.target()) + " " +
                   std::string(req[http::field::host]) + " " + std::string(req[http::field::authorization]) + " " +
                   std::string(req[http::field::content_type]) + " " + req.body();
      res.keep_alive(!close_after_each && req.keep_alive());
      res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, net::as_tuple(net::use_awaitable));
      if (wec || !res.keep_alive() || drop_after_answer) co_return;
    }
  }

  net::awaitable<void> run() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ++accepted;
      net::co_spawn(ioc, session(std::move(sock)), net::detached);
    }
  }
};

provider_request get(unsigned short port, const std::string& path) {
  provider_request r;
  r.method = "POST";
  r.url = "http://127.0.0.1:" + std::to_string(port) + path;
  r.headers.emplace_back("Authorization", "Bearer T");
  r.content_type = "application/json";
  r.body = "{\"a\":1}";
  return r;
}

// Runs `body` as a coroutine on a fresh io_context and stops everything when it returns.
template <class F>
void run_test(net::io_context& ioc, F body) {
  bool done = false;
  net::co_spawn(ioc, body(), [&](std::exception_ptr e) {
    done = true;
    ioc.stop();
    if (e) std::rethrow_exception(e);
  });
  ioc.run_for(std::chrono::seconds(20));
  CHECK(done);
}

}  // namespace

TEST_CASE("http_client: url split") {
  auto u = detail::split_url("https://graph.facebook.com/v21.0/1/messages?x=1#frag");
  REQUIRE(u);
  CHECK(u->tls);
  CHECK(u->host == "graph.facebook.com");
  CHECK(u->port == "443");
  CHECK(u->default_port);
  CHECK(u->target == "/v21.0/1/messages?x=1");
  u = detail::split_url("http://127.0.0.1:8080");
  REQUIRE(u);
  CHECK_FALSE(u->tls);
  CHECK(u->port == "8080");
  CHECK_FALSE(u->default_port);
  CHECK(u->target == "/");
  u = detail::split_url("http://[::1]:9000/p");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->port == "9000");
  CHECK(detail::split_url("http://h?q=1")->target == "/?q=1");
  CHECK_FALSE(detail::split_url("ftp://h/"));
  CHECK_FALSE(detail::split_url("http://"));
  CHECK_FALSE(detail::split_url("http://u:p@h/"));
  CHECK_FALSE(detail::split_url("http://h:99999/"));
  CHECK_FALSE(detail::split_url("http://h:8x/"));
  CHECK_FALSE(detail::split_url("https://[::1/"));
}

TEST_CASE("http_client: round trip and keep-alive reuse over one connection") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  test_server server(ioc);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r1 = co_await client.send(get(server.port(), "/one?x=1"), std::chrono::seconds(5));
    CHECK(r1.status == 200);
    CHECK_FALSE(r1.ec);
    CHECK(r1.body == "POST /one?x=1 127.0.0.1:" + std::to_string(server.port()) +
                         " Bearer T application/json {\"a\":1}");
    CHECK(client.idle_connections() == 1);
    auto r2 = co_await client.send(get(server.port(), "/limited"), std::chrono::seconds(5));
    CHECK(r2.status == 429);
    CHECK(r2.retry_after == "5");
    CHECK(server.accepted == 1);
    CHECK(server.requests == 2);
  });
}

TEST_CASE("http_client: GET, Content-Type and Location are reported, redirects are not followed") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  test_server server(ioc);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto req = get(server.port(), "/pdf");
    req.method = "GET";
    req.content_type.clear();
    req.body.clear();
    auto r = co_await client.send(req, std::chrono::seconds(5));
    CHECK(r.status == 200);
    CHECK(r.content_type == "application/pdf");
    CHECK(r.location.empty());
    CHECK(r.body == "GET /pdf 127.0.0.1:" + std::to_string(server.port()) + " Bearer T  ");
    req.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/moved";
    r = co_await client.send(req, std::chrono::seconds(5));
    CHECK(r.status == 302);
    CHECK(r.location == "http://elsewhere.example/file?sig=1");
    CHECK(server.requests == 2);  // the client itself never follows the Location
  });
}

TEST_CASE("http_client: a per-request body_limit refuses a larger answer and drops the connection") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  test_server server(ioc);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto req = get(server.port(), "/a-longer-path-than-the-limit");
    req.body_limit = 16;  // the echo body is ~70 bytes
    auto r = co_await client.send(req, std::chrono::seconds(5));
    CHECK(r.status == 0);
    CHECK(r.ec == http::error::body_limit);
    CHECK(client.idle_connections() == 0);
    req.body_limit = 0;  // the client's default (4 MiB) applies again
    r = co_await client.send(req, std::chrono::seconds(5));
    CHECK(r.status == 200);
    CHECK(server.accepted == 2);
  });
}

TEST_CASE("http_client: Connection: close answers are not pooled") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  test_server server(ioc);
  server.close_after_each = true;
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r1 = co_await client.send(get(server.port(), "/a"), std::chrono::seconds(5));
    CHECK(r1.status == 200);
    CHECK(client.idle_connections() == 0);
    auto r2 = co_await client.send(get(server.port(), "/b"), std::chrono::seconds(5));
    CHECK(r2.status == 200);
    CHECK(server.accepted == 2);
  });
}

TEST_CASE("http_client: an idle connection the server closed is detected and not reused") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  test_server server(ioc);
  server.drop_after_answer = true;
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r1 = co_await client.send(get(server.port(), "/a"), std::chrono::seconds(5));
    CHECK(r1.status == 200);
    CHECK(client.idle_connections() == 1);  // it said keep-alive
    net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(100));
    co_await t.async_wait(net::use_awaitable);  // let the FIN arrive while idle
    auto r2 = co_await client.send(get(server.port(), "/b"), std::chrono::seconds(5));
    CHECK(r2.status == 200);
    CHECK_FALSE(r2.ec);
    CHECK(server.accepted == 2);
    CHECK(server.requests == 2);  // each request received exactly once
  });
}

TEST_CASE("http_client: timeout gives status 0 within the deadline") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  test_server server(ioc);
  server.silent = true;
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    auto r = co_await client.send(get(server.port(), "/slow"), std::chrono::milliseconds(300));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(r.status == 0);
    CHECK(r.ec == beast::error::timeout);
    CHECK(elapsed >= std::chrono::milliseconds(250));
    CHECK(elapsed < std::chrono::seconds(3));
    CHECK(server.requests == 1);  // received once, never resent
    CHECK(r.request_sent);        // so the server may have acted on it: the caller must know
    CHECK(client.idle_connections() == 0);
  });
}

TEST_CASE("http_client: connection refused and bad URLs give status 0") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  unsigned short port = 0;
  {
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  http_client client(ioc.get_executor(), tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r = co_await client.send(get(port, "/"), std::chrono::seconds(5));
    CHECK(r.status == 0);
    CHECK(r.ec == net::error::connection_refused);
    CHECK(!r.request_sent);
    provider_request bad;
    bad.url = "ftp://x/";
    r = co_await client.send(bad, std::chrono::seconds(1));
    CHECK(r.status == 0);
    CHECK(r.ec);
    bad.url = "http://127.0.0.1:1/";
    bad.method = "FROB";
    r = co_await client.send(bad, std::chrono::seconds(1));
    CHECK(r.status == 0);
    CHECK(r.ec);
  });
}

TEST_CASE("http_client: concurrent sends from several threads share the pool safely") {
  net::io_context ioc;
  ssl::context tls(ssl::context::tls_client);
  test_server server(ioc);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), tls);
  std::atomic<int> ok{0};
  constexpr int n = 24;
  std::atomic<int> finished{0};
  for (int i = 0; i < n; ++i) {
    net::co_spawn(
        ioc,
        [&, i]() -> net::awaitable<void> {
          for (int k = 0; k < 3; ++k) {
            auto r = co_await client.send(get(server.port(), "/c" + std::to_string(i)), std::chrono::seconds(5));
            if (r.status == 200 && r.body.find("/c" + std::to_string(i) + " ") != std::string::npos) ++ok;
          }
        },
        [&](std::exception_ptr) {
          if (++finished == n) ioc.stop();
        });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back([&] { ioc.run_for(std::chrono::seconds(20)); });
  for (auto& t : threads) t.join();
  CHECK(ok == n * 3);
  CHECK(server.requests == n * 3);
  CHECK(server.accepted <= n);  // connections were reused
  CHECK(client.idle_connections() <= 4);
}
