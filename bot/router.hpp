#pragma once
// Maps (method, path) to a handler. Patterns are literal segments and `{name}` captures:
// "/api/v1/conversations/{id}/messages". A path no pattern matches is 404; a path some pattern
// matches with another method is 405 with an Allow header. Built once at start-up, then
// read-only (thread-safe to match from any thread).

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bot/net.hpp"

namespace aoun::bot {

struct request_context {
  request& req;
  std::string_view path;                       ///< target without the query
  std::map<std::string, std::string> query;    ///< decoded query parameters
  std::map<std::string, std::string> params;   ///< `{name}` captures (not decoded)
  std::string request_id;
  std::string route;                           ///< the matched pattern, for metrics and logs
  std::string remote;                          ///< peer address
  /// Set by a handler to something that must live until its response has been written (or the
  /// write failed), e.g. a media download slot. Released by the server after the write.
  std::shared_ptr<void> keep_until_written = nullptr;
};

using handler = std::function<net::awaitable<response>(request_context&)>;
/// Takes over the connection for a WebSocket; the request is the upgrade request.
using websocket_handler = std::function<net::awaitable<void>(beast::tcp_stream, request_context&)>;

class router {
 public:
  void add(http::verb method, std::string pattern, handler h);
  void add_websocket(std::string pattern, websocket_handler h);
  /// A handler for every GET under a prefix ("/console/"), for static files.
  void add_prefix(std::string prefix, handler h);

  struct match {
    const handler* http = nullptr;
    const websocket_handler* ws = nullptr;
    std::string route;
    std::map<std::string, std::string> params;
    std::string allow;  ///< for 405: the methods the path accepts
  };
  /// Finds the route. `upgrade` asks for a WebSocket route first.
  match find(http::verb method, std::string_view path, bool upgrade) const;

 private:
  struct entry {
    http::verb method;
    std::vector<std::string> segments;
    std::string pattern;
    handler http;
    websocket_handler ws;
  };
  static bool matches(const entry& e, const std::vector<std::string_view>& segs,
                      std::map<std::string, std::string>& params);
  std::vector<entry> entries_;
  std::vector<std::pair<std::string, handler>> prefixes_;
};

/// Splits "a=1&b=%20" into decoded pairs ('+' is a space). Malformed escapes are kept literally.
std::map<std::string, std::string> parse_query(std::string_view q);
std::string percent_decode(std::string_view s);
/// The items of a comma-separated header list ("aoun.chat, session.x"), each without the
/// spaces and tabs around it; empty items are left out. The views point into `field`.
std::vector<std::string_view> list_items(std::string_view field);

}  // namespace aoun::bot
