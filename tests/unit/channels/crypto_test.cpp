#include "channels/crypto.hpp"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

namespace crypto = aoun::channels::crypto;

TEST_CASE("hmac_sha256 matches the Meta vector and RFC 4231 case 2") {
  CHECK(crypto::hex_encode(crypto::hmac_sha256("secret", "test")) ==
        "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914");
  CHECK(crypto::hex_encode(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST_CASE("hmac_sha1 matches RFC 2202 case 2, and an empty key works") {
  CHECK(crypto::hex_encode(crypto::hmac_sha1("Jefe", "what do ya want for nothing?")) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  CHECK(crypto::hex_encode(crypto::hmac_sha1("", "")) == "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
}

TEST_CASE("sha256 of empty input") {
  CHECK(crypto::hex_encode(crypto::sha256("")) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("hex round trip and rejects") {
  CHECK(crypto::hex_encode(std::string("\x00\xff\x10", 3)) == "00ff10");
  CHECK(crypto::hex_decode("00FF10") == std::string("\x00\xff\x10", 3));
  CHECK_FALSE(crypto::hex_decode("abc").has_value());
  CHECK_FALSE(crypto::hex_decode("zz").has_value());
  CHECK(crypto::hex_decode("") == std::string{});
}

TEST_CASE("base64 RFC 4648 vectors, both ways") {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; ++i) {
    CHECK(crypto::base64_encode(plain[i]) == enc[i]);
    CHECK(crypto::base64_decode(enc[i]) == std::string(plain[i]));
  }
  CHECK_FALSE(crypto::base64_decode("Zm9").has_value());
  CHECK_FALSE(crypto::base64_decode("Zm=v").has_value());
  CHECK_FALSE(crypto::base64_decode("Z===").has_value());
  CHECK_FALSE(crypto::base64_decode("Zm9v!A==").has_value());
}

TEST_CASE("base64url: RFC 4648 section 5 alphabet, no padding") {
  CHECK(crypto::base64url_encode("") == "");
  CHECK(crypto::base64url_encode("f") == "Zg");
  CHECK(crypto::base64url_encode("fo") == "Zm8");
  CHECK(crypto::base64url_encode("foo") == "Zm9v");
  CHECK(crypto::base64url_encode("\xfb\xff\xbf") == "-_-_");  // "+/+/" in standard base64
  CHECK(crypto::base64url_encode(std::string(16, '\xff')).size() == 22);
}

TEST_CASE("constant-time equality") {
  CHECK(crypto::equal_constant_time("abc", "abc"));
  CHECK_FALSE(crypto::equal_constant_time("abc", "abd"));
  CHECK_FALSE(crypto::equal_constant_time("abc", "ab"));
  CHECK(crypto::equal_constant_time("", ""));
}

TEST_CASE("percent decoding and form parsing") {
  CHECK(crypto::percent_decode("a+b%20c%2B") == "a b c+");
  CHECK(crypto::percent_decode("a+b", false) == "a+b");
  CHECK(crypto::percent_decode("100%") == "100%");
  CHECK(crypto::percent_decode("%G1%4") == "%G1%4");
  CHECK(crypto::percent_decode("%D8%A3") == "\xD8\xA3");

  const auto f = crypto::parse_form("a=1&b=&&c&a=2&To=%2B966&x=y=z");
  REQUIRE(f.size() == 6);
  CHECK(f[0] == std::pair<std::string, std::string>{"a", "1"});
  CHECK(f[1] == std::pair<std::string, std::string>{"b", ""});
  CHECK(f[2] == std::pair<std::string, std::string>{"c", ""});
  CHECK(f[3] == std::pair<std::string, std::string>{"a", "2"});
  CHECK(f[4] == std::pair<std::string, std::string>{"To", "+966"});
  CHECK(f[5] == std::pair<std::string, std::string>{"x", "y=z"});
  CHECK(crypto::parse_form("").empty());
  CHECK(crypto::parse_query("hub.mode=subscribe&hub.verify_token=t").at(0).first == "hub.mode");
}

TEST_CASE("form encoding round-trips Arabic and reserved characters") {
  const std::string s = "تم استلام طلبك رقم 1234 & a+b=c/~";
  CHECK(crypto::form_encode("a b+c") == "a+b%2Bc");
  const auto body = crypto::build_form({{"Body", s}, {"To", "+966500000000"}});
  const auto back = crypto::parse_form(body);
  REQUIRE(back.size() == 2);
  CHECK(back[0].second == s);
  CHECK(back[1].second == "+966500000000");
}

TEST_CASE("code points and truncation never cut a UTF-8 sequence") {
  const std::string ar = "مرحبا";  // 5 code points, 10 bytes
  CHECK(crypto::code_points(ar) == 5);
  CHECK(crypto::truncate_code_points(ar, 3) == "مرح");
  CHECK(crypto::truncate_code_points(ar, 10) == ar);
  CHECK(crypto::truncate_bytes(ar, 5) == "مر");
  CHECK(crypto::truncate_bytes("😀x", 3) == "");
  CHECK(crypto::truncate_bytes("😀x", 4) == "😀");
  CHECK(crypto::code_points("😀") == 1);
  // Malformed bytes count one each and are never extended past the input.
  CHECK(crypto::code_points("\xD8") == 1);
  CHECK(crypto::code_points("a\xF0\x9F") == 3);
  CHECK(crypto::truncate_code_points("\xE2\x82", 1) == "\xE2");
  // At the limit, in code points and in bytes (the short cut for text no longer than the limit).
  CHECK(crypto::truncate_code_points(ar, 5) == ar);
  CHECK(crypto::truncate_code_points(ar, 4) == "مرحب");
  CHECK(crypto::truncate_code_points(ar, 9) == ar);
  CHECK(crypto::truncate_code_points("\xE2\x82", 2) == "\xE2\x82");
  CHECK(crypto::truncate_code_points("abc", 3) == "abc");
  CHECK(crypto::truncate_code_points("abc", 2) == "ab");
  CHECK(crypto::truncate_code_points("", 0) == "");
}

TEST_CASE("hmac keeps a keyed context per thread: changing keys, empty keys and threads give the right MAC") {
  // The context is reused for the same key and re-keyed when it changes; alternate to check both.
  for (int i = 0; i < 3; ++i) {
    CHECK(crypto::hex_encode(crypto::hmac_sha256("secret", "test")) ==
          "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914");
    CHECK(crypto::hex_encode(crypto::hmac_sha256("Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(crypto::hex_encode(crypto::hmac_sha256("", "")) ==
          "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    CHECK(crypto::hex_encode(crypto::hmac_sha1("Jefe", "what do ya want for nothing?")) ==
          "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  }
  // A key that is a prefix of the previous one is a different key.
  CHECK(crypto::hmac_sha256("secre", "test") != crypto::hmac_sha256("secret", "test"));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      const std::string key = t % 2 ? "secret" : "Jefe";
      const std::string want = t % 2 ? "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914"
                                     : "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
      const std::string data = t % 2 ? "test" : "what do ya want for nothing?";
      for (int i = 0; i < 500; ++i)
        if (crypto::hex_encode(crypto::hmac_sha256(key, data)) != want) ++wrong;
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
}
