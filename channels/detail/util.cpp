#include "channels/detail/util.hpp"

#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>

namespace aoun::channels::detail {

std::optional<json> parse_json(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

const json* member(const json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(std::string(key));
  return it == j.end() ? nullptr : &*it;
}

const json* member(const json* j, std::string_view key) { return j ? member(*j, key) : nullptr; }

const json* object_member(const json* j, std::string_view key) {
  const json* m = member(j, key);
  return m && m->is_object() ? m : nullptr;
}

const json* array_member(const json* j, std::string_view key) {
  const json* m = member(j, key);
  return m && m->is_array() ? m : nullptr;
}

std::string text_member(const json* j, std::string_view key) {
  const json* m = member(j, key);
  if (!m) return {};
  if (m->is_string()) return m->get<std::string>();
  if (m->is_number_unsigned()) return std::to_string(m->get<std::uint64_t>());
  if (m->is_number_integer()) return std::to_string(m->get<std::int64_t>());
  return {};
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::int64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> int_member(const json* j, std::string_view key) {
  const json* m = member(j, key);
  if (!m) return std::nullopt;
  if (m->is_number_unsigned()) {
    const auto u = m->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (m->is_number_integer()) return m->get<std::int64_t>();
  if (m->is_string()) return parse_int(m->get_ref<const std::string&>());
  return std::nullopt;
}

std::optional<double> number_member(const json* j, std::string_view key) {
  const json* m = member(j, key);
  if (!m || !m->is_number()) return std::nullopt;
  const double d = m->get<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

std::chrono::milliseconds seconds_clamped(std::int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds > 3600) seconds = 3600;
  return std::chrono::seconds(seconds);
}

std::optional<std::int64_t> http_date(std::string_view v) {
  // IMF-fixdate (RFC 9110 section 5.6.7), the form servers must send: "Sun, 06 Nov 1994 08:49:37 GMT".
  if (v.size() != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' || v[16] != ' ' || v[19] != ':' ||
      v[22] != ':' || v.substr(25) != " GMT")
    return std::nullopt;
  static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int mon = -1;
  for (int i = 0; i < 12; ++i)
    if (v.substr(8, 3) == months[i]) mon = i + 1;
  for (std::size_t i : {5, 6, 12, 13, 14, 15, 17, 18, 20, 21, 23, 24})
    if (v[i] < '0' || v[i] > '9') return std::nullopt;  // digits only (parse_int takes a sign)
  const auto day = parse_int(v.substr(5, 2)), year = parse_int(v.substr(12, 4)), h = parse_int(v.substr(17, 2)),
             mi = parse_int(v.substr(20, 2)), s = parse_int(v.substr(23, 2));
  if (mon < 0 || !day || !year || !h || !mi || !s || *day < 1 || *day > 31 || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;
  namespace c = std::chrono;  // (a day past the month's end counts on, as the standard defines)
  const std::int64_t days = c::sys_days{c::year{static_cast<int>(*year)} / c::month{static_cast<unsigned>(mon)} /
                                        c::day{static_cast<unsigned>(*day)}}
                                .time_since_epoch()
                                .count();
  return days * 86400 + *h * 3600 + *mi * 60 + *s;
}

std::chrono::milliseconds retry_after_header(std::string_view value, std::int64_t now_unix) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (const auto v = parse_int(value)) return seconds_clamped(*v);
  // Or a date: the time until then (a date past is "now").
  if (const auto at = http_date(value)) {
    if (now_unix == 0)
      now_unix = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return seconds_clamped(*at - now_unix);
  }
  return std::chrono::milliseconds{0};
}

std::string error_text(int http_status, std::string_view code) {
  std::string s = "http " + std::to_string(http_status);
  if (!code.empty()) {
    s += " code ";
    s += code;
  }
  return s;
}

std::optional<send_result> classify_transport(int http_status, std::string_view retry_after) {
  send_result r;
  if (http_status == 0) {
    r.outcome = send_outcome::retry;
    r.error = "network error or timeout";
    return r;
  }
  if (http_status == 429) {
    r.outcome = send_outcome::rate_limited;
    r.retry_after = retry_after_header(retry_after);
    r.error = error_text(http_status);
    return r;
  }
  if (http_status >= 500) {
    r.outcome = send_outcome::retry;
    r.error = error_text(http_status);
    return r;
  }
  return std::nullopt;
}

}  // namespace aoun::channels::detail
