// http_client over TLS, end to end against an in-process Beast ssl_stream server on 127.0.0.1:0,
// with a CA and certificates made at run time (tls_test_certs.hpp). Checks what the plain-HTTP
// tests in http_client_test.cpp cannot: chain and host-name verification, SNI, keep-alive reuse
// of a TLS connection, a TLS close_notify on an idle connection, timeouts in and after the
// handshake, and truncation of a body that ends at the close.

#include <chrono>
#include <string>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <doctest/doctest.h>

#include "channels/http_client.hpp"
#include "tests/unit/channels/tls_test_certs.hpp"

using namespace aoun::channels;
using tcp = net::ip::tcp;

namespace {

constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

ssl::context server_context(const aoun::test::tls_leaf& leaf) {
  ssl::context ctx(ssl::context::tls_server);
  ctx.use_certificate_chain(net::buffer(leaf.cert_pem));
  ctx.use_private_key(net::buffer(leaf.key_pem), ssl::context::pem);
  return ctx;
}

ssl::context client_context(const aoun::test::test_ca& trusted) {
  ssl::context ctx(ssl::context::tls_client);
  ctx.add_certificate_authority(net::buffer(trusted.cert_pem()));
  return ctx;
}

// A loopback HTTPS/1.1 server. Runs on the test's io_context (one thread), so the counters need
// no atomics. `tls` must outlive the io_context: declare it first.
struct tls_server {
  enum class mode {
    answer,        // answer every request, keep-alive
    close_notify,  // answer keep-alive, then send a TLS close_notify (an idle connection gone stale)
    silent,        // complete the handshake, read requests, never answer
    no_handshake,  // accept TCP and never speak TLS
    eof_body,      // answer with no Content-Length (the body ends at the close), then close_notify
    eof_body_cut,  // the same, but close TCP without close_notify (a truncation attack)
  };

  net::io_context& ioc;
  ssl::context& tls;
  mode how = mode::answer;
  tcp::acceptor acceptor{ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};

  int accepted = 0;
  int handshakes = 0;  // completed server handshakes
  int failed_handshakes = 0;
  int requests = 0;
  int finished = 0;  // sessions that have ended
  std::string sni;   // server name the last client sent
  http::request<http::string_body> last;

  tls_server(net::io_context& io, ssl::context& ctx) : ioc(io), tls(ctx) {}
  unsigned short port() const { return acceptor.local_endpoint().port(); }

  net::awaitable<void> session(tcp::socket sock) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(sock), tls);
    auto& low = beast::get_lowest_layer(stream);
    low.expires_after(std::chrono::seconds(10));
    if (how == mode::no_handshake) {
      char bytes[512];
      for (;;) {  // swallow the ClientHello and anything after it until the client gives up
        auto [ec, n] = co_await low.async_read_some(net::buffer(bytes), tuple_awaitable);
        if (ec) break;
      }
      ++finished;
      co_return;
    }
    auto [hec] = co_await stream.async_handshake(ssl::stream_base::server, tuple_awaitable);
    // Known once the ClientHello is read, so also after a handshake the client aborted.
    if (const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name)) sni = name;
    if (hec) {
      ++failed_handshakes;
      ++finished;
      co_return;
    }
    ++handshakes;
    beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      low.expires_after(std::chrono::seconds(10));
      auto [ec, n] = co_await http::async_read(stream, buf, req, tuple_awaitable);
      if (ec) break;
      ++requests;
      last = req;
      if (how == mode::silent) continue;
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = "{\"ok\":true,\"n\":" + std::to_string(requests) + "}";
      const bool eof_delimited = how == mode::eof_body || how == mode::eof_body_cut;
      res.keep_alive(req.keep_alive() && !eof_delimited);
      if (!eof_delimited) res.prepare_payload();
      auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
      if (wec) break;
      if (how == mode::eof_body_cut) {
        boost::system::error_code ignored;
        low.socket().shutdown(tcp::socket::shutdown_both, ignored);
        break;
      }
      if (how == mode::close_notify || how == mode::eof_body) {
        // Sends close_notify, then waits for the peer's (until the client closes, or 2 s).
        low.expires_after(std::chrono::seconds(2));
        co_await stream.async_shutdown(tuple_awaitable);
        break;
      }
      if (!res.keep_alive()) break;
    }
    ++finished;
  }

  net::awaitable<void> run() {
    for (;;) {
      auto [ec, sock] = co_await acceptor.async_accept(tuple_awaitable);
      if (ec) co_return;
      ++accepted;
      net::co_spawn(ioc, session(std::move(sock)), net::detached);
    }
  }

  // Waits (up to 5 s) until every accepted session has ended, so its counters are final.
  net::awaitable<bool> all_finished() {
    net::steady_timer t(co_await net::this_coro::executor);
    for (int i = 0; i < 500 && finished < accepted; ++i) {
      t.expires_after(std::chrono::milliseconds(10));
      co_await t.async_wait(tuple_awaitable);
    }
    co_return finished == accepted;
  }
};

provider_request post(unsigned short port, const std::string& path) {
  provider_request r;
  r.method = "POST";
  r.url = "https://localhost:" + std::to_string(port) + path;
  r.headers.emplace_back("Authorization", "Bearer T0k3n");
  r.content_type = "application/json";
  r.body = "{\"to\":\"966500000000\",\"text\":\"salam\"}";
  return r;
}

// Runs `body` as a coroutine on `ioc` and stops everything when it returns.
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

// OpenSSL's "certificate verify failed", as Asio reports it (lib and reason packed by ERR_get_error).
bool is_verify_failure(const boost::system::error_code& ec) {
  return ec.category() == net::error::get_ssl_category() &&
         ERR_GET_LIB(static_cast<unsigned long>(ec.value())) == ERR_LIB_SSL &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED;
}

}  // namespace

TEST_CASE("http_client tls: a trusted certificate for localhost gets the answer, and the server gets the request") {
  aoun::test::test_ca ca;
  ssl::context server_tls = server_context(ca.issue("localhost"));
  ssl::context client_tls = client_context(ca);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), client_tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    const auto req = post(server.port(), "/v1/messages?x=1");
    auto r = co_await client.send(req, std::chrono::seconds(5));
    CHECK_FALSE(r.ec);
    CHECK(r.status == 200);
    CHECK(r.body == "{\"ok\":true,\"n\":1}");
    CHECK(server.handshakes == 1);
    CHECK(server.requests == 1);
    CHECK(server.sni == "localhost");
    CHECK(server.last.method() == http::verb::post);
    CHECK(server.last.target() == "/v1/messages?x=1");
    CHECK(server.last[http::field::host] == "localhost:" + std::to_string(server.port()));
    CHECK(server.last[http::field::authorization] == "Bearer T0k3n");
    CHECK(server.last[http::field::content_type] == "application/json");
    CHECK(server.last[http::field::content_length] == std::to_string(req.body.size()));
    CHECK(server.last.body() == req.body);
  });
}

TEST_CASE("http_client tls: two sequential sends share one connection and one handshake") {
  aoun::test::test_ca ca;
  ssl::context server_tls = server_context(ca.issue("localhost"));
  ssl::context client_tls = client_context(ca);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), client_tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r1 = co_await client.send(post(server.port(), "/a"), std::chrono::seconds(5));
    CHECK(r1.status == 200);
    CHECK(client.idle_connections() == 1);
    auto r2 = co_await client.send(post(server.port(), "/b"), std::chrono::seconds(5));
    CHECK_FALSE(r2.ec);
    CHECK(r2.status == 200);
    CHECK(r2.body == "{\"ok\":true,\"n\":2}");  // the second request on the same session
    CHECK(server.accepted == 1);
    CHECK(server.handshakes == 1);
    CHECK(server.requests == 2);
    CHECK(server.last.target() == "/b");
    CHECK(client.idle_connections() == 1);
  });
}

TEST_CASE("http_client tls: an idle connection the server closed with close_notify is not reused") {
  aoun::test::test_ca ca;
  ssl::context server_tls = server_context(ca.issue("localhost"));
  ssl::context client_tls = client_context(ca);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  server.how = tls_server::mode::close_notify;
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), client_tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r1 = co_await client.send(post(server.port(), "/a"), std::chrono::seconds(5));
    CHECK(r1.status == 200);
    CHECK(client.idle_connections() == 1);  // it said keep-alive
    net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(100));
    co_await t.async_wait(net::use_awaitable);  // let the close_notify arrive while idle
    auto r2 = co_await client.send(post(server.port(), "/b"), std::chrono::seconds(5));
    CHECK_FALSE(r2.ec);
    CHECK(r2.status == 200);
    CHECK(server.accepted == 2);
    CHECK(server.handshakes == 2);
    CHECK(server.requests == 2);  // each request received exactly once
  });
}

TEST_CASE("http_client tls: a server whose CA the client does not trust is refused before any request") {
  aoun::test::test_ca ca;
  aoun::test::test_ca other("Some other CA");
  ssl::context server_tls = server_context(ca.issue("localhost"));
  ssl::context client_tls = client_context(other);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), client_tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r = co_await client.send(post(server.port(), "/secret"), std::chrono::seconds(5));
    CHECK(r.status == 0);
    CHECK(r.ec);
    CHECK_MESSAGE(is_verify_failure(r.ec), r.ec.message());
    CHECK(r.body.empty());
    CHECK(client.idle_connections() == 0);
    CHECK(co_await server.all_finished());
    CHECK(server.accepted == 1);
    CHECK(server.handshakes == 0);
    CHECK(server.failed_handshakes == 1);
    CHECK(server.requests == 0);
  });
}

TEST_CASE("http_client tls: a trusted certificate for another host name is refused") {
  aoun::test::test_ca ca;
  ssl::context server_tls = server_context(ca.issue("example.org"));
  ssl::context client_tls = client_context(ca);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), client_tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    auto r = co_await client.send(post(server.port(), "/secret"), std::chrono::seconds(5));
    CHECK(r.status == 0);
    CHECK(r.ec);
    CHECK_MESSAGE(is_verify_failure(r.ec), r.ec.message());
    CHECK(client.idle_connections() == 0);
    CHECK(co_await server.all_finished());
    CHECK(server.handshakes == 0);
    CHECK(server.requests == 0);
    CHECK(server.sni == "localhost");  // the client asked for localhost and refused example.org's certificate
  });
}

TEST_CASE("http_client tls: a server that never answers after the handshake times out with status 0") {
  aoun::test::test_ca ca;
  ssl::context server_tls = server_context(ca.issue("localhost"));
  ssl::context client_tls = client_context(ca);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  server.how = tls_server::mode::silent;
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), client_tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    auto r = co_await client.send(post(server.port(), "/slow"), std::chrono::milliseconds(300));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(r.status == 0);
    CHECK_MESSAGE(r.ec == beast::error::timeout, r.ec.message());
    CHECK(elapsed >= std::chrono::milliseconds(250));
    CHECK(elapsed < std::chrono::seconds(5));  // correctness bound, loose enough for ASan
    CHECK(server.handshakes == 1);
    CHECK(server.requests == 1);  // received once, never resent
    CHECK(client.idle_connections() == 0);
  });
}

TEST_CASE("http_client tls: a server that never completes the handshake times out with status 0") {
  aoun::test::test_ca ca;
  ssl::context server_tls = server_context(ca.issue("localhost"));
  ssl::context client_tls = client_context(ca);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  server.how = tls_server::mode::no_handshake;
  net::co_spawn(ioc, server.run(), net::detached);
  http_client client(ioc.get_executor(), client_tls);
  run_test(ioc, [&]() -> net::awaitable<void> {
    const auto start = std::chrono::steady_clock::now();
    auto r = co_await client.send(post(server.port(), "/slow"), std::chrono::milliseconds(300));
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(r.status == 0);
    CHECK_MESSAGE(r.ec == beast::error::timeout, r.ec.message());
    CHECK(elapsed >= std::chrono::milliseconds(250));
    CHECK(elapsed < std::chrono::seconds(5));
    CHECK(server.accepted == 1);
    CHECK(client.idle_connections() == 0);
  });
}

TEST_CASE("http_client tls: a body delimited by the end of the stream needs the server's close_notify") {
  aoun::test::test_ca ca;
  ssl::context server_tls = server_context(ca.issue("localhost"));
  ssl::context client_tls = client_context(ca);
  net::io_context ioc;
  tls_server server(ioc, server_tls);
  http_client client(ioc.get_executor(), client_tls);
  SUBCASE("close_notify: the body is complete") {
    server.how = tls_server::mode::eof_body;
    net::co_spawn(ioc, server.run(), net::detached);
    run_test(ioc, [&]() -> net::awaitable<void> {
      auto r = co_await client.send(post(server.port(), "/a"), std::chrono::seconds(5));
      CHECK_FALSE(r.ec);
      CHECK(r.status == 200);
      CHECK(r.body == "{\"ok\":true,\"n\":1}");
      CHECK(client.idle_connections() == 0);
    });
  }
  SUBCASE("TCP closed without close_notify: possibly truncated, so an error") {
    server.how = tls_server::mode::eof_body_cut;
    net::co_spawn(ioc, server.run(), net::detached);
    run_test(ioc, [&]() -> net::awaitable<void> {
      auto r = co_await client.send(post(server.port(), "/a"), std::chrono::seconds(5));
      CHECK(r.status == 0);
      CHECK_MESSAGE(r.ec == ssl::error::stream_truncated, r.ec.message());
      CHECK(r.body.empty());
      CHECK(client.idle_connections() == 0);
    });
  }
}
