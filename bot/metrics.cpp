#include "bot/metrics.hpp"

#include <sstream>

namespace aoun::bot {

void metrics::observe(const std::string& route, unsigned status, double seconds) {
  std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  std::size_t i = 0;
  while (i < latency_bounds.size() && seconds > latency_bounds[i]) ++i;
  ++buckets_[i];
  latency_sum_ += seconds;
  ++latency_count_;
}

void metrics::count(const std::string& name, std::uint64_t n) {
  std::lock_guard lock(mutex_);
  counters_[name] += n;
}

std::string metrics::render() const {
  std::lock_guard lock(mutex_);
  std::ostringstream out;
  out << "# HELP aoun_http_requests_total HTTP requests by route and status.\n"
      << "# TYPE aoun_http_requests_total counter\n";
  for (auto& [key, n] : requests_)
    out << "aoun_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  out << "# HELP aoun_http_request_duration_seconds Time from request read to response written.\n"
      << "# TYPE aoun_http_request_duration_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < latency_bounds.size(); ++i) {
    cumulative += buckets_[i];
    out << "aoun_http_request_duration_seconds_bucket{le=\"" << latency_bounds[i] << "\"} " << cumulative << "\n";
  }
  cumulative += buckets_.back();
  out << "aoun_http_request_duration_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
      << "aoun_http_request_duration_seconds_sum " << latency_sum_ << "\n"
      << "aoun_http_request_duration_seconds_count " << latency_count_ << "\n";
  for (auto& [name, n] : counters_)
    out << "# TYPE aoun_" << name << "_total counter\naoun_" << name << "_total " << n << "\n";
  return out.str();
}

}  // namespace aoun::bot
