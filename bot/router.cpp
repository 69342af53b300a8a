#include "bot/router.hpp"

namespace aoun::bot {
namespace {

std::vector<std::string_view> split_path(std::string_view p) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < p.size()) {
    while (i < p.size() && p[i] == '/') ++i;
    auto j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.push_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::vector<std::string_view> list_items(std::string_view field) {
  std::vector<std::string_view> out;
  for (std::size_t at = 0; at <= field.size();) {
    auto comma = field.find(',', at);
    if (comma == std::string_view::npos) comma = field.size();
    auto item = field.substr(at, comma - at);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.push_back(item);
    at = comma + 1;
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> parse_query(std::string_view q) {
  std::map<std::string, std::string> out;
  std::size_t i = 0;
  while (i <= q.size()) {
    auto j = q.find('&', i);
    if (j == std::string_view::npos) j = q.size();
    auto part = q.substr(i, j - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      if (eq == std::string_view::npos)
        out.emplace(percent_decode(part), "");
      else
        out.emplace(percent_decode(part.substr(0, eq)), percent_decode(part.substr(eq + 1)));
    }
    i = j + 1;
  }
  return out;
}

void router::add(http::verb method, std::string pattern, handler h) {
  std::vector<std::string> segs;
  for (auto s : split_path(pattern)) segs.emplace_back(s);
  entries_.push_back({method, std::move(segs), std::move(pattern), std::move(h), {}});
}

void router::add_websocket(std::string pattern, websocket_handler h) {
  std::vector<std::string> segs;
  for (auto s : split_path(pattern)) segs.emplace_back(s);
  entries_.push_back({http::verb::get, std::move(segs), std::move(pattern), {}, std::move(h)});
}

void router::add_prefix(std::string prefix, handler h) { prefixes_.emplace_back(std::move(prefix), std::move(h)); }

bool router::matches(const entry& e, const std::vector<std::string_view>& segs,
                     std::map<std::string, std::string>& params) {
  if (e.segments.size() != segs.size()) return false;
  std::map<std::string, std::string> captured;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto& p = e.segments[i];
    if (p.size() > 2 && p.front() == '{' && p.back() == '}')
      captured[p.substr(1, p.size() - 2)] = std::string(segs[i]);
    else if (p != segs[i])
      return false;
  }
  params = std::move(captured);
  return true;
}

router::match router::find(http::verb method, std::string_view path, bool upgrade) const {
  match m;
  auto segs = split_path(path);
  std::string allow;
  for (const auto& e : entries_) {
    std::map<std::string, std::string> params;
    if (!matches(e, segs, params)) continue;
    bool is_ws = static_cast<bool>(e.ws);
    if (is_ws != upgrade) continue;  // a WebSocket route answers only upgrades, and vice versa
    // HEAD is served wherever GET is (RFC 9110 §9.3.2; uptime monitors use it): the handler
    // runs as for a GET and the server drops the body. Not on the API, whose GETs may have
    // effects a HEAD must not (a file fetched from the provider and audited as downloaded).
    const bool head_as_get = method == http::verb::head && e.method == http::verb::get && !is_ws &&
                             e.pattern.rfind("/api/", 0) != 0;
    if (e.method == method || head_as_get) {
      m.route = e.pattern;
      m.params = std::move(params);
      if (is_ws)
        m.ws = &e.ws;
      else
        m.http = &e.http;
      return m;
    }
    auto name = std::string(http::to_string(e.method));
    if (allow.find(name) == std::string::npos) allow += (allow.empty() ? "" : ", ") + name;
    if (e.method == http::verb::get && e.pattern.rfind("/api/", 0) != 0 && allow.find("HEAD") == std::string::npos)
      allow += ", HEAD";
  }
  for (const auto& [prefix, h] : prefixes_) {
    if (path.substr(0, prefix.size()) == prefix || path == std::string_view(prefix).substr(0, prefix.size() - 1)) {
      if (method == http::verb::get || method == http::verb::head) {
        m.route = prefix + "*";
        m.http = &h;
        return m;
      }
      if (allow.empty()) allow = "GET, HEAD";
    }
  }
  m.allow = std::move(allow);
  return m;
}

}  // namespace aoun::bot
