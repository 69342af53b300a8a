#pragma once
// Staff password hashing with scrypt (OpenSSL 3 EVP_PBE_scrypt): a random 16-byte salt and the
// cost parameters are stored with the hash ("scrypt$N$r$p$salt$hash", base64), so the cost can be
// raised later without invalidating old hashes. Thread-safe.

#include <string>
#include <string_view>

namespace aoun::bot::password {

struct cost {
  unsigned long long n = 1ULL << 15;  ///< CPU/memory cost (32 MiB with r = 8)
  unsigned long long r = 8;
  unsigned long long p = 1;
};

/// Throws std::runtime_error only if OpenSSL fails (out of memory).
std::string hash(std::string_view password, cost c = {});
/// Constant-time check; false for a malformed stored hash.
bool verify(std::string_view password, std::string_view stored);
/// A random URL-safe token of `bytes` random bytes (bearer tokens, generated passwords).
std::string random_token(std::size_t bytes = 32);
/// Hex SHA-256, used to store bearer tokens hashed.
std::string sha256_hex(std::string_view s);

}  // namespace aoun::bot::password
