// GET /api/v1/stream: the staff console's live events. The token (?token= or the
// Authorization header) is checked before the upgrade, so a bad one gets a plain HTTP 401.
// Then every event published on the hub's "staff" topic is forwarded as one text frame.
// A watch timer closes the socket when the token expires, when the session is ended
// (logout, disabled account: checked every `recheck` seconds) or when the server stops.
#include <atomic>
#include <chrono>
#include <memory>

#include <nlohmann/json.hpp>

#include "bot/auth.hpp"
#include "bot/db.hpp"
#include "bot/http_error.hpp"
#include "bot/log.hpp"
#include "bot/staff_api.hpp"
#include "bot/staff_logic.hpp"
#include "bot/ws_channel.hpp"
#include "storage/staff.hpp"

namespace aoun::bot {
namespace {

using nlohmann::json;

constexpr std::int64_t recheck = 15;

// A callback chain rather than a second coroutine: it holds shared pointers, which GCC 12 must
// not see as by-value coroutine parameters (bot/db.hpp).
class stream_watch : public std::enable_shared_from_this<stream_watch> {
 public:
  stream_watch(const services& s, std::shared_ptr<ws_channel> ch, std::string token_hash, std::int64_t expires_at)
      : s_(s), ch_(std::move(ch)), timer_(ch_->ws().get_executor()), token_hash_(std::move(token_hash)),
        expires_at_(expires_at), next_check_(unix_now() + recheck) {}

  void start() { arm(); }
  /// Called on the stream's executor when the session ends.
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void arm() {
    timer_.expires_after(std::chrono::seconds(1));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) { self->tick(ec); });
  }

  void tick(boost::system::error_code ec) {
    if (ec || stopped_) return;
    auto now = unix_now();
    if (s_.stopping || now >= expires_at_) {
      log::info("stream_closed", {{"reason", s_.stopping ? "server_stopping" : "token_expired"}});
      ch_->close();
      return;
    }
    if (now >= next_check_ && !checking_) {
      next_check_ = now + recheck;
      checking_ = true;
      auto self = shared_from_this();
      auto ex = ch_->ws().get_executor();
      auto live = std::make_shared<bool>(true);
      s_.db.submit_read(
          [self, now, live](storage::connection& c) -> boost::system::error_code {
            auto r = storage::session_expiry(c, self->token_hash_, now);
            if (r) return {};
            if (r.error() == storage::errc::not_found) *live = false;
            return {};
          },
          [self, ex, live](boost::system::error_code) {
            net::post(ex, [self, live] {
              self->checking_ = false;
              if (!*live && !self->stopped_) {
                log::info("stream_closed", {{"reason", "session_ended"}});
                self->ch_->close();
              }
            });
          });
    }
    arm();
  }

  const services& s_;
  std::shared_ptr<ws_channel> ch_;
  net::steady_timer timer_;
  const std::string token_hash_;
  const std::int64_t expires_at_;
  // Touched only on the stream's executor.
  std::int64_t next_check_;
  bool checking_ = false;
  bool stopped_ = false;
};

constexpr std::string_view stream_protocol = "aoun.stream";

bool offers_protocol(beast::string_view field, std::string_view protocol) {
  for (auto item : list_items(std::string_view(field.data(), field.size())))
    if (item == protocol) return true;
  return false;
}

net::awaitable<void> staff_stream(const services& s, beast::tcp_stream stream, request_context& ctx) {
  auto a = co_await authenticate(s, ctx, staff_logic::agent, true);
  if (!a.staff) {
    a.error.keep_alive(false);
    stream.expires_after(std::chrono::seconds(5));
    co_await http::async_write(stream, a.error, use_tuple);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return;
  }
  const std::string& hash = a.token_hash;
  auto now = unix_now();
  auto exp = co_await db_read<std::int64_t>(
      s.db, [&hash, now](storage::connection& c) { return storage::session_expiry(c, hash, now); });
  if (!exp) co_return;  // expired in between: the client reconnects and gets its 401

  auto ch = std::make_shared<ws_channel>(std::move(stream));
  auto& ws = ch->ws();
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws.read_message_max(4096);
  // A browser that offered subprotocols (the console: "aoun.stream" and its token) drops the
  // connection unless one is chosen; the token is never echoed back.
  if (offers_protocol(ctx.req[http::field::sec_websocket_protocol], stream_protocol))
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::sec_websocket_protocol, stream_protocol); }));
  auto [aec] = co_await ws.async_accept(ctx.req, use_tuple);
  if (aec) co_return;

  auto sub = s.hub.subscribe("staff", [ch](const std::string& payload) { ch->send(payload); });
  auto watch = std::make_shared<stream_watch>(s, ch, a.token_hash, *exp);
  watch->start();
  ch->send(json{{"type", "ready"},
                {"staff", {{"id", a.staff->id}, {"display_name", a.staff->display_name}, {"role", a.staff->role}}},
                {"expires_at", *exp}}
               .dump());
  log::info("stream_opened", {{"staff_id", a.staff->id}});

  // The console sends nothing we act on; reading keeps the control frames (ping/pong, close)
  // flowing and tells us when the client leaves.
  beast::flat_buffer buf;
  for (;;) {
    auto [ec, n] = co_await ws.async_read(buf, use_tuple);
    if (ec) break;
    buf.consume(buf.size());
  }
  watch->stop();
  sub.reset();
  ch->close();
}

}  // namespace

void add_stream_route(router& r, const services& s) {
  r.add_websocket("/api/v1/stream", [&s](beast::tcp_stream stream, request_context& ctx) {
    return staff_stream(s, std::move(stream), ctx);
  });
  // A plain GET (no upgrade): 401 without a valid token, otherwise say what is expected.
  r.add(http::verb::get, "/api/v1/stream", [&s](request_context& ctx) -> net::awaitable<response> {
    auto a = co_await authenticate(s, ctx, staff_logic::agent, false);  // REST: the header only
    if (!a.staff) co_return std::move(a.error);
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::malformed,
                             "this endpoint is a WebSocket: send an Upgrade request");
  });
}

}  // namespace aoun::bot
