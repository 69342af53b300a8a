#include "bot/client_limits.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace aoun::bot {
namespace ip = boost::asio::ip;

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <class F>
void for_each_item(std::string_view list, F f) {
  while (true) {
    auto comma = list.find(',');
    f(trim(list.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

// An IPv6 address without its interface scope (fe80::1%eth0 is fe80::1): the kernel names a
// link-local peer with the interface it came in on, the setting names only the address.
ip::address_v6 unscoped(const ip::address_v6& a) { return ip::address_v6(a.to_bytes()); }

}  // namespace

std::optional<ip::address> parse_address(std::string_view s) {
  // Boost reads up to a NUL; "1.2.3.4\0junk" is not an address.
  if (s.find('\0') != std::string_view::npos) return std::nullopt;
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(s), ec);
  if (!ec) return unmapped(a);
  if (!s.empty() && s.front() == '[') {  // "[v6]" or "[v6]:port"
    auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    auto rest = s.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || rest.size() == 1 ||
                          !std::all_of(rest.begin() + 1, rest.end(), [](char c) { return c >= '0' && c <= '9'; })))
      return std::nullopt;
    a = ip::make_address_v6(std::string(s.substr(1, close - 1)), ec);
    if (ec) return std::nullopt;
    return unmapped(a);
  }
  if (auto colon = s.find(':'); colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
    auto port = s.substr(colon + 1);  // "v4:port"
    if (port.empty() || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    auto v4 = ip::make_address_v4(std::string(s.substr(0, colon)), ec);
    if (ec) return std::nullopt;
    return ip::address(v4);
  }
  return std::nullopt;
}

std::optional<trusted_proxies> trusted_proxies::parse(std::string_view list) {
  trusted_proxies t;
  bool ok = true;
  for_each_item(list, [&](std::string_view item) {
    if (item.empty() || !ok) return;
    boost::system::error_code ec;
    std::string s(item);
    if (s.find('/') != std::string::npos) {
      if (s.find(':') == std::string::npos) {
        auto n = ip::make_network_v4(s, ec);
        if (!ec) t.v4_.push_back(n.canonical());
      } else {
        auto n = ip::make_network_v6(s, ec);
        if (!ec) t.v6_.push_back(ip::network_v6(unscoped(n.address()), n.prefix_length()).canonical());
      }
      ok = !ec;
      return;
    }
    auto a = ip::make_address(s, ec);
    if (ec) {
      ok = false;
      return;
    }
    a = unmapped(a);
    if (a.is_v4())
      t.v4_.emplace_back(a.to_v4(), 32);
    else
      t.v6_.emplace_back(unscoped(a.to_v6()), 128);
  });
  if (!ok) return std::nullopt;
  return t;
}

bool trusted_proxies::contains(const ip::address& address) const {
  auto a = unmapped(address);
  if (a.is_v4()) {
    for (const auto& n : v4_)
      if (ip::network_v4(a.to_v4(), n.prefix_length()).canonical() == n) return true;
  }
  // An IPv4 address is also its mapped form (::ffff:a.b.c.d): a network written that way
  // ("::ffff:10.0.0.0/104", as a dual-stack socket shows its peers) holds it.
  auto v6 = a.is_v4() ? ip::make_address_v6(ip::v4_mapped, a.to_v4()) : unscoped(a.to_v6());
  for (const auto& n : v6_)
    if (ip::network_v6(v6, n.prefix_length()).canonical() == n) return true;
  return false;
}

std::string client_address(const std::string& peer, std::string_view forwarded_for, const trusted_proxies& trusted) {
  if (trusted.empty() || forwarded_for.empty()) return peer;
  auto current = parse_address(peer);
  if (!current || !trusted.contains(*current)) return peer;
  // Right to left: each hop was appended by the (trusted) one to its right.
  std::vector<std::string_view> hops;
  for_each_item(forwarded_for, [&](std::string_view item) { hops.push_back(item); });
  for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
    auto a = parse_address(*it);
    if (!a) break;  // not an address: nothing left of it can be believed
    current = a;
    if (!trusted.contains(*a)) break;
  }
  return current->to_string();
}

std::string limit_key(std::string_view address) {
  auto a = parse_address(address);
  if (!a) return std::string(address);
  if (a->is_v4()) return a->to_string();
  auto bytes = a->to_v6().to_bytes();
  // NAT64's well-known prefix (64:ff9b::/96, RFC 6052) carries an IPv4 client in its last four
  // bytes: every IPv4 visitor of an IPv6-only network would otherwise share one /64.
  static constexpr std::array<unsigned char, 12> nat64{0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(nat64.begin(), nat64.end(), bytes.begin()))
    return ip::address_v4({bytes[12], bytes[13], bytes[14], bytes[15]}).to_string();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return ip::address_v6(bytes).to_string() + "/64";
}

address_limiter::address_limiter(int max_sockets, int messages_per_minute)
    : max_sockets_(std::max(0, max_sockets)), per_minute_(std::max(0, messages_per_minute)) {}

void address_limiter::refill(entry& e, clock::time_point now) const {
  if (e.at == clock::time_point{}) {
    e.tokens = per_minute_;
  } else if (now > e.at) {
    double seconds = std::chrono::duration<double>(now - e.at).count();
    e.tokens = std::min(per_minute_, e.tokens + seconds * per_minute_ / 60.0);
  }
  e.at = std::max(e.at, now);
}

void address_limiter::sweep(clock::time_point now) {
  // Amortised: a sweep visits every entry, so the next one waits until the map has doubled.
  if (entries_.size() < sweep_at_) return;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.sockets == 0) refill(it->second, now);
    bool idle = it->second.sockets == 0 && it->second.tokens >= per_minute_;
    it = idle ? entries_.erase(it) : std::next(it);
  }
  // Still huge (a flood of addresses that each keep sending): forget the budgets of those
  // without an open socket rather than grow without bound.
  if (entries_.size() > max_tracked / 2)
    for (auto it = entries_.begin(); it != entries_.end();) it = it->second.sockets == 0 ? entries_.erase(it) : std::next(it);
  sweep_at_ = std::max<std::size_t>(4096, 2 * entries_.size());
}

std::shared_ptr<void> address_limiter::open(const std::string& key, clock::time_point now) {
  if (max_sockets_ == 0) return std::make_shared<int>(0);
  {
    std::lock_guard lock(mutex_);
    sweep(now);
    auto& e = entries_[key];
    refill(e, now);
    if (e.sockets >= max_sockets_) return nullptr;
    ++e.sockets;
  }
  auto self = shared_from_this();
  return std::shared_ptr<void>(self.get(), [self, key](void*) { self->release(key); });
}

void address_limiter::release(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  if (--it->second.sockets > 0) return;
  refill(it->second, clock::now());
  if (it->second.tokens >= per_minute_) entries_.erase(it);
}

int address_limiter::take(const std::string& key, clock::time_point now) {
  if (per_minute_ == 0) return 0;
  std::lock_guard lock(mutex_);
  sweep(now);
  auto& e = entries_[key];
  refill(e, now);
  if (e.tokens >= 1) {
    e.tokens -= 1;
    return 0;
  }
  return std::max(1, static_cast<int>(std::ceil((1 - e.tokens) * 60.0 / per_minute_)));
}

std::size_t address_limiter::tracked() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace aoun::bot
