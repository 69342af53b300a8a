#pragma once
// Small helpers shared by the WhatsApp webhook benchmark programs (bench/webhook/): clocks,
// X-Hub-Signature-256 signing, /proc readings, percentiles. Benchmarks only; nothing in the
// server includes this.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace aoun::bench {

using clk = std::chrono::steady_clock;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clk::now().time_since_epoch()).count();
}

inline constexpr char hex_digits[] = "0123456789abcdef";

inline std::string to_hex(const unsigned char* p, std::size_t n) {
  std::string s(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    s[2 * i] = hex_digits[p[i] >> 4];
    s[2 * i + 1] = hex_digits[p[i] & 15];
  }
  return s;
}

inline int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// HMAC-SHA256 with a key set once. OpenSSL 3's one-shot HMAC() fetches the digest and builds a
/// context on every call; the load generator signs tens of thousands of bodies a second on the
/// same cores as the server, so it keeps one keyed context per thread and duplicates it.
/// Not thread-safe: one signer per thread.
class hmac_signer {
 public:
  explicit hmac_signer(std::string_view key) {
    mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    keyed_ = EVP_MAC_CTX_new(mac_);
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    static const unsigned char empty = 0;
    const auto* k = key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
    EVP_MAC_init(keyed_, k, key.size(), params);
  }
  ~hmac_signer() {
    EVP_MAC_CTX_free(keyed_);
    EVP_MAC_free(mac_);
  }
  hmac_signer(const hmac_signer&) = delete;
  hmac_signer& operator=(const hmac_signer&) = delete;

  /// "sha256=" + lowercase hex of HMAC-SHA256(key, body): the X-Hub-Signature-256 value.
  std::string header_value(std::string_view body) const {
    unsigned char out[32];
    std::size_t len = 0;
    EVP_MAC_CTX* c = EVP_MAC_CTX_dup(keyed_);
    EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(body.data()), body.size());
    EVP_MAC_final(c, out, &len, sizeof out);
    EVP_MAC_CTX_free(c);
    return "sha256=" + to_hex(out, 32);
  }

 private:
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* keyed_ = nullptr;
};

/// utime+stime of a process in clock ticks turned into microseconds; -1 if unreadable.
inline std::int64_t process_cpu_us(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream in(s.substr(rp + 2));
  std::string field;
  // After "pid (comm) ": state is field 3; utime is 14 and stime 15.
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return static_cast<std::int64_t>((utime + stime) * 1000000ULL / static_cast<unsigned long long>(hz));
}

/// A "VmRSS"/"VmHWM"-style line of /proc/<pid>/status in KiB; -1 if absent.
inline long process_status_kib(long pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::size_t klen = std::strlen(key);
  while (std::getline(f, line))
    if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':')
      return std::atol(line.c_str() + klen + 1);
  return -1;
}

/// Busy and total jiffies of the whole machine (first line of /proc/stat), for telling how much
/// of the CPU other processes took during a run.
inline std::pair<long long, long long> machine_jiffies() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  long long v[10] = {};
  f >> cpu;
  for (auto& x : v) f >> x;
  long long total = 0;
  for (int i = 0; i < 8; ++i) total += v[i];  // guest time is already in user
  const long long idle = v[3] + v[4];
  return {total - idle, total};
}

/// p in [0,100]; `v` is sorted in place. Returns 0 for an empty sample.
inline double percentile(std::vector<double>& v, double p, bool sorted = false) {
  if (v.empty()) return 0;
  if (!sorted) std::sort(v.begin(), v.end());
  auto idx = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

}  // namespace aoun::bench
