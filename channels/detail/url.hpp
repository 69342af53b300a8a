#pragma once
// Minimal absolute-URL split for the HTTP client (http:// and https:// only).

#include <optional>
#include <string>
#include <string_view>

namespace aoun::channels::detail {

struct url_parts {
  bool tls = false;
  std::string host;    ///< without brackets for IPv6 literals
  std::string port;    ///< always set ("443" / "80" when absent)
  std::string target;  ///< path + query, at least "/"; the fragment is dropped
  bool default_port = true;
};

/// nullopt for other schemes, an empty host, userinfo, a non-numeric/out-of-range port, or any
/// byte that cannot appear in a URL on the wire: controls and space (<= 0x20), DEL and non-ASCII.
std::optional<url_parts> split_url(std::string_view url);

}  // namespace aoun::channels::detail
