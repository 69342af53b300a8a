// Who a request comes from (X-Forwarded-For behind trusted proxies) and the web chat's
// per-client limits (bot/client_limits.hpp).
#include <doctest/doctest.h>

#include "bot/client_limits.hpp"

using namespace aoun::bot;
using namespace std::chrono_literals;

namespace {
trusted_proxies trusted(std::string_view list) {
  auto t = trusted_proxies::parse(list);
  REQUIRE(t);
  return *t;
}
}  // namespace

TEST_CASE("trusted proxies: addresses and CIDR networks, v4 and v6; anything else is refused") {
  auto t = trusted("10.0.0.0/8, 192.168.1.7 ,::1,2001:db8::/32,");
  auto in = [&](const char* a) { return t.contains(*parse_address(a)); };
  CHECK(in("10.1.2.3"));
  CHECK(in("192.168.1.7"));
  CHECK_FALSE(in("192.168.1.8"));
  CHECK(in("::1"));
  CHECK(in("2001:db8:ffff::1"));
  CHECK_FALSE(in("2001:db9::1"));
  CHECK(in("::ffff:10.9.9.9"));  // IPv4-mapped is the IPv4 address
  CHECK_FALSE(in("11.0.0.1"));
  CHECK(trusted_proxies::parse("")->empty());
  for (const char* bad : {"10.0.0.0/33", "localhost", "10.0.0.256", "1.2.3.4/8/8", "fe80::/129", "1.2.3.4 5.6.7.8"}) {
    CAPTURE(bad);
    CHECK_FALSE(trusted_proxies::parse(bad));
  }
}

TEST_CASE("client address: X-Forwarded-For is read right to left, only through trusted proxies") {
  auto t = trusted("127.0.0.1, 10.0.0.0/8");
  // No trusted proxies configured, or a peer that is not one: the header is ignored.
  CHECK(client_address("127.0.0.1", "203.0.113.9", trusted_proxies{}) == "127.0.0.1");
  CHECK(client_address("198.51.100.4", "203.0.113.9", t) == "198.51.100.4");
  // The proxy appended the client; what the client wrote itself (left of it) is not believed.
  CHECK(client_address("127.0.0.1", "203.0.113.9", t) == "203.0.113.9");
  CHECK(client_address("127.0.0.1", "1.1.1.1, 203.0.113.9", t) == "203.0.113.9");
  CHECK(client_address("127.0.0.1", "garbage, 203.0.113.9", t) == "203.0.113.9");
  // Two trusted hops: the nearest untrusted one is the client.
  CHECK(client_address("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.2.3.4", t) == "203.0.113.9");
  // Every hop trusted: the leftmost.
  CHECK(client_address("127.0.0.1", "10.9.9.9, 10.2.3.4", t) == "10.9.9.9");
  // A hop that is not an address ends the walk at the last one that was.
  CHECK(client_address("127.0.0.1", "203.0.113.9, unknown", t) == "127.0.0.1");
  CHECK(client_address("127.0.0.1", "1.1.1.1, nonsense, 10.2.3.4", t) == "10.2.3.4");
  // Ports and brackets as proxies write them; an empty header is no header.
  CHECK(client_address("127.0.0.1", "203.0.113.9:4711", t) == "203.0.113.9");
  CHECK(client_address("127.0.0.1", "[2001:db8::7]:443", t) == "2001:db8::7");
  CHECK(client_address("127.0.0.1", "", t) == "127.0.0.1");
  // Boost would read an address up to a NUL: "a.b.c.d\0junk" is not one.
  CHECK_FALSE(parse_address(std::string_view("203.0.113.9\0junk", 16)));
  CHECK(client_address("127.0.0.1", std::string_view("1.1.1.1, 203.0.113.9\0x", 22), t) == "127.0.0.1");
}

TEST_CASE("limit key: an IPv4 address, or an IPv6 /64") {
  CHECK(limit_key("203.0.113.9") == "203.0.113.9");
  CHECK(limit_key("::ffff:203.0.113.9") == "203.0.113.9");
  CHECK(limit_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd") == "2001:db8:1:2::/64");
  CHECK(limit_key("2001:db8:1:2::1") == limit_key("2001:db8:1:2:ffff::9"));
  CHECK(limit_key("2001:db8:1:3::1") != limit_key("2001:db8:1:2::1"));
  // NAT64 (64:ff9b::/96): the IPv4 client it carries, not one /64 for all of them.
  CHECK(limit_key("64:ff9b::203.0.113.9") == "203.0.113.9");
  CHECK(limit_key("64:ff9b::cb00:710a") == "203.0.113.10");
}

TEST_CASE("address limiter: sockets per key, given back when the handle goes") {
  auto l = std::make_shared<address_limiter>(2, 0);
  auto now = address_limiter::clock::now();
  auto a = l->open("1.1.1.1", now);
  auto b = l->open("1.1.1.1", now);
  REQUIRE(a);
  REQUIRE(b);
  CHECK_FALSE(l->open("1.1.1.1", now));
  CHECK(l->open("2.2.2.2", now));  // another client is not affected
  a.reset();
  auto c = l->open("1.1.1.1", now);
  CHECK(c);
  b.reset();
  c.reset();
  CHECK(l->tracked() == 0);  // nothing kept for a client that left
  // No limit: always a slot.
  auto unlimited = std::make_shared<address_limiter>(0, 0);
  std::vector<std::shared_ptr<void>> held;
  for (int i = 0; i < 1000; ++i) held.push_back(unlimited->open("1.1.1.1", now));
  CHECK(std::all_of(held.begin(), held.end(), [](auto& h) { return h != nullptr; }));
}

TEST_CASE("address limiter: a minute's worth of messages, refilled continuously") {
  auto l = std::make_shared<address_limiter>(0, 6);  // 6 a minute: one every 10 s
  auto t0 = address_limiter::clock::now();
  for (int i = 0; i < 6; ++i) CHECK(l->take("1.1.1.1", t0) == 0);
  CHECK(l->take("1.1.1.1", t0) == 10);
  CHECK(l->take("2.2.2.2", t0) == 0);  // per client
  CHECK(l->take("1.1.1.1", t0 + 4s) == 6);
  CHECK(l->take("1.1.1.1", t0 + 10s) == 0);
  CHECK(l->take("1.1.1.1", t0 + 10s) == 10);
  // A long pause refills to a minute's worth, no more.
  auto later = t0 + 1h;
  for (int i = 0; i < 6; ++i) CHECK(l->take("1.1.1.1", later) == 0);
  CHECK(l->take("1.1.1.1", later) > 0);
  // No limit.
  auto unlimited = std::make_shared<address_limiter>(0, 0);
  for (int i = 0; i < 1000; ++i) REQUIRE(unlimited->take("1.1.1.1", t0) == 0);
}

TEST_CASE("address limiter: a flood of addresses does not grow memory without bound") {
  auto name = [](int i) { return "10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256); };
  auto l = std::make_shared<address_limiter>(0, 60);
  auto t0 = address_limiter::clock::now();
  std::size_t most = 0;
  for (int i = 0; i < 500000; ++i) {
    l->take(name(i), t0);
    most = std::max(most, l->tracked());
  }
  CHECK(most <= 200000);
  // Clients whose budget has refilled are forgotten at the next sweep (when the map has grown
  // to twice its size after the last one).
  auto small = std::make_shared<address_limiter>(0, 60);
  for (int i = 0; i < 5000; ++i) small->take(name(i), t0);
  CHECK(small->tracked() == 5000);
  for (int i = 5000; i <= 8192; ++i) small->take(name(i), t0 + std::chrono::minutes(2));
  CHECK(small->tracked() < 5000);
}

TEST_CASE("trusted proxies: an IPv4-mapped network names the IPv4 addresses it holds") {
  // A dual-stack socket shows IPv4 peers as ::ffff:a.b.c.d, so that is how an operator may
  // write the proxy's network. A plain mapped address is already the IPv4 address; a mapped
  // network must be too, or the proxy is silently not trusted and every visitor shares its
  // address (one of them then uses up the web chat's and sign-in's limits for all).
  auto t = trusted("::ffff:10.0.0.0/104, ::ffff:192.168.1.7/128");
  auto in = [&](const char* a) { return t.contains(*parse_address(a)); };
  CHECK(in("10.1.2.3"));
  CHECK(in("::ffff:10.1.2.3"));
  CHECK(in("192.168.1.7"));
  CHECK_FALSE(in("192.168.1.8"));
  CHECK_FALSE(in("11.0.0.1"));
  CHECK_FALSE(in("::a01:203"));  // the IPv4-compatible form is another address
  CHECK(client_address("::ffff:10.0.0.1", "203.0.113.9", t) == "203.0.113.9");
  CHECK(client_address("10.0.0.1", "203.0.113.9", t) == "203.0.113.9");
  // A network holding the whole mapped range holds every IPv4 address.
  CHECK(trusted("::ffff:0:0/96").contains(*parse_address("198.51.100.4")));
  CHECK_FALSE(trusted("2001:db8::/32").contains(*parse_address("198.51.100.4")));
}

TEST_CASE("trusted proxies: a link-local proxy is trusted whatever interface scope its address carries") {
  // The kernel names a link-local peer with its interface (fe80::1%eth0); the setting names
  // the address, so the scope is not part of what is compared.
  auto t = trusted("fe80::/10, fe80::1:2%1");
  auto scoped = boost::asio::ip::make_address("fe80::7%1");
  REQUIRE(scoped.to_v6().scope_id() == 1);
  CHECK(t.contains(scoped));
  CHECK(t.contains(boost::asio::ip::make_address("fe80::7")));
  CHECK(client_address("fe80::7%1", "203.0.113.9", t) == "203.0.113.9");
  auto host = trusted("fe80::1:2%1");
  CHECK(host.contains(boost::asio::ip::make_address("fe80::1:2")));
  CHECK(host.contains(boost::asio::ip::make_address("fe80::1:2%1")));
  CHECK_FALSE(host.contains(boost::asio::ip::make_address("fe80::1:3%1")));
}
