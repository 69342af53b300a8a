#pragma once
// Staff downloads of what beneficiaries sent: the provider client that fetches a stored media id
// (channels/media), and the pure rules for the response headers that hand the bytes to a browser.
//
// The files come from untrusted beneficiaries and are served on the console's own origin, so
// they are always a download, never a page: Content-Disposition: attachment, nosniff, a CSP
// sandbox, and types a browser would run (HTML, SVG, XML, scripts) are sent as
// application/octet-stream.
//
// Thread-safety: media_downloader::fetch, try_acquire and stop may be called concurrently from
// any I/O thread.
//
// Lifetime: a download's slot and its fetch coroutine may outlive the downloader: at shutdown,
// coroutine frames still suspended are destroyed by ~io_context, after the app's members. They
// hold only the shared state (a shared_ptr), never the downloader itself.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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

  struct shared_state;

  /// One of the `max_concurrent` download slots, given back when destroyed. Hold it until the
  /// file has been written to the client: the bytes stay in memory until then.
  class slot {
   public:
    explicit slot(std::shared_ptr<shared_state> s) : state_(std::move(s)) {}
    slot(slot&&) noexcept = default;
    slot& operator=(slot&&) = delete;
    ~slot();

   private:
    std::shared_ptr<shared_state> state_;
  };

  /// Takes a download slot; nullopt when all are busy (answer 503).
  std::optional<slot> try_acquire();

  /// Downloads `media_id` from the channel's provider, within cfg.media.timeout for the whole
  /// fetch. REQUIRES: enabled(ch). After stop(), fails at once with failure::network.
  net::awaitable<channels::media::fetched> fetch(channels::kind ch, std::string media_id);

  /// The server is shutting down: fetches in flight are cut short (they end with
  /// failure::network) and new ones fail at once, so no staff request outlives the shutdown
  /// grace waiting on a provider. Any thread; idempotent.
  void stop();

 private:
  net::awaitable<channels::media::fetched> fetch_from(channels::kind ch, std::string media_id);

  // Constant after construction.
  const config& cfg_;
  net::ssl::context tls_;
  std::unique_ptr<channels::http_client> client_;
  const std::shared_ptr<shared_state> state_;
};

namespace media_http {

/// The Content-Type to send: the download's own header when it names a real type (not
/// application/octet-stream), else the provider's stated mime, else the one stored from the
/// webhook, else application/octet-stream. Parameters are dropped; anything that is not
/// `type/subtype` made of RFC 9110 token characters, and any type a browser would render as
/// active content, becomes application/octet-stream.
std::string content_type(std::string_view downloaded, std::string_view provider_mime, std::string_view stored_mime);

/// A safe file name: the stored one (or the last segment of `fallback_path`) with path
/// separators, control characters and quotes replaced by '_', at most 120 bytes: a longer name's
/// stem is cut on a UTF-8 boundary and its extension (up to 15 ASCII letters/digits) kept; when
/// empty, "<kind>-<message id>" plus an extension from `mime`.
std::string file_name(std::string_view stored, std::string_view fallback_path, std::string_view kind,
                      std::string_view mime, std::int64_t message_id);

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<RFC 5987 percent-encoding>`.
/// REQUIRES: `name` came from file_name().
std::string content_disposition(std::string_view name);

/// What a web-chat visitor's file is, read from its first bytes (never from its name or the
/// browser's Content-Type): JPEG, PNG or WebP → kind "image", PDF → kind "document". Anything
/// else is not taken (nullopt).
struct sniffed {
  std::string_view kind, mime;
};
std::optional<sniffed> sniff_upload(std::string_view bytes);

/// The name a visitor's file is kept under: `given` made valid UTF-8, at most 200 code points,
/// ending in one of the extensions of the file's real type (`.jpg` is added to "x.exe"), so a
/// download never opens as something the bytes are not.
std::string upload_name(std::string_view given, const sniffed& type);

}  // namespace media_http
}  // namespace aoun::bot
