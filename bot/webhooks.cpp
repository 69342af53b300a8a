// Provider webhooks: verify the signature on the raw bytes, parse, then commit every event of
// the request in one write job (dedupe, transcript, dialog step, replies into the outbox) and
// only then answer 200. A failed commit answers 503: Meta and Telegram retry it; Twilio does not
// retry an HTTP error by default (docs/channels.md, "A webhook that cannot be stored").
#include <nlohmann/json.hpp>

#include "bot/db.hpp"
#include "bot/http_error.hpp"
#include "bot/log.hpp"
#include "bot/services.hpp"
#include "channels/sms.hpp"
#include "channels/telegram.hpp"
#include "channels/whatsapp.hpp"

namespace aoun::bot {
namespace {

response text_response(const request& req, http::status st, std::string body, const char* type = "text/plain") {
  response res{st, req.version()};
  res.set(http::field::content_type, type);
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

std::string header(const request& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? std::string() : std::string(it->value());
}

// Commits all events of one webhook; returns the response to give the provider.
net::awaitable<response> commit_events(const services& s, request_context& ctx, std::vector<channels::inbound> events,
                                       std::string_view channel, response ok) {
  if (events.empty()) co_return ok;  // nothing we act on (e.g. an edited message): still 200
  after_commit fx;
  fx.staff_listening = s.hub.has_subscribers("staff");
  auto now = unix_now();
  // Captures are references only: the job runs before the co_await returns, and GCC 12
  // mishandles lambdas with non-trivial captures inside co_await expressions.
  auto r = co_await db_write<int>(s.db, storage::rerun::safe, [&s, &events, &fx, now](storage::connection& c) {
    return s.ops.handle_all(c, events, now, fx);
  });
  if (!r) {
    log::error("webhook_commit_failed", {{"rid", ctx.request_id}, {"channel", channel}, {"error", r.error().message()}});
    co_return error_response(ctx.req.version(), false, api_error::unavailable, "could not store the message; retry");
  }
  s.after(fx);
  s.stats.count(std::string("webhook_events_") + std::string(channel), events.size());
  if (static_cast<std::size_t>(*r) < events.size())
    s.stats.count("webhook_duplicates", events.size() - static_cast<std::size_t>(*r));
  if (!fx.unroutable.empty()) {
    s.stats.count("webhook_unroutable", fx.unroutable.size());
    // Not the provider's id itself: a wamid is the sender's phone number in base64.
    log::warn("webhook_event_unroutable",
              {{"rid", ctx.request_id}, {"channel", channel}, {"events", static_cast<std::int64_t>(fx.unroutable.size())}});
  }
  co_return ok;
}

/// A webhook whose signature does not check out: 401, counted, and logged at most once a minute
/// (a flood must not fill the log). A real provider's webhooks refused one after another usually
/// mean our configuration is wrong (a rotated secret; for SMS, an AOUN_PUBLIC_URL that is not the
/// URL Twilio calls), and every one of them is a beneficiary's message lost: say so.
response refuse_signature(const services& s, const request_context& ctx, std::string_view channel,
                          std::string_view message) {
  static std::atomic<std::int64_t> last_logged{0};
  s.stats.count("webhook_signature_refused");
  if (log::once_per(last_logged, unix_now()))
    log::warn("webhook_signature_refused",
              {{"rid", ctx.request_id}, {"channel", std::string(channel)}, {"route", std::string(ctx.req.target().substr(0, ctx.req.target().find('?')))},
               {"hint", channel == "sms" ? "AOUN_PUBLIC_URL must be the URL Twilio calls; check AOUN_TWILIO_AUTH_TOKEN"
                                         : "check the channel's secret"}});
  return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::bad_signature, message);
}

}  // namespace

void add_webhook_routes(router& r, const services& s) {
  const auto& cfg = s.cfg;
  auto disabled = [](request_context& ctx) -> net::awaitable<response> {
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "channel not configured");
  };

  // WhatsApp (Meta Cloud API).
  if (cfg.whatsapp_enabled) {
    r.add(http::verb::get, "/webhooks/whatsapp", [&s](request_context& ctx) -> net::awaitable<response> {
      auto q = [&](const char* k) { return ctx.query.count(k) ? ctx.query.at(k) : std::string(); };
      auto challenge = channels::whatsapp::verify_handshake(q("hub.mode"), q("hub.verify_token"), q("hub.challenge"),
                                                            s.cfg.secret.whatsapp_verify_token);
      if (!challenge)
        co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::forbidden, "verification failed");
      co_return text_response(ctx.req, http::status::ok, *challenge);
    });
    r.add(http::verb::post, "/webhooks/whatsapp", [&s](request_context& ctx) -> net::awaitable<response> {
      const auto& body = ctx.req.body();
      if (!channels::whatsapp::verify_signature(body, header(ctx.req, "X-Hub-Signature-256"),
                                                s.cfg.secret.whatsapp_app_secret))
        co_return refuse_signature(s, ctx, "whatsapp", "missing or invalid X-Hub-Signature-256");
      auto parsed = channels::whatsapp::parse(body, s.cfg.whatsapp_phone_number_id);
      if (!parsed.ok) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::malformed, parsed.error);
      if (parsed.other_number > 0) {
        // Answered 200 all the same: Meta would retry it for a week, and it will never be ours.
        s.stats.count("webhook_other_number", parsed.other_number);
        log::warn("webhook_other_number", {{"rid", ctx.request_id}, {"changes", static_cast<std::int64_t>(parsed.other_number)}});
      }
      co_return co_await commit_events(s, ctx, std::move(parsed.events), "whatsapp",
                                       text_response(ctx.req, http::status::ok, "ok"));
    });
  } else {
    r.add(http::verb::get, "/webhooks/whatsapp", disabled);
    r.add(http::verb::post, "/webhooks/whatsapp", disabled);
  }

  // Telegram Bot API.
  if (cfg.telegram_enabled) {
    r.add(http::verb::post, "/webhooks/telegram", [&s](request_context& ctx) -> net::awaitable<response> {
      if (!channels::telegram::verify_secret(header(ctx.req, "X-Telegram-Bot-Api-Secret-Token"), s.cfg.secret.telegram_secret))
        co_return refuse_signature(s, ctx, "telegram", "missing or invalid X-Telegram-Bot-Api-Secret-Token");
      auto parsed = channels::telegram::parse(ctx.req.body());
      if (!parsed.ok) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::malformed, parsed.error);
      co_return co_await commit_events(s, ctx, std::move(parsed.events), "telegram",
                                       text_response(ctx.req, http::status::ok, "ok"));
    });
  } else {
    r.add(http::verb::post, "/webhooks/telegram", disabled);
  }

  // SMS through Twilio (inbound and status callbacks).
  if (cfg.sms_enabled) {
    r.add(http::verb::post, "/webhooks/sms", [&s](request_context& ctx) -> net::awaitable<response> {
      // Twilio signs the URL it called: our public base plus the path and query as received.
      std::string url = s.cfg.public_url + std::string(ctx.req.target());
      if (!channels::sms::verify_twilio_signature(url, ctx.req.body(), header(ctx.req, "X-Twilio-Signature"),
                                                  s.cfg.secret.twilio_auth_token))
        co_return refuse_signature(s, ctx, "sms", "missing or invalid X-Twilio-Signature");
      auto parsed = channels::sms::parse_twilio(ctx.req.body());
      if (!parsed.ok) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::malformed, parsed.error);
      // Replies leave through the outbox (REST API), so the TwiML answer is empty.
      co_return co_await commit_events(s, ctx, std::move(parsed.events), "sms",
                                       text_response(ctx.req, http::status::ok, channels::sms::twiml_empty(), "text/xml"));
    });
  } else {
    r.add(http::verb::post, "/webhooks/sms", disabled);
  }

  // Unifonic's SMS delivery receipts (its account-wide "DLR webhook"). Unifonic signs nothing,
  // so the URL registered with it carries a secret of ours: /webhooks/sms/unifonic?token=...
  // A receipt changes only the delivery status of the row whose MessageID Unifonic gave us.
  if (!cfg.secret.unifonic_dlr_token.empty()) {
    r.add(http::verb::post, "/webhooks/sms/unifonic", [&s](request_context& ctx) -> net::awaitable<response> {
      const auto token = ctx.query.find("token");
      if (!channels::sms::verify_unifonic_token(token == ctx.query.end() ? std::string_view() : token->second,
                                                s.cfg.secret.unifonic_dlr_token))
        co_return refuse_signature(s, ctx, "sms_unifonic", "missing or invalid token");
      const std::string_view target = ctx.req.target();
      const auto q = target.find('?');
      auto parsed = channels::sms::parse_unifonic_dlr(header(ctx.req, "Content-Type"), ctx.req.body(),
                                                      q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
      if (!parsed.ok) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::malformed, parsed.error);
      co_return co_await commit_events(s, ctx, std::move(parsed.events), "sms_unifonic",
                                       text_response(ctx.req, http::status::ok, "ok"));
    });
  } else {
    r.add(http::verb::post, "/webhooks/sms/unifonic", disabled);
  }
}

}  // namespace aoun::bot
