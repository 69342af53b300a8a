#pragma once
// Staff downloads of what beneficiaries sent: the provider client that fetches a stored media id
// (channels/media), and the pure rules for the response headers that hand the bytes to a browser.
//
// The files come from untrusted beneficiaries and are served on the console's own origin, so
// they are always a download, never a page: Content-Disposition: attachment, nosniff, a CSP
// sandbox, and types a browser would run (HTML, SVG, XML, scripts) are sent as
// application/octet-stream.
//
// Thread-safety: media_downloader::fetch may be called concurrently from any I/O thread.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "bot/config.hpp"
#include "bot/net.hpp"
#include "channels/media.hpp"
#include "channels/message.hpp"

namespace aoun::bot {

class media_downloader {
 public:
  /// Borrows `cfg` (it must outlive this object); owns its TLS context and connection pool.
  media_downloader(net::any_io_executor ex, const config& cfg);
  ~media_downloader();

  /// True when the channel is configured and can hand out media (WhatsApp, Telegram, SMS via
  /// Twilio); false for the web chat and for disabled channels.
  bool enabled(channels::kind ch) const;

  /// Takes one of the `max_concurrent` download slots; false when all are busy (answer 503).
  /// Release it with `release()` once the answer is built.
  bool try_acquire();
  void release();

  /// Downloads `media_id` from the channel's provider. REQUIRES: enabled(ch).
  net::awaitable<channels::media::fetched> fetch(channels::kind ch, std::string media_id);

 private:
  const config& cfg_;
  net::ssl::context tls_;
  std::unique_ptr<channels::http_client> client_;
  std::atomic<int> in_flight_{0};
};

namespace media_http {

/// The Content-Type to send: the download's own header when it names a real type (not
/// application/octet-stream), else the provider's stated mime, else the one stored from the
/// webhook, else application/octet-stream. Parameters are dropped; anything that is not
/// `type/subtype` made of RFC 9110 token characters, and any type a browser would render as
/// active content, becomes application/octet-stream.
std::string content_type(std::string_view downloaded, std::string_view provider_mime, std::string_view stored_mime);

/// A safe file name: the stored one (or the last segment of `fallback_path`) with path
/// separators, control characters and quotes replaced by '_', at most 120 bytes (cut on a UTF-8
/// boundary); when empty, "<kind>-<message id>" plus an extension from `mime`.
std::string file_name(std::string_view stored, std::string_view fallback_path, std::string_view kind,
                      std::string_view mime, std::int64_t message_id);

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<RFC 5987 percent-encoding>`.
/// REQUIRES: `name` came from file_name().
std::string content_disposition(std::string_view name);

}  // namespace media_http
}  // namespace aoun::bot
