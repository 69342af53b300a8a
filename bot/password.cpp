#include "bot/password.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <stdexcept>
#include <vector>

#include "channels/crypto.hpp"

namespace aoun::bot::password {
namespace {

std::string b64(const unsigned char* p, std::size_t n) {
  std::string out(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

bool unb64(std::string_view s, std::vector<unsigned char>& out) {
  if (s.empty() || s.size() % 4 != 0) return false;
  out.assign(3 * s.size() / 4 + 1, 0);
  int len = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (len < 0) return false;
  std::size_t pad = 0;
  if (s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  out.resize(static_cast<std::size_t>(len) - pad);
  return true;
}

bool derive(std::string_view pw, const unsigned char* salt, std::size_t salt_len, cost c, unsigned char* out,
            std::size_t out_len) {
  return EVP_PBE_scrypt(pw.data(), pw.size(), salt, salt_len, c.n, c.r, c.p, 256ULL << 20, out, out_len) == 1;
}

}  // namespace

std::string hash(std::string_view pw, cost c) {
  unsigned char salt[16];
  unsigned char key[32];
  if (RAND_bytes(salt, sizeof salt) != 1 || !derive(pw, salt, sizeof salt, c, key, sizeof key))
    throw std::runtime_error("scrypt failed");
  return "scrypt$" + std::to_string(c.n) + "$" + std::to_string(c.r) + "$" + std::to_string(c.p) + "$" +
         b64(salt, sizeof salt) + "$" + b64(key, sizeof key);
}

bool verify(std::string_view pw, std::string_view stored) {
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i <= stored.size()) {
    auto j = stored.find('$', i);
    if (j == std::string_view::npos) j = stored.size();
    parts.push_back(stored.substr(i, j - i));
    i = j + 1;
  }
  if (parts.size() != 6 || parts[0] != "scrypt") return false;
  cost c;
  try {
    c.n = std::stoull(std::string(parts[1]));
    c.r = std::stoull(std::string(parts[2]));
    c.p = std::stoull(std::string(parts[3]));
  } catch (...) {
    return false;
  }
  std::vector<unsigned char> salt, expected;
  if (!unb64(parts[4], salt) || !unb64(parts[5], expected) || expected.empty()) return false;
  std::vector<unsigned char> got(expected.size());
  if (!derive(pw, salt.data(), salt.size(), c, got.data(), got.size())) return false;
  return CRYPTO_memcmp(got.data(), expected.data(), got.size()) == 0;
}

std::string random_token(std::size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) throw std::runtime_error("RAND_bytes failed");
  return channels::crypto::base64url_encode(std::string_view(reinterpret_cast<const char*>(buf.data()), buf.size()));
}

std::string sha256_hex(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  static const char* hexd = "0123456789abcdef";
  std::string out;
  for (unsigned char b : d) {
    out += hexd[b >> 4];
    out += hexd[b & 15];
  }
  return out;
}

}  // namespace aoun::bot::password
