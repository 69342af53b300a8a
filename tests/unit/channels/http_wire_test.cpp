// detail::to_wire must write exactly what Beast's serializer writes: the server's responses and
// the provider requests go out through it instead of http::async_write.
#include <doctest/doctest.h>

#include <random>
#include <sstream>
#include <stdexcept>

#include "channels/detail/http_wire.hpp"

using namespace aoun::channels;
namespace http = boost::beast::http;

namespace {

template <bool isRequest>
std::string beast_bytes(http::message<isRequest, http::string_body> m) {
  std::ostringstream os;
  os << m;  // Beast's own serializer
  return os.str();
}

std::string random_token(std::mt19937& rng, std::size_t max_len) {
  static const std::string chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
  std::string s(1 + rng() % max_len, 'x');
  for (auto& c : s) c = chars[rng() % chars.size()];
  return s;
}

std::string random_bytes(std::mt19937& rng, std::size_t max_len) {
  std::string s(rng() % (max_len + 1), '\0');
  for (auto& c : s) c = static_cast<char>(rng() % 256);
  return s;
}

}  // namespace

TEST_CASE("to_wire: responses byte for byte as Beast writes them") {
  for (unsigned code : {100u, 101u, 200u, 201u, 204u, 301u, 304u, 400u, 401u, 403u, 404u, 413u, 429u, 500u, 503u, 599u,
                        299u, 999u}) {
    for (unsigned version : {10u, 11u}) {
      http::response<http::string_body> res{static_cast<http::status>(code), version};
      res.set(http::field::content_type, "application/json; charset=utf-8");
      res.set("X-Request-Id", "r-1");
      res.insert("Set-Cookie", "a=1");
      res.insert("Set-Cookie", "b=2");
      res.set("X-Empty", "");
      const bool bodiless = code < 200 || code == 204 || code == 304;  // prepare_payload refuses a body
      if (!bodiless) res.body() = R"({"ok":true,"text":"مرحبا"})";
      res.keep_alive(version == 11);
      res.prepare_payload();
      INFO("code " << code << " version " << version);
      CHECK(detail::wire_ok(res));
      CHECK(detail::to_wire(res) == beast_bytes(res));
    }
  }
  SUBCASE("a reason of our own, no fields, no body") {
    http::response<http::string_body> res{http::status::ok, 11};
    res.reason("Fine Thanks");
    CHECK(detail::to_wire(res) == beast_bytes(res));
    CHECK(detail::to_wire(res) == "HTTP/1.1 200 Fine Thanks\r\n\r\n");
  }
}

TEST_CASE("to_wire: requests byte for byte as Beast writes them") {
  for (auto verb : {http::verb::get, http::verb::post, http::verb::put, http::verb::delete_, http::verb::head}) {
    http::request<http::string_body> req{verb, "/v21.0/106540352242922/messages?x=1&y=%20", 11};
    req.set(http::field::host, "graph.facebook.com");
    req.set(http::field::user_agent, "aoun/0.1");
    req.set(http::field::authorization, "Bearer token");
    req.set(http::field::content_type, "application/json");
    req.body() = verb == http::verb::get ? "" : R"({"messaging_product":"whatsapp"})";
    req.keep_alive(true);
    req.prepare_payload();
    INFO(req.method_string());
    CHECK(detail::wire_ok(req));
    CHECK(detail::to_wire(req) == beast_bytes(req));
  }
  SUBCASE("a method Beast has no verb for") {
    http::request<http::string_body> req;
    req.method_string("PURGE");
    req.target("/cache");
    req.version(10);
    CHECK(detail::to_wire(req) == beast_bytes(req));
    CHECK(detail::to_wire(req) == "PURGE /cache HTTP/1.0\r\n\r\n");
  }
}

TEST_CASE("to_wire: random messages match Beast") {
  std::mt19937 rng(20261126);
  for (int i = 0; i < 2000; ++i) {
    const bool request = rng() % 2 == 0;
    auto fill = [&](auto& m) {
      const int fields = static_cast<int>(rng() % 12);
      for (int k = 0; k < fields; ++k) {
        auto value = random_token(rng, 40) + (rng() % 3 == 0 ? " ; q=0.5" : "");
        if (rng() % 2) m.insert(random_token(rng, 20), value);
        else m.set(random_token(rng, 20), value);
      }
      m.body() = random_bytes(rng, 300);
      if (rng() % 2) {
        try {
          m.prepare_payload();
        } catch (const std::invalid_argument&) {  // a body on a 1xx/204/304: written as set
        }
      }
    };
    if (request) {
      http::request<http::string_body> req{rng() % 2 ? http::verb::post : http::verb::get,
                                           "/" + random_token(rng, 60), rng() % 2 ? 11u : 10u};
      fill(req);
      INFO("request " << i);
      CHECK(detail::to_wire(req) == beast_bytes(req));
    } else {
      http::response<http::string_body> res{static_cast<http::status>(100 + rng() % 500), rng() % 2 ? 11u : 10u};
      fill(res);
      INFO("response " << i);
      CHECK(detail::to_wire(res) == beast_bytes(res));
    }
  }
}

TEST_CASE("to_wire: chunked messages are left to Beast") {
  http::response<http::string_body> res{http::status::ok, 11};
  res.chunked(true);
  CHECK(!detail::wire_ok(res));
}
