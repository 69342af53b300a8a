// Benchmark baseline (not a test): the least a WhatsApp webhook endpoint can do. A Beast
// coroutine HTTP/1.1 server with keep-alive that verifies X-Hub-Signature-256 (OpenSSL one-shot
// HMAC() + CRYPTO_memcmp, as channels/crypto.cpp does) over the raw body and answers 200; no
// parsing, no storage, no reply. bench_webhook_load is run against it side by side with
// `aoun serve` (see bench/webhook/run.sh and docs/performance.md).
//
//   bench_bare_server [--port 0] [--threads N] [--secret S] [--max-seconds 900]
//
// Prints "listening on http://127.0.0.1:PORT" once it accepts. Stops on SIGINT/SIGTERM or after
// --max-seconds, and then prints how many requests it answered.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "bench/webhook/common.hpp"

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

std::string app_secret;
std::atomic<std::uint64_t> answered{0}, rejected{0};

// Constant time; "sha256=" + 64 hex digits, nothing else.
bool signature_ok(std::string_view header, std::string_view body) {
  constexpr std::string_view prefix = "sha256=";
  if (header.size() != prefix.size() + 64 || header.substr(0, prefix.size()) != prefix) return false;
  unsigned char given[32];
  for (int i = 0; i < 32; ++i) {
    int hi = aoun::bench::hex_value(header[prefix.size() + 2 * i]);
    int lo = aoun::bench::hex_value(header[prefix.size() + 2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    given[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  static const unsigned char empty = 0;
  const void* key = app_secret.empty() ? static_cast<const void*>(&empty) : app_secret.data();
  if (HMAC(EVP_sha256(), key, static_cast<int>(app_secret.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len) == nullptr ||
      len != 32)
    return false;
  return CRYPTO_memcmp(mac, given, 32) == 0;
}

net::awaitable<void> session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1024 * 1024);
    stream.expires_after(std::chrono::seconds(60));
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec) break;  // end_of_stream, timeout, reset: all end the session quietly
    auto& req = parser.get();
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(req.keep_alive());
    if (req.method() != http::verb::post || req.target() != "/webhooks/whatsapp") {
      res.result(http::status::not_found);
    } else if (!signature_ok(req["X-Hub-Signature-256"], req.body())) {
      res.result(http::status::unauthorized);
      rejected.fetch_add(1, std::memory_order_relaxed);
    } else {
      res.result(http::status::ok);
      answered.fetch_add(1, std::memory_order_relaxed);
    }
    res.prepare_payload();
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
    if (wec || !res.keep_alive()) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
    if (ec) {
      if (ec == net::error::operation_aborted) co_return;
      continue;
    }
    socket.set_option(tcp::no_delay(true));
    auto ex = socket.get_executor();
    net::co_spawn(ex, session(std::move(socket)), [](std::exception_ptr e) {
      if (e) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          std::fprintf(stderr, "session failed: %s\n", x.what());
        }
      }
    });
  }
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 0;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int max_seconds = 900;
  app_secret = std::getenv("BENCH_APP_SECRET") ? std::getenv("BENCH_APP_SECRET") : "bench-app-secret";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    else if (a == "--threads") threads = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--secret") app_secret = argv[i + 1];
    else if (a == "--max-seconds") max_seconds = std::max(1, std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: %s [--port 0] [--threads N] [--secret S] [--max-seconds 900]\n", argv[0]);
      return EXIT_FAILURE;
    }
  }

  net::io_context ioc(threads);
  tcp::acceptor acceptor(ioc);
  tcp::endpoint ep(net::ip::make_address("127.0.0.1"), port);
  acceptor.open(ep.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(ep);
  acceptor.listen(net::socket_base::max_listen_connections);
  std::printf("listening on http://127.0.0.1:%u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);

  net::co_spawn(ioc, accept_loop(acceptor), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer limit(ioc, std::chrono::seconds(max_seconds));
  auto stop = [&] {
    ioc.stop();
  };
  signals.async_wait([&](boost::system::error_code, int) { stop(); });
  limit.async_wait([&](boost::system::error_code ec) {
    if (!ec) stop();
  });

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  std::printf("answered %llu, rejected %llu\n", static_cast<unsigned long long>(answered.load()),
              static_cast<unsigned long long>(rejected.load()));
  return EXIT_SUCCESS;
}
