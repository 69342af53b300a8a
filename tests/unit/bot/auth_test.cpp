// The per-address sign-in throttle (bot/auth.hpp).
#include <doctest/doctest.h>

#include "bot/auth.hpp"

using namespace aoun::bot;

TEST_CASE("login throttle: an address is refused after `limit` failures in the window, until they age out") {
  login_throttle t(3, 60);
  for (int i = 0; i < 3; ++i) {
    CHECK_FALSE(t.blocked("203.0.113.9", 1000));
    t.failed("203.0.113.9", 1000 + i);
  }
  CHECK(t.blocked("203.0.113.9", 1010));
  CHECK_FALSE(t.blocked("203.0.113.10", 1010));
  CHECK_FALSE(t.blocked("203.0.113.9", 1063));  // the first two aged out
}

TEST_CASE("login throttle: a flood of new addresses does not wipe the count of the one guessing") {
  login_throttle t(3, 600, 100);
  for (int i = 0; i < 3; ++i) t.failed("2001:db8:1::/64", 1000);
  REQUIRE(t.blocked("2001:db8:1::/64", 1001));
  // One failure each from many other addresses: memory stays bounded, the guesser stays refused.
  for (int i = 0; i < 1000; ++i) t.failed("2001:db8:2:" + std::to_string(i) + "::/64", 1002);
  CHECK(t.blocked("2001:db8:1::/64", 1003));
}
