#pragma once
// The composition root of `aoun serve`: owns the configuration, the database, the I/O threads,
// the HTTP server and every service, and wires them together. Nothing includes bot/ but tests.

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "bot/config.hpp"
#include "bot/conversation_ops.hpp"
#include "bot/event_hub.hpp"
#include "bot/instance_lock.hpp"
#include "bot/media.hpp"
#include "bot/media_archive.hpp"
#include "bot/outbox.hpp"
#include "bot/services.hpp"
#include "dialogs/engine.hpp"
#include "bot/http_server.hpp"
#include "bot/metrics.hpp"
#include "bot/net.hpp"
#include "bot/router.hpp"
#include "storage/database.hpp"

namespace aoun::bot {

class app {
 public:
  /// Opens the database (creating its folder), applies migrations, creates the bootstrap admin,
  /// builds the routes. Throws config_error / std::runtime_error with one clear line.
  explicit app(config cfg);
  ~app();

  /// Serves until SIGINT/SIGTERM, then shuts down gracefully. Returns the exit code.
  int run();

  const config& cfg() const { return cfg_; }
  storage::database& db() { return *db_; }
  net::io_context& ioc() { return ioc_; }
  metrics& stats() { return metrics_; }
  const services& svc() const { return *services_; }

  /// Loads dialogs/ and locales/ from AOUN_HOME. Throws std::runtime_error naming file and key.
  static std::shared_ptr<const dialogs::engine> load_engine(const config& cfg);

 private:
  void build_routes();
  void bootstrap_admin();
  /// Before the server takes a request: rows a crash left `sending` are pending again, flagged
  /// uncertain. Retried for 30 s (a backup holding the file's lock), then the start fails.
  void recover_outbox();
  /// The server's own key `name` (storage::server_key), made on first start. Throws
  /// config_error if the database cannot give one.
  std::string server_key(const char* name);
  net::awaitable<response> healthz(request_context& ctx);
  net::awaitable<response> render_metrics(request_context& ctx);
  /// At start and then hourly: deletes dedupe keys kept their time (storage::processed_keep_seconds_for),
  /// then runs retention_sweep.
  net::awaitable<void> housekeeping();
  /// Erases every beneficiary whose retention (cfg_.retention_days) has run out: see
  /// storage::scan_retention and docs/privacy.md. Counted in aoun_retention_erased_total.
  net::awaitable<void> retention_sweep();

  // Constant after construction.
  const config cfg_;
  std::unique_ptr<instance_lock> lock_;  // before db_: held until the database is closed
  std::unique_ptr<storage::database> db_;
  net::io_context ioc_;
  metrics metrics_;
  router routes_;
  event_hub hub_;
  std::unique_ptr<conversation_ops> ops_;
  std::unique_ptr<outbox_worker> outbox_;
  std::unique_ptr<media_downloader> media_;
  std::unique_ptr<media_archive> archive_;
  std::atomic<bool> stopping_{false};
  std::string webchat_key_;  // signs web-chat session ids (bot/webchat.cpp)
  std::unique_ptr<services> services_;
  std::unique_ptr<http_server> server_;
};

}  // namespace aoun::bot
