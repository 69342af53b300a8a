#pragma once
// Aoun's configuration, built once at start-up from AOUN_* environment variables (and an optional
// KEY=VALUE file named by AOUN_CONFIG; the environment wins), validated, then passed by const&.
// No other module reads the environment. Secrets live in `secrets`, which is never logged.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bot/client_limits.hpp"

namespace aoun::bot {

/// Thrown by load_config with one line naming the variable, e.g.
/// "AOUN_LISTEN: expected host:port, got 'localhost'". Start-up only.
struct config_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  /// I/O threads; 0 = cores − 1, at least 1: the storage writer has its own thread (AOUN_THREADS).
  int threads = 0;
  /// Largest request body accepted; more is answered 413 (AOUN_BODY_LIMIT, bytes).
  std::size_t body_limit = 1024 * 1024;
  /// Largest file a web-chat visitor may send (POST /chat/upload, AOUN_WEBCHAT_UPLOAD_MAX_BYTES);
  /// 0 when the web chat is off. The body is held in memory until stored, so at most
  /// max_uploads_in_flight such bodies are read at once (503 beyond).
  std::size_t upload_limit = 10 * 1024 * 1024;
  int max_uploads_in_flight = 4;
  /// WhatsApp's webhook may carry up to 3 MiB (Meta's batches), whatever body_limit says; only
  /// when the channel is on (off, its route answers 404 without reading 3 MiB first).
  bool whatsapp_large_bodies = false;
  /// Request bodies (other than web-chat files, counted above) held in memory at once, in all
  /// (AOUN_BODIES_IN_FLIGHT_BYTES): one is reserved as its header names its length, and past
  /// the budget a request is answered 503 with Retry-After before its body is read. Without it,
  /// thousands of connections each sending 3 MiB slowly would hold gigabytes, unauthenticated.
  std::size_t bodies_in_flight_bytes = 64 * 1024 * 1024;
  /// Time to receive a whole request header once its first byte may arrive (slow-loris guard).
  std::chrono::seconds header_timeout{15};
  /// Time to receive the body after the header.
  std::chrono::seconds body_timeout{30};
  /// A kept-alive connection with no new request for this long is closed.
  std::chrono::seconds idle_timeout{60};
  /// On SIGTERM, how long in-flight requests may take before the process exits anyway.
  std::chrono::seconds shutdown_grace{20};
  /// Open connections at most (AOUN_MAX_CONNECTIONS), and from one client address (its /64
  /// for IPv6; a trusted proxy is not counted as one client: AOUN_MAX_CONNECTIONS_PER_ADDRESS).
  /// Past either, a new connection is closed at once: one client must not take every file
  /// descriptor, which providers' webhooks and the outbox's own connections need.
  int max_connections = 4096;
  int max_connections_per_address = 256;
  /// Reverse proxies whose X-Forwarded-For names the client (AOUN_TRUSTED_PROXIES); empty:
  /// the client is the TCP peer (bot/client_limits.hpp).
  trusted_proxies trusted;
};

/// Secrets: never logged, never returned by any API.
struct secrets {
  std::string whatsapp_verify_token, whatsapp_app_secret, whatsapp_token;
  std::string telegram_token, telegram_secret;
  std::string twilio_auth_token;
  std::string unifonic_app_sid, taqnyat_token;
  /// The secret in the URL of Unifonic's delivery-receipt webhook (AOUN_UNIFONIC_DLR_TOKEN);
  /// empty: that webhook answers 404.
  std::string unifonic_dlr_token;
  std::string admin_password;
};

struct outbox_options {
  int max_attempts = 8;                          ///< then the message is dead-lettered
  std::chrono::milliseconds base_backoff{500};   ///< doubled per attempt, with jitter
  std::chrono::milliseconds max_backoff{60000};
  /// A channel whose credentials are refused is tried again (one probe) after this, doubling
  /// to 30 times it (15 minutes by default).
  std::chrono::milliseconds credentials_pause{30000};
  /// Sends per second per channel (provider published limits: WhatsApp 80 mps per number,
  /// Telegram ~30/s overall and 1/s per chat, Twilio 1 segment/s per long code; counted per message here).
  double whatsapp_rate = 80, telegram_rate = 30, sms_rate = 1;
  double telegram_per_chat_rate = 1;
  std::chrono::milliseconds send_timeout{10000};
};

/// Staff downloads of what beneficiaries sent (GET /api/v1/messages/{id}/media).
struct media_options {
  /// Largest file served (AOUN_MEDIA_MAX_BYTES). A download is held in memory whole, so this
  /// bounds memory per download. 16 MiB covers every WhatsApp image (5 MB), audio and video
  /// (16 MB), every Telegram bot download (20 MB Bot API cap, photos far smaller) and every
  /// Twilio MMS (5 MB); only WhatsApp documents may be larger (up to 100 MB): raise it for those.
  std::size_t max_bytes = 16 * 1024 * 1024;
  /// One deadline for the whole fetch: the lookup, the download and every redirect share it
  /// (AOUN_MEDIA_TIMEOUT_MS).
  std::chrono::milliseconds timeout{30000};
  /// Downloads in flight at once; more are answered 503. A download holds its slot until the
  /// file has been written to the client, so at most this many files are in memory: this ×
  /// max_bytes (a body without Content-Length may briefly need 3 × max_bytes while it grows).
  int max_concurrent = 4;
  /// Keep a copy of each file a beneficiary sends on WhatsApp, Telegram or SMS, fetched soon
  /// after it arrives (AOUN_MEDIA_KEEP_COPIES; docs/staff.md, "Kept copies").
  bool keep_copies = true;
};

struct config {
  server_options server;
  std::string db_path = "./data/aoun.db";
  std::string public_url = "http://127.0.0.1:8080";
  std::string log_level = "info";

  // Channel switches: a channel is on only when all its secrets are set.
  bool whatsapp_enabled = false;
  std::string whatsapp_phone_number_id;
  std::string whatsapp_api_base = "https://graph.facebook.com/v21.0";
  /// The approved message template staff send outside WhatsApp's 24-hour customer-service
  /// window (AOUN_WHATSAPP_TEMPLATE); it must exist, approved, in the WhatsApp Business account.
  std::string whatsapp_template = "aoun_followup";
  bool telegram_enabled = false;
  std::string telegram_api_base = "https://api.telegram.org";
  bool sms_enabled = false;
  std::string twilio_account_sid, twilio_from;
  std::string twilio_api_base = "https://api.twilio.com";
  std::string sms_gateway = "twilio";            ///< outbound SMS: twilio | unifonic | taqnyat
  std::string unifonic_sender, unifonic_api_base = "https://el.cloud.unifonic.com";
  std::string taqnyat_sender, taqnyat_api_base = "https://api.taqnyat.sa";
  bool webchat_enabled = true;
  /// Per client address (IPv6: per /64); 0 = no limit (docs/console.md, "Floods").
  int webchat_sockets_per_address = 20;    ///< AOUN_WEBCHAT_SOCKETS_PER_ADDRESS
  int webchat_messages_per_minute = 60;    ///< AOUN_WEBCHAT_MESSAGES_PER_MINUTE

  std::string admin_user;

  // Content and the association's own facts (texts never hard-code them).
  std::string source_dir;                        ///< where dialogs/, locales/, web/ are found
  std::string association_name, association_name_en, emergency_numbers = "911", phone, email, website,
      address;
  std::vector<std::string> danger_words;
  /// Working hours in Asia/Riyadh (UTC+3, no DST): days 0=Sunday..6, and minutes of the day.
  std::vector<int> work_days = {0, 1, 2, 3, 4};
  int work_start_minute = 8 * 60, work_end_minute = 16 * 60;
  int idle_timeout_seconds = 1800;
  int retention_days = 365;
  int token_ttl_seconds = 8 * 3600;
  int max_failed_logins = 5;
  int lockout_seconds = 900;
  int survey_min_responses_per_staff = 5;

  outbox_options outbox;
  media_options media;
  secrets secret;
};

/// `lookup` returns a variable's value or nullopt. Throws config_error on any bad value.
config load_config(const std::function<std::optional<std::string>(const std::string&)>& lookup);
/// The real environment plus AOUN_CONFIG's file.
config load_config_from_environment();

}  // namespace aoun::bot
