#pragma once
// Who a request comes from, and how much one client may ask of the public web chat.
//
//  - client_address: the TCP peer, or, when the peer is one of AOUN_TRUSTED_PROXIES, the
//    address that proxy (and any trusted proxy before it) put in X-Forwarded-For: the list is
//    read from the right, skipping trusted hops, and the first address that is not trusted is
//    the client. Entries to the left of it were written by the client and are never believed.
//  - limit_key: what one client is counted as: the address, or its /64 for IPv6 (one host is
//    usually given a whole /64, so counting single addresses would not limit it).
//  - address_limiter: open sockets per key and a token bucket of messages per key
//    (AOUN_WEBCHAT_SOCKETS_PER_ADDRESS, AOUN_WEBCHAT_MESSAGES_PER_MINUTE). Thread-safe.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

namespace aoun::bot {

class trusted_proxies {
 public:
  /// A comma-separated list of addresses and CIDR networks ("10.0.0.0/8, ::1"); nullopt naming
  /// nothing if an entry does not parse.
  static std::optional<trusted_proxies> parse(std::string_view list);
  bool empty() const { return v4_.empty() && v6_.empty(); }
  bool contains(const boost::asio::ip::address& a) const;

 private:
  std::vector<boost::asio::ip::network_v4> v4_;
  std::vector<boost::asio::ip::network_v6> v6_;
};

/// An address as a client or proxy wrote it: plain, "[v6]", "[v6]:port" or "v4:port".
std::optional<boost::asio::ip::address> parse_address(std::string_view s);

/// The client's address (see above). `forwarded_for` is every X-Forwarded-For value of the
/// request joined with ','; `peer` is the TCP peer as text.
std::string client_address(const std::string& peer, std::string_view forwarded_for, const trusted_proxies& trusted);

/// The key a client is limited by: IPv4 (and IPv4-mapped IPv6, and NAT64's 64:ff9b::/96) as
/// the IPv4 address, other IPv6 as its /64 ("2001:db8:1:2::/64"); anything else as it is.
std::string limit_key(std::string_view address);

class address_limiter : public std::enable_shared_from_this<address_limiter> {
 public:
  using clock = std::chrono::steady_clock;
  /// 0 for either means no limit of that kind.
  address_limiter(int max_sockets, int messages_per_minute);

  /// A slot for one more socket from `key`, given back when the returned handle is destroyed
  /// (the handle keeps the limiter alive); nullptr when `key` already holds max_sockets.
  /// REQUIRES: the limiter is owned by a std::shared_ptr.
  std::shared_ptr<void> open(const std::string& key, clock::time_point now);
  /// Takes one message from `key`'s budget (a minute's worth, refilled continuously): 0 when
  /// allowed, otherwise the whole seconds until the next one is.
  int take(const std::string& key, clock::time_point now);
  /// Keys currently tracked (tests).
  std::size_t tracked() const;

 private:
  struct entry {
    int sockets = 0;
    double tokens = 0;
    clock::time_point at{};
  };
  void refill(entry& e, clock::time_point now) const;
  void release(const std::string& key);
  void sweep(clock::time_point now);  // REQUIRES: mutex_ held

  static constexpr std::size_t max_tracked = 200000;  // about 20 MiB at most
  const int max_sockets_;
  const double per_minute_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, entry> entries_;  // GUARDED_BY(mutex_)
  std::size_t sweep_at_ = 4096;                      // GUARDED_BY(mutex_): next size that sweeps
};

}  // namespace aoun::bot
