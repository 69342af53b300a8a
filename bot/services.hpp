#pragma once
// The running services that route handlers share. Built by `app`, referenced by the handler
// groups (webhooks, web chat, staff API). Lifetime: the app's.

#include <memory>

#include "bot/config.hpp"
#include "bot/conversation_ops.hpp"
#include "bot/event_hub.hpp"
#include "bot/log.hpp"
#include "bot/media.hpp"
#include "bot/media_archive.hpp"
#include "bot/metrics.hpp"
#include "bot/net.hpp"
#include "bot/outbox.hpp"
#include "bot/router.hpp"
#include "storage/database.hpp"

namespace aoun::bot {

struct services {
  const config& cfg;
  storage::database& db;
  conversation_ops& ops;
  event_hub& hub;
  outbox_worker& outbox;
  metrics& stats;
  /// Set by the server while it shuts down; long-lived WebSockets close when it is true.
  const std::atomic<bool>& stopping;
  /// Fetches what beneficiaries sent from their provider, for staff (bot/media.hpp).
  media_downloader& media;
  /// Keeps copies of what beneficiaries send (bot/media_archive.hpp); null in tests without it.
  media_archive* archive = nullptr;

  /// Publishes what a committed job collected and wakes the outbox (the claimed rows are
  /// moved to the worker).
  void after(after_commit& fx) const {
    hub.publish(fx.events);
    if (!fx.readdressed.empty()) outbox.addresses_changed(std::move(fx.readdressed));
    if (!fx.claimed.empty()) outbox.deliver_claimed(std::move(fx.claimed));
    if (fx.wake_outbox) outbox.wake();
    if (fx.media_wanted && archive != nullptr) archive->wake();
    for (std::int64_t id : fx.erased) {
      stats.count("erasures_requested");
      log::info("beneficiary_erased", {{"beneficiary_id", id}, {"reason", "requested"}});
    }
    for (const auto& [channel, id] : fx.delivery_failed) {
      stats.count("delivery_failed");
      log::warn("delivery_failed", {{"channel", channel}, {"outbox_id", id}});
    }
  }
};

std::int64_t unix_now();

/// POST/GET /webhooks/{whatsapp,telegram,sms}.
void add_webhook_routes(router& r, const services& s);
/// /chat/ws (web-chat WebSocket). `session_key` signs the session ids it hands out.
void add_webchat_routes(router& r, const services& s, const std::string& session_key);
/// The static pages under /chat/ and /console/.
void add_static_routes(router& r, const services& s);
/// /api/v1/...: the staff API and its WebSocket stream (bot/staff_api.cpp, bot/stream.cpp).
/// Throws config_error at start-up if locales/canned.json is missing or malformed.
void add_staff_routes(router& r, const services& s);

}  // namespace aoun::bot
