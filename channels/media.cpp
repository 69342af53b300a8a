#include "channels/media.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include "channels/crypto.hpp"
#include "channels/detail/url.hpp"
#include "channels/detail/util.hpp"

namespace aoun::channels::media {
namespace {

bool id_chars(std::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '-'; });
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has_dot_dot_segment(std::string_view path) {
  std::size_t i = 0;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (path.substr(i, j - i) == "..") return true;
    i = j + 1;
  }
  return false;
}

std::optional<std::uint64_t> size_member(const detail::json* j, std::string_view key) {
  auto v = detail::int_member(j, key);
  if (!v || *v < 0) return std::nullopt;
  return static_cast<std::uint64_t>(*v);
}

bool http_base(std::string_view api_base) { return api_base.rfind("http://", 0) == 0; }

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

void drop_authorization(provider_request& req) {
  std::erase_if(req.headers, [](const auto& h) { return lower(h.first) == "authorization"; });
}

using clock_type = std::chrono::steady_clock;

/// What is left of the fetch's one deadline for the next request; zero when it has passed.
std::chrono::milliseconds left(clock_type::time_point deadline) {
  const auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  return d.count() > 0 ? d : std::chrono::milliseconds(0);
}

fetched failed(failure f, int status = 0) {
  fetched out;
  out.error = f;
  out.provider_status = status;
  return out;
}

bool followable(std::string_view url, bool allow_http) {
  return detail::split_url(url) && (allow_http || url.rfind("https://", 0) == 0);
}

/// Sends one request of a fetch with what is left of its deadline; status 0 once it has passed.
net::awaitable<http_response> send_by(http_client& client, const provider_request& req,
                                      clock_type::time_point deadline) {
  const auto t = left(deadline);
  if (t.count() == 0) {
    http_response timed_out;
    timed_out.ec = make_error_code(beast::error::timeout);
    co_return timed_out;
  }
  co_return co_await client.send(req, t);
}

/// GETs `req`, following redirects under the trust rules in the header. `allow_http` says the
/// API base is http:// (tests); otherwise every URL followed must be https.
net::awaitable<fetched> download(http_client& client, provider_request req, bool allow_http, const limits& lim,
                                 clock_type::time_point deadline) {
  req.method = "GET";
  req.body.clear();
  req.content_type.clear();
  // One byte over the cap still reads as "too large" rather than as a file cut short.
  req.body_limit = lim.max_bytes;
  if (!followable(req.url, allow_http)) co_return failed(failure::refused_url);
  for (int n = 0;; ++n) {
    auto r = co_await send_by(client, req, deadline);
    if (r.status == 0) co_return failed(r.ec == http::error::body_limit ? failure::too_large : failure::network);
    if (is_redirect(r.status)) {
      if (n >= lim.max_redirects) co_return failed(failure::bad_answer, r.status);
      auto next = next_hop(req.url, r.location, allow_http);
      if (!next) co_return failed(failure::refused_url, r.status);
      // Credentials stay with the origin they were meant for (a signed storage URL needs none).
      if (!next->keep_authorization) drop_authorization(req);
      req.url = std::move(next->url);
      continue;
    }
    if (r.status < 200 || r.status >= 300) co_return failed(failure::provider_error, r.status);
    fetched out;
    out.provider_status = r.status;
    out.body = std::move(r.body);
    out.content_type = std::move(r.content_type);
    co_return out;
  }
}

}  // namespace

std::string_view to_string(failure f) {
  switch (f) {
    case failure::none: return "none";
    case failure::bad_id: return "bad_id";
    case failure::refused_url: return "refused_url";
    case failure::too_large: return "too_large";
    case failure::provider_error: return "provider_error";
    case failure::bad_answer: return "bad_answer";
    case failure::network: return "network";
  }
  return "unknown";
}

bool same_origin(std::string_view a, std::string_view b) {
  auto x = detail::split_url(a), y = detail::split_url(b);
  return x && y && x->tls == y->tls && lower(x->host) == lower(y->host) && x->port == y->port;
}

std::optional<std::string> resolve_location(std::string_view current, std::string_view location) {
  if (location.empty() || location.size() > 8192) return std::nullopt;
  if (location.rfind("https://", 0) == 0 || location.rfind("http://", 0) == 0) {
    if (!detail::split_url(location)) return std::nullopt;
    return std::string(location);
  }
  auto cur = detail::split_url(current);
  if (!cur) return std::nullopt;
  const std::string scheme = cur->tls ? "https:" : "http:";
  if (location.rfind("//", 0) == 0) {
    std::string abs = scheme + std::string(location);
    if (!detail::split_url(abs)) return std::nullopt;
    return abs;
  }
  if (location.front() != '/') return std::nullopt;  // relative paths: no provider sends them
  const bool ipv6 = cur->host.find(':') != std::string::npos;
  std::string abs = scheme + "//" + (ipv6 ? "[" + cur->host + "]" : cur->host);
  if (!cur->default_port) abs += ":" + cur->port;
  abs += location;
  if (!detail::split_url(abs)) return std::nullopt;
  return abs;
}

std::optional<hop> next_hop(std::string_view current, std::string_view location, bool allow_http) {
  auto url = resolve_location(current, location);
  if (!url || !followable(*url, allow_http)) return std::nullopt;
  hop h;
  h.keep_authorization = same_origin(current, *url);
  h.url = std::move(*url);
  return h;
}

bool whatsapp_download_allowed(std::string_view url, std::string_view api_base) {
  auto u = detail::split_url(url);
  if (!u) return false;
  if (http_base(api_base)) return true;
  if (!u->tls) return false;
  // Meta documents the download URL as lookaside.fbsbx.com; the token is good for Graph itself.
  return (lower(u->host) == "lookaside.fbsbx.com" && u->port == "443") || same_origin(url, api_base);
}

std::optional<provider_request> whatsapp_lookup(const whatsapp::config& cfg, std::string_view media_id) {
  if (!id_chars(media_id, 128)) return std::nullopt;
  provider_request r;
  r.method = "GET";
  r.url = cfg.api_base + "/" + std::string(media_id);
  r.headers.emplace_back("Authorization", "Bearer " + cfg.token);
  return r;
}

std::optional<whatsapp_location> read_whatsapp_lookup(std::string_view body) {
  auto j = detail::parse_json(body);
  if (!j || !j->is_object()) return std::nullopt;
  const auto* url = detail::member(*j, "url");
  if (!url || !url->is_string() || url->get_ref<const std::string&>().empty()) return std::nullopt;
  whatsapp_location out;
  out.url = url->get<std::string>();
  out.mime = detail::text_member(&*j, "mime_type");
  out.size = size_member(&*j, "file_size");
  return out;
}

std::optional<provider_request> telegram_get_file(const telegram::config& cfg, std::string_view file_id) {
  if (!id_chars(file_id, 256)) return std::nullopt;
  provider_request r;
  r.method = "GET";
  r.url = cfg.api_base + "/bot" + cfg.token + "/getFile?file_id=" + std::string(file_id);
  return r;
}

std::optional<telegram_file> read_telegram_get_file(std::string_view body) {
  auto j = detail::parse_json(body);
  if (!j || !j->is_object()) return std::nullopt;
  const auto* ok = detail::member(*j, "ok");
  if (!ok || !ok->is_boolean() || !ok->get<bool>()) return std::nullopt;
  const auto* result = detail::object_member(&*j, "result");
  if (!result) return std::nullopt;
  telegram_file out;
  out.file_path = detail::text_member(result, "file_path");
  out.size = size_member(result, "file_size");
  const auto& p = out.file_path;
  if (p.empty() || p.size() > 256 || p.front() == '/' || has_dot_dot_segment(p)) return std::nullopt;
  if (!std::all_of(p.begin(), p.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '/';
      }))
    return std::nullopt;
  return out;
}

provider_request telegram_download(const telegram::config& cfg, std::string_view file_path) {
  provider_request r;
  r.method = "GET";
  r.url = cfg.api_base + "/file/bot" + cfg.token + "/" + std::string(file_path);
  return r;
}

std::optional<provider_request> twilio_media(const sms::config& cfg, std::string_view media_url) {
  if (cfg.account_sid.empty() || !id_chars(cfg.account_sid, 64)) return std::nullopt;
  if (!same_origin(media_url, cfg.api_base)) return std::nullopt;
  auto u = detail::split_url(media_url);
  auto base = detail::split_url(cfg.api_base);
  std::string prefix = base->target == "/" ? "" : base->target;
  if (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  prefix += "/2010-04-01/Accounts/" + cfg.account_sid + "/Messages/";
  const std::string& path = u->target;
  if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  if (media_url.find_first_of("?#") != std::string_view::npos || has_dot_dot_segment(path)) return std::nullopt;
  if (!std::all_of(path.begin(), path.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '/';
      }))
    return std::nullopt;
  provider_request r;
  r.method = "GET";
  r.url = std::string(media_url);
  r.headers.emplace_back("Authorization", "Basic " + crypto::base64_encode(cfg.account_sid + ":" + cfg.auth_token));
  return r;
}

net::awaitable<fetched> fetch_whatsapp(http_client& client, const whatsapp::config& cfg, std::string media_id,
                                       limits lim) {
  auto lookup = whatsapp_lookup(cfg, media_id);
  if (!lookup) co_return failed(failure::bad_id);
  const auto deadline = clock_type::now() + lim.timeout;
  lookup->body_limit = 64 * 1024;  // a small JSON answer
  auto r = co_await send_by(client, *lookup, deadline);
  if (r.status == 0) co_return failed(failure::network);
  if (r.status < 200 || r.status >= 300) co_return failed(failure::provider_error, r.status);
  auto where = read_whatsapp_lookup(r.body);
  if (!where) co_return failed(failure::bad_answer, r.status);
  if (where->size && *where->size > lim.max_bytes) co_return failed(failure::too_large, r.status);
  // Meta's download URL needs the same Bearer token. Graph's answer could still name any host
  // (a compromised or mistaken answer, a proxy in between), so the token goes only to Meta's
  // media host or Graph's own origin.
  if (!whatsapp_download_allowed(where->url, cfg.api_base)) co_return failed(failure::refused_url, r.status);
  provider_request get;
  get.url = where->url;
  get.headers.emplace_back("Authorization", "Bearer " + cfg.token);
  auto out = co_await download(client, std::move(get), http_base(cfg.api_base), lim, deadline);
  out.mime = where->mime;
  co_return out;
}

net::awaitable<fetched> fetch_telegram(http_client& client, const telegram::config& cfg, std::string file_id,
                                       limits lim) {
  auto req = telegram_get_file(cfg, file_id);
  if (!req) co_return failed(failure::bad_id);
  const auto deadline = clock_type::now() + lim.timeout;
  req->body_limit = 64 * 1024;
  auto r = co_await send_by(client, *req, deadline);
  if (r.status == 0) co_return failed(failure::network);
  // Telegram says "Bad Request: file is too big" (400) for files over the Bot API's 20 MB.
  if (r.status < 200 || r.status >= 300) co_return failed(failure::provider_error, r.status);
  auto file = read_telegram_get_file(r.body);
  if (!file) co_return failed(failure::bad_answer, r.status);
  if (file->size && *file->size > lim.max_bytes) co_return failed(failure::too_large, r.status);
  auto out =
      co_await download(client, telegram_download(cfg, file->file_path), http_base(cfg.api_base), lim, deadline);
  out.file_path = file->file_path;
  co_return out;
}

net::awaitable<fetched> fetch_twilio(http_client& client, const sms::config& cfg, std::string media_url,
                                     limits lim) {
  auto req = twilio_media(cfg, media_url);
  if (!req) co_return failed(failure::refused_url);
  const auto deadline = clock_type::now() + lim.timeout;
  co_return co_await download(client, std::move(*req), http_base(cfg.api_base), lim, deadline);
}

}  // namespace aoun::channels::media
