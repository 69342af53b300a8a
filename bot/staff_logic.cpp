#include "bot/staff_logic.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace aoun::bot::staff_logic {
namespace {

using nlohmann::json;

constexpr std::int64_t riyadh_offset = 3 * 3600;

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
int days_in_month(int y, int m) {
  static constexpr std::array<int, 12> d = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : d[static_cast<std::size_t>(m - 1)];
}

// Howard Hinnant's days_from_civil / civil_from_days.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t yy = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yy + (m <= 2));
}

double round2(double v) { return std::round(v * 100.0) / 100.0; }

struct acc {
  std::int64_t n = 0;
  double sum = 0;
  void add(int v) {
    ++n;
    sum += v;
  }
  json avg() const { return n == 0 ? json(nullptr) : json(round2(sum / static_cast<double>(n))); }
};

struct group {
  std::int64_t responses = 0;
  acc overall, speed, courtesy;
  void add(const storage::survey_sample& x) {
    if (!x.overall) return;
    ++responses;
    overall.add(*x.overall);
    if (x.speed) speed.add(*x.speed);
    if (x.courtesy) courtesy.add(*x.courtesy);
  }
  /// `hide`: fewer answers than the minimum, for a reader who may not see single answers: the
  /// count only (averages null), so that one beneficiary's ratings, and the colleague they
  /// rated, cannot be read off a day or a channel with one answer.
  json to_json(bool all_questions = true, bool hide = false) const {
    json j{{"responses", responses}, {"overall", hide ? json(nullptr) : overall.avg()}};
    if (all_questions) {
      j["speed"] = hide ? json(nullptr) : speed.avg();
      j["courtesy"] = hide ? json(nullptr) : courtesy.avg();
    }
    return j;
  }
};

}  // namespace

int role_rank(std::string_view role) {
  if (role == "agent") return agent;
  if (role == "supervisor") return supervisor;
  if (role == "admin") return admin;
  return -1;
}

std::vector<std::string> allowed_transitions(std::string_view step) {
  if (step == "submitted") return {"collecting_info"};
  if (step == "collecting_info") return {"evaluating"};
  if (step == "evaluating") return {"approved", "rejected"};
  if (step == "approved" || step == "rejected") return {"closed"};
  return {};
}

bool is_step(std::string_view s) {
  return s == "submitted" || s == "collecting_info" || s == "evaluating" || s == "approved" || s == "rejected" ||
         s == "closed";
}

bool is_verification_method(std::string_view s) {
  return s == "document_check" || s == "interview" || s == "field_visit";
}

bool valid_iso8601(std::string_view s) {
  int y, mo, d;
  if (s.size() < 10 || !digits(s, 0, 4, y) || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' ||
      !digits(s, 8, 2, d))
    return false;
  if (y < 1900 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return false;
  if (s.size() == 10) return true;
  if (s[10] != 'T' && s[10] != ' ') return false;
  int h, mi, sec = 0;
  if (!digits(s, 11, 2, h) || s.size() < 16 || s[13] != ':' || !digits(s, 14, 2, mi)) return false;
  if (h > 23 || mi > 59) return false;
  std::size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    if (!digits(s, pos + 1, 2, sec) || sec > 59) return false;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {  // fractional seconds
      ++pos;
      std::size_t start = pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
      if (pos == start) return false;
    }
  }
  if (pos == s.size()) return true;
  if (s[pos] == 'Z') return pos + 1 == s.size();
  if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!digits(s, pos + 1, 2, oh) || oh > 14) return false;
    if (pos + 3 == s.size()) return true;
    std::size_t mpos = s[pos + 3] == ':' ? pos + 4 : pos + 3;
    return digits(s, mpos, 2, om) && om <= 59 && mpos + 2 == s.size();
  }
  return false;
}

std::string appointment_display(std::string_view iso) {
  // Shown to the beneficiary in Riyadh time (UTC+3, no DST). A time with an offset ("Z",
  // "+00:00") is converted; one without an offset is taken as Riyadh time already.
  if (iso.size() < 16 || (iso[10] != 'T' && iso[10] != ' '))
    return std::string(iso.substr(0, std::min<std::size_t>(iso.size(), 10)));
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  if (std::sscanf(std::string(iso.substr(0, 16)).c_str(), "%d-%d-%d%*c%d:%d", &y, &mo, &d, &h, &mi) != 5)
    return std::string(iso.substr(0, 10)) + " " + std::string(iso.substr(11, 5));
  std::string_view rest = iso.substr(16);
  if (rest.size() >= 3 && rest[0] == ':') rest.remove_prefix(3);          // seconds
  if (!rest.empty() && rest[0] == '.')                                     // fraction
    while (!rest.empty() && rest[0] != 'Z' && rest[0] != '+' && rest[0] != '-') rest.remove_prefix(1);
  int offset_min = 180;  // no offset: already Riyadh time
  if (!rest.empty() && rest[0] == 'Z') {
    offset_min = 0;
  } else if (rest.size() >= 3 && (rest[0] == '+' || rest[0] == '-')) {
    // Every form valid_appointment takes: +HH, +HHMM, +HH:MM.
    int oh = std::atoi(std::string(rest.substr(1, 2)).c_str());
    std::string_view minutes = rest.substr(3);
    if (!minutes.empty() && minutes[0] == ':') minutes.remove_prefix(1);
    int om = minutes.size() >= 2 ? std::atoi(std::string(minutes.substr(0, 2)).c_str()) : 0;
    offset_min = (rest[0] == '-' ? -1 : 1) * (oh * 60 + om);
  }
  // Days from civil (H. Hinnant's algorithm), then shift by (Riyadh - offset).
  auto days_from_civil = [](int yy, unsigned m, unsigned dd) {
    yy -= m <= 2;
    const int era = (yy >= 0 ? yy : yy - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(yy - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + dd - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<int>(doe) - 719468;
  };
  long long minutes = static_cast<long long>(days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d))) * 1440 +
                      h * 60 + mi + (180 - offset_min);
  long long days = minutes >= 0 ? minutes / 1440 : (minutes - 1439) / 1440;
  int mod = static_cast<int>(minutes - days * 1440);
  // Civil from days.
  long long z = days + 719468;
  const long long era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned dd = doy - (153 * mp + 2) / 5 + 1;
  const unsigned mm = mp < 10 ? mp + 3 : mp - 9;
  long long yy = static_cast<long long>(yoe) + era * 400 + (mm <= 2);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u %02d:%02d", yy, mm, dd, mod / 60, mod % 60);
  return buf;
}

std::string first_name(std::string_view name) {
  auto b = name.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  auto e = name.find_first_of(" \t\r\n", b);
  return std::string(name.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string ascii_digits(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c0 = static_cast<unsigned char>(s[i]);
    if (i + 1 < s.size()) {
      auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (c0 == 0xD9 && c1 >= 0xA0 && c1 <= 0xA9) {  // U+0660..U+0669
        out.push_back(static_cast<char>('0' + (c1 - 0xA0)));
        ++i;
        continue;
      }
      if (c0 == 0xDB && c1 >= 0xB0 && c1 <= 0xB9) {  // U+06F0..U+06F9
        out.push_back(static_cast<char>('0' + (c1 - 0xB0)));
        ++i;
        continue;
      }
    }
    out.push_back(static_cast<char>(c0));
  }
  return out;
}

bool valid_username(std::string_view s) {
  if (s.size() < 3 || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

std::string riyadh_day(std::int64_t t) {
  std::int64_t local = t + riyadh_offset;
  std::int64_t days = local >= 0 ? local / 86400 : (local - 86399) / 86400;
  int y, m, d;
  civil_from_days(days, y, m, d);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, m, d);
  return buf;
}

std::optional<std::int64_t> riyadh_day_start(std::string_view day) {
  if (day.size() != 10 || !valid_iso8601(day)) return std::nullopt;
  int y, m, d;
  digits(day, 0, 4, y);
  digits(day, 5, 2, m);
  digits(day, 8, 2, d);
  return days_from_civil(y, static_cast<unsigned>(m), static_cast<unsigned>(d)) * 86400 - riyadh_offset;
}

std::optional<double> median(std::vector<std::int64_t> v) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  if (n % 2 == 1) return static_cast<double>(v[n / 2]);
  return (static_cast<double>(v[n / 2 - 1]) + static_cast<double>(v[n / 2])) / 2.0;
}

json satisfaction_report(const std::vector<storage::survey_sample>& samples, bool include_staff,
                         int min_staff_responses) {
  group all;
  std::map<std::string, std::array<std::int64_t, 5>> dist{{"overall", {}}, {"speed", {}}, {"courtesy", {}}};
  std::map<std::string, group> by_channel, by_service, by_day;
  std::map<std::int64_t, std::pair<std::string, group>> by_staff;
  for (const auto& x : samples) {
    if (!x.overall) continue;
    all.add(x);
    auto count = [&](const char* q, const std::optional<int>& v) {
      if (v && *v >= 1 && *v <= 5) dist[q][static_cast<std::size_t>(*v - 1)]++;
    };
    count("overall", x.overall);
    count("speed", x.speed);
    count("courtesy", x.courtesy);
    by_channel[x.channel].add(x);
    by_service[x.service_type.value_or("unspecified")].add(x);
    by_day[riyadh_day(x.started_at)].add(x);
    if (x.staff_id) {
      auto& s = by_staff[*x.staff_id];
      s.first = x.staff_name;
      s.second.add(x);
    }
  }
  // Agents see no group of fewer answers than the minimum (supervisors and admins see every
  // group, and each colleague's own figures above that minimum).
  const auto hide = [&](const group& g) { return !include_staff && g.responses < min_staff_responses; };
  // Nor can they work one out: the totals less the groups shown are the groups hidden, so when
  // those hold fewer answers together than the minimum (one SMS answer beside two WhatsApp
  // ones), the smallest groups shown are hidden too until they do, or none is left shown
  // (complementary suppression, per dimension: channel, service type, day).
  const auto hidden_in = [&](const std::map<std::string, group>& groups) {
    std::set<std::string> out;
    if (include_staff) return out;
    std::int64_t together = 0;
    std::vector<std::pair<std::int64_t, std::string>> shown;
    for (const auto& [k, g] : groups) {
      if (hide(g)) {
        out.insert(k);
        together += g.responses;
      } else {
        shown.emplace_back(g.responses, k);
      }
    }
    std::sort(shown.begin(), shown.end());
    for (const auto& [n, k] : shown) {
      if (out.empty() || together >= min_staff_responses) break;
      out.insert(k);
      together += n;
    }
    return out;
  };
  auto invited = static_cast<std::int64_t>(samples.size());
  json j{{"invited", invited},
         {"responses", all.responses},
         {"response_rate", invited == 0 ? 0.0 : round2(static_cast<double>(all.responses) / static_cast<double>(invited))}};
  j["averages"] = all.to_json(true, hide(all));
  j["averages"].erase("responses");
  json d = json::object();
  for (auto& [q, counts] : dist) {
    json c = json::object();
    for (int i = 0; i < 5; ++i) c[std::to_string(i + 1)] = hide(all) ? 0 : counts[static_cast<std::size_t>(i)];
    d[q] = c;
  }
  j["distribution"] = d;
  j["min_group_responses"] = include_staff ? 0 : min_staff_responses;
  json ch = json::object();
  const auto hidden_channels = hidden_in(by_channel);
  for (auto& [k, g] : by_channel) ch[k] = g.to_json(true, hidden_channels.count(k) > 0);
  j["by_channel"] = ch;
  json sv = json::object();
  const auto hidden_services = hidden_in(by_service);
  for (auto& [k, g] : by_service) sv[k] = g.to_json(true, hidden_services.count(k) > 0);
  j["by_service_type"] = sv;
  json per = json::array();
  const auto hidden_days = hidden_in(by_day);
  for (auto& [day, g] : by_day) {
    auto p = g.to_json(false, hidden_days.count(day) > 0);
    p["period"] = day;
    per.push_back(std::move(p));
  }
  j["by_period"] = per;
  if (include_staff) {
    json st = json::array();
    for (auto& [id, p] : by_staff) {
      if (p.second.responses < min_staff_responses) continue;
      auto g = p.second.to_json();
      g["display_name"] = p.first;
      st.push_back(g);
    }
    j["by_staff"] = st;
    j["min_staff_responses"] = min_staff_responses;
  }
  return j;
}

}  // namespace aoun::bot::staff_logic
