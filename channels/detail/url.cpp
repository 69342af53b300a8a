#include "channels/detail/url.hpp"

#include <algorithm>

namespace aoun::channels::detail {

std::optional<url_parts> split_url(std::string_view url) {
  // The target is written to the request line verbatim: a CR/LF would start a header of the
  // URL's choosing (on a request that may carry our Authorization), and a space would end the
  // target early. A URL on the wire is ASCII with no controls, so anything else is refused.
  if (!std::all_of(url.begin(), url.end(), [](unsigned char c) { return c > 0x20 && c < 0x7F; }))
    return std::nullopt;
  url_parts p;
  std::string_view rest;
  if (url.substr(0, 8) == "https://") {
    p.tls = true;
    rest = url.substr(8);
  } else if (url.substr(0, 7) == "http://") {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  const auto auth_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, auth_end);
  std::string_view target = rest.substr(auth_end);
  if (const auto hash = target.find('#'); hash != std::string_view::npos) target = target.substr(0, hash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;

  std::string_view host = authority, port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    const int n = std::stoi(std::string(port));
    if (n < 1 || n > 65535) return std::nullopt;
    p.port = std::to_string(n);
    p.default_port = p.port == (p.tls ? "443" : "80");
  } else {
    p.port = p.tls ? "443" : "80";
  }
  p.host = std::string(host);
  p.target = target.empty() ? "/" : std::string(target);
  if (p.target.front() == '?') p.target.insert(p.target.begin(), '/');
  return p;
}

}  // namespace aoun::channels::detail
