#pragma once
// Prometheus counters for /metrics: requests by route and status, a request latency histogram,
// and whatever extra text the caller appends (database commit latency, batch sizes, outbox).
// Thread-safe: a mutex held only to update or copy.

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace aoun::bot {

class metrics {
 public:
  static constexpr std::array<double, 12> latency_bounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                            0.05,   0.1,   0.25,   0.5,   1.0,  5.0};
  void observe(const std::string& route, unsigned status, double seconds);
  void count(const std::string& name, std::uint64_t n = 1);  ///< free-form counters (aoun_<name>_total)
  std::string render() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, unsigned>, std::uint64_t> requests_;  // GUARDED_BY(mutex_)
  std::array<std::uint64_t, latency_bounds.size() + 1> buckets_{};        // GUARDED_BY(mutex_)
  double latency_sum_ = 0;                                               // GUARDED_BY(mutex_)
  std::uint64_t latency_count_ = 0;                                      // GUARDED_BY(mutex_)
  std::map<std::string, std::uint64_t> counters_;                        // GUARDED_BY(mutex_)
};

}  // namespace aoun::bot
