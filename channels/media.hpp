#pragma once
// Downloading what a beneficiary sent (photos, documents, voice notes, videos) from the provider
// that received it, given the media id its webhook carried (channel::inbound::media_id).
//
//  - WhatsApp Cloud API: GET {api_base}/{media_id} (Bearer) → JSON {url, mime_type, file_size};
//    then GET {url} with the same Bearer header. The url is on another host (lookaside.fbsbx.com).
//  - Telegram Bot API: GET {api_base}/bot{token}/getFile?file_id=… → result.file_path; then
//    GET {api_base}/file/bot{token}/{file_path}. Bot API downloads stop at 20 MB.
//  - Twilio (MMS): the media id IS the MediaUrl; GET it with Basic auth. Twilio answers with a
//    redirect to a signed storage URL on another host.
//
// Trust rules (the media id comes from a webhook, so it must not turn us into an open proxy):
//  - A WhatsApp or Telegram id is only ever put in a path segment of the configured API base, and
//    must be made of URL-safe characters; a Twilio MediaUrl must be on the configured API base's
//    origin and under our own account's /Messages/ path.
//  - A URL that an authenticated provider answer names (Graph's `url`, a redirect's Location) is
//    followed: https only, unless the API base itself is http:// (tests' fake providers), and
//    never one with a control character, space or non-ASCII byte (it would be written into the
//    request line: header injection). An https redirect to http is refused, not downgraded.
//  - The Authorization header goes only to the origin it was meant for: it is dropped when a
//    redirect leaves that origin. The WhatsApp download URL is the exception Meta documents: it
//    needs the Bearer token, so with an https API base it must be on Meta's media host
//    (lookaside.fbsbx.com) or the Graph base's own origin; any other host is refused.
//  - At most `max_redirects` redirects; the body is capped at `max_bytes` (declared sizes are
//    checked before downloading, received bytes by the client's body limit).
//  - `limits::timeout` bounds the whole fetch: the lookup, the download and every redirect share
//    one deadline, so a fetch never takes longer than it, however many hops it makes.
//
// The request builders and answer readers are pure functions (thread-safe, never throw on
// input); `fetch_*` run them on an http_client and may be called concurrently.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "channels/detail/net.hpp"
#include "channels/http_client.hpp"
#include "channels/provider.hpp"
#include "channels/sms.hpp"
#include "channels/telegram.hpp"
#include "channels/whatsapp.hpp"

namespace aoun::channels::media {

struct limits {
  std::size_t max_bytes = 16 * 1024 * 1024;       ///< largest file accepted
  std::chrono::milliseconds timeout{30000};       ///< the whole fetch: every request and redirect
  int max_redirects = 3;
};

enum class failure {
  none,
  bad_id,          ///< the stored media id cannot be a valid id for this provider
  refused_url,     ///< a URL outside what the trust rules allow (foreign origin, http, bad redirect)
  too_large,       ///< declared or received size over limits::max_bytes
  provider_error,  ///< the provider answered non-2xx (see `provider_status`)
  bad_answer,      ///< a 2xx answer we cannot read (no url / file_path), or too many redirects
  network,         ///< connection, TLS, timeout
};

std::string_view to_string(failure f);

struct fetched {
  failure error = failure::none;
  int provider_status = 0;  ///< the last HTTP status seen (0 = none)
  std::string body;         ///< the file's bytes when error == none
  std::string content_type; ///< the download's Content-Type header, raw
  std::string mime;         ///< the provider's own idea of the type (Graph's mime_type), may be empty
  std::string file_path;    ///< Telegram's file_path (its last segment is a usable file name)
};

// --- pure steps (exposed for tests) -------------------------------------------------------------

/// Same scheme, host (case-insensitive) and port. False when either does not parse.
bool same_origin(std::string_view a, std::string_view b);
/// The absolute URL a Location header names, relative to `current`: absolute http(s) URLs,
/// scheme-relative "//host/p" and absolute paths "/p". nullopt for anything else.
std::optional<std::string> resolve_location(std::string_view current, std::string_view location);

/// The URL a redirect from `current` leads to, under the trust rules: nullopt when `location`
/// does not resolve (see resolve_location), or is not https while `allow_http` is false (also
/// when `current` was https: no downgrade). `keep_authorization` is false when the origin changes.
struct hop {
  std::string url;
  bool keep_authorization = false;
};
std::optional<hop> next_hop(std::string_view current, std::string_view location, bool allow_http);

/// Whether the Bearer token may be sent to the download URL Graph named. With an https API base,
/// only https on lookaside.fbsbx.com (Meta's media host) or on the API base's own origin; with an
/// http base (tests' fake providers) any URL split_url accepts.
bool whatsapp_download_allowed(std::string_view url, std::string_view api_base);

/// GET {api_base}/{media_id} with Bearer; nullopt when the id is not 1–128 of [A-Za-z0-9_-].
std::optional<provider_request> whatsapp_lookup(const whatsapp::config& cfg, std::string_view media_id);
struct whatsapp_location {
  std::string url, mime;
  std::optional<std::uint64_t> size;
};
/// Reads Graph's media answer; nullopt unless it is an object with a string `url`.
std::optional<whatsapp_location> read_whatsapp_lookup(std::string_view body);

/// GET …/getFile?file_id=…; nullopt when the id is not 1–256 of [A-Za-z0-9_-].
std::optional<provider_request> telegram_get_file(const telegram::config& cfg, std::string_view file_id);
struct telegram_file {
  std::string file_path;
  std::optional<std::uint64_t> size;
};
/// Reads getFile's answer: {"ok":true,"result":{"file_path":…}}; nullopt otherwise, or when the
/// path is not 1–256 of [A-Za-z0-9_./-] with no ".." segment and no leading '/'.
std::optional<telegram_file> read_telegram_get_file(std::string_view body);
provider_request telegram_download(const telegram::config& cfg, std::string_view file_path);

/// GET {media_url} with Basic auth; nullopt (refused) unless media_url is on api_base's origin,
/// under {api_base path}/2010-04-01/Accounts/{account_sid}/Messages/, without a query, a
/// fragment or a ".." segment.
std::optional<provider_request> twilio_media(const sms::config& cfg, std::string_view media_url);

// --- the flows ----------------------------------------------------------------------------------

net::awaitable<fetched> fetch_whatsapp(http_client& client, const whatsapp::config& cfg, std::string media_id,
                                       limits lim);
net::awaitable<fetched> fetch_telegram(http_client& client, const telegram::config& cfg, std::string file_id,
                                       limits lim);
net::awaitable<fetched> fetch_twilio(http_client& client, const sms::config& cfg, std::string media_url,
                                     limits lim);

}  // namespace aoun::channels::media
