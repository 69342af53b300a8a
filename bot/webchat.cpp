// The website chat: static pages under /chat/ (and the console's under /console/), and the
// visitor's WebSocket /chat/ws (subprotocols "aoun.chat" and "session.<id>"). The server hands each new visitor a session id
// (the first frame); the page keeps it in localStorage and presents it again, so a reconnect
// (or a reload) shows the history and continues the same conversation. The id is the visitor's
// address on the "webchat" channel.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bot/client_limits.hpp"
#include "bot/db.hpp"
#include "bot/http_error.hpp"
#include "bot/http_server.hpp"
#include "bot/log.hpp"
#include "bot/media.hpp"
#include "bot/password.hpp"
#include "bot/services.hpp"
#include "bot/ws_channel.hpp"
#include "channels/crypto.hpp"
#include "storage/conversations.hpp"
#include "storage/uploads.hpp"

namespace aoun::bot {
namespace {

using nlohmann::json;
namespace crypto = channels::crypto;

/// The WebSocket subprotocol the chat page asks for (docs/console.md, "Web chat protocol").
constexpr std::string_view chat_protocol = "aoun.chat";

/// Texts with danger words one client address may send a minute beyond its ordinary limit.
constexpr int danger_messages_per_minute = 10;

/// Closes a visitor's socket once the server is stopping. The read loop waits for the page's
/// next frame and an idle page sends none (pings keep the socket open), so a stop used to wait
/// out its whole grace period (AOUN_SHUTDOWN_GRACE) for any open chat, refusing the providers'
/// webhooks meanwhile. (The staff stream has its own watch, bot/stream.cpp.)
class stop_watch : public std::enable_shared_from_this<stop_watch> {
 public:
  stop_watch(const std::atomic<bool>& stopping, std::shared_ptr<ws_channel> ch)
      : stopping_(stopping), ch_(std::move(ch)), timer_(ch_->ws().get_executor()) {}
  void start() { arm(); }
  /// On the socket's executor, when the read loop has ended.
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  void arm() {
    timer_.expires_after(std::chrono::milliseconds(250));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped_) return;
      if (self->stopping_) {
        self->ch_->close();
        return;
      }
      self->arm();
    });
  }
  const std::atomic<bool>& stopping_;
  std::shared_ptr<ws_channel> ch_;
  net::steady_timer timer_;
  bool stopped_ = false;
};

// What a visitor's frame may carry. Longer values are cut, never inside a UTF-8 sequence: a
// stored half character makes every later dump() of the conversation throw (the visitor's
// history, the staff transcript and queue).
constexpr std::size_t max_text = 4096;       // code points, as a staff reply
constexpr std::size_t max_title = 200;       // code points
constexpr std::size_t max_choice_id = 64;    // bytes
constexpr std::size_t max_client_id = 64;    // bytes (part of the dedupe key)

/// A client id as the page makes them: what it names becomes part of the dedupe key, so it is
/// taken whole or refused (cut, two long ids could meet, and the second message be dropped).
bool valid_client_id(std::string_view id) {
  return id.size() <= max_client_id && std::all_of(id.begin(), id.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '-' || c == '_';
         });
}

bool valid_session(const std::string& s) {
  if (s.size() < 16 || s.size() > 64) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  return true;
}

// Session ids are the server's own: 22 characters of base64url (16 random bytes), then 22 of a
// tag, base64url(HMAC-SHA256(key, those 22 characters)) cut to 22 characters (132 bits). The id is the key to a
// conversation that may hold a national ID, so its strength must not depend on the client: the
// server recognises the ids it made without storing each one, and an id a client made up is
// not one of them (docs/console.md).
class session_ids {
 public:
  explicit session_ids(std::string key) : key_(std::move(key)) {}
  std::string mint() const {
    auto nonce = password::random_token(16);
    return nonce + tag(nonce);
  }
  bool ours(std::string_view id) const {
    return id.size() == 2 * part && crypto::equal_constant_time(id.substr(part), tag(id.substr(0, part)));
  }

 private:
  static constexpr std::size_t part = 22;
  std::string tag(std::string_view nonce) const {
    auto t = crypto::base64url_encode(crypto::hmac_sha256(key_, nonce));
    t.resize(part);
    return t;
  }
  std::string key_;
};

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(rng());
}

/// What is known of a session id: nothing (0), a conversation lives at it (1), or the visitor
/// ended it ("end on this device", 2: the id opens nothing any more).
enum session_state : int { session_unknown = 0, session_lives = 1, session_ended = 2 };
net::awaitable<storage::result<int>> session_known(const services& s, const std::string& session) {
  co_return co_await db_read<int>(s.db, [&session](storage::connection& c) -> storage::result<int> {
    auto q = c.prepare("SELECT session_ended_at IS NOT NULL FROM beneficiaries WHERE channel = 'webchat' AND address = ?");
    if (!q) return q.error();
    q->bind(1, session);
    auto row = q->step();
    if (!row) return row.error();
    if (!*row) return session_unknown;
    return q->int64(0) ? session_ended : session_lives;
  });
}

/// What every socket of an ended session is sent before it is closed.
constexpr std::string_view ended_frame = R"({"type":"ended"})";
constexpr std::string_view pong_frame = R"({"type":"pong"})";

/// Whether the visitor ended this session ("end on this device"), read in the job that would
/// store their message: the check before it (session_known) is a read that a POST /chat/end
/// can overtake, and a message stored after the end would bring the id back to life.
storage::result<bool> session_was_ended(storage::connection& c, const std::string& session) {
  auto q = c.prepare("SELECT 1 FROM beneficiaries WHERE channel = 'webchat' AND address = ? AND session_ended_at IS NOT NULL");
  if (!q) return storage::result<bool>(boost::system::in_place_error, q.error());
  q->bind(1, session);
  auto row = q->step();
  if (!row) return storage::result<bool>(boost::system::in_place_error, row.error());
  return *row;
}

/// Whether a browser's Origin may open a chat socket: none (not a browser: browsers always send
/// one), the server's public origin (AOUN_PUBLIC_URL), or the host the request was sent to (the
/// page at /chat/, or an association site that proxies it under its own name). Another site's
/// page must not open sockets from its visitors' browsers: each one takes a place of the
/// visitor's address (a carrier's NAT shares it) and may write to the staff queue.
bool origin_allowed(std::string_view origin, std::string_view host, std::string_view public_url) {
  if (origin.empty()) return true;
  auto lower = [](std::string_view v) {
    std::string out(v);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  };
  const auto o = lower(origin);
  auto pub = lower(public_url);
  if (auto slash = pub.find('/', pub.find("://") == std::string::npos ? 0 : pub.find("://") + 3); slash != std::string::npos)
    pub.resize(slash);
  if (o == pub) return true;
  const auto scheme_end = o.find("://");
  if (scheme_end == std::string::npos || host.empty()) return false;
  const std::string_view scheme(o.data(), scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  auto h = lower(host);
  auto bare = std::string_view(o).substr(scheme_end + 3);
  // The default port may be named in one and not the other.
  const std::string_view dflt = scheme == "https" ? ":443" : ":80";
  auto strip = [&dflt](std::string_view v) { return v.ends_with(dflt) ? v.substr(0, v.size() - dflt.size()) : v; };
  return strip(bare) == strip(h);
}

net::awaitable<void> webchat_session(const services& s, const session_ids& ids, address_limiter& limits,
                                     address_limiter& danger_limits, beast::tcp_stream stream, request_context& ctx) {
  // Refusals come before the upgrade, as plain HTTP answers.
  auto refuse = [&stream, &ctx](api_error e, std::string_view message) -> net::awaitable<void> {
    auto res = error_response(ctx.req.version(), false, e, message);
    if (e == api_error::rate_limited) res.set(http::field::retry_after, "60");
    co_await http::async_write(stream, res, use_tuple);
  };
  // The page presents its id as a WebSocket subprotocol, "session.<id>" beside "aoun.chat": a
  // header, which access logs leave out, where a query string is written to every proxy's log
  // (and the id is the key to the visitor's history). `?session=` is still read for pages
  // loaded before this change.
  std::string asked = ctx.query.count("session") ? ctx.query.at("session") : std::string();
  bool offered_protocol = false;
  {
    const auto field = ctx.req[http::field::sec_websocket_protocol];
    for (auto item : list_items(std::string_view(field.data(), field.size()))) {
      if (item == chat_protocol) offered_protocol = true;
      else if (item.rfind("session.", 0) == 0) asked = std::string(item.substr(8));
    }
  }
  if (!origin_allowed(ctx.req[http::field::origin], ctx.req[http::field::host], s.cfg.public_url)) {
    s.stats.count("webchat_origin_refused");
    // Logged at most once a minute: refusals of real visitors usually mean a proxy in front
    // rewrites Host and AOUN_PUBLIC_URL is not the site's origin, and then nobody can chat.
    static std::atomic<std::int64_t> last_logged{0};
    if (log::once_per(last_logged, unix_now()))
      log::warn("webchat_origin_refused",
                {{"rid", ctx.request_id},
                 {"origin", std::string(crypto::truncate_bytes(ctx.req[http::field::origin], 200))},
                 {"hint", "behind a proxy that rewrites Host, set AOUN_PUBLIC_URL to the chat page's public origin"}});
    co_await refuse(api_error::forbidden, "this chat opens from the association's own pages only");
    co_return;
  }
  if (!asked.empty() && !valid_session(asked)) {
    co_await refuse(api_error::malformed, "session must be 16-64 characters of A-Z, a-z, 0-9, '-' or '_'");
    co_return;
  }
  // One client (address, or /64) holds a bounded number of sockets and sends a bounded number
  // of messages a minute: the chat is public and shares the database writer with every channel.
  const auto client = limit_key(ctx.remote);
  auto slot = limits.open(client, address_limiter::clock::now());
  if (!slot) {
    s.stats.count("webchat_sockets_refused");
    co_await refuse(api_error::rate_limited, "too many open chats from this address");
    co_return;
  }
  // The id presented is kept if the server made it, or if a conversation already lives at it
  // (ids the page chose itself before the server made them). Any other id, and none, gets a
  // new one: a made-up id never becomes an address.
  // An id the visitor ended ("end on this device") opens nothing: a new id, as for a made-up one.
  std::string session;
  if (!asked.empty()) {
    auto known = co_await session_known(s, asked);
    if (!known) {
      co_await refuse(api_error::unavailable, "could not open the session, try again");
      co_return;
    }
    if (*known == session_ended) s.stats.count("webchat_sessions_replaced");
    else if (ids.ours(asked) || *known == session_lives) session = asked;
    else s.stats.count("webchat_sessions_replaced");
  }
  if (session.empty()) session = ids.mint();

  auto ch = std::make_shared<ws_channel>(std::move(stream));
  auto& ws = ch->ws();
  // A ping after 30 s of quiet (Beast's default waits 150 s): carriers' NATs forget an idle
  // connection sooner, and the page would not know it stopped hearing the replies. A page that
  // answers nothing for 60 s is gone.
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.idle_timeout = std::chrono::seconds(60);
  ws.set_option(timeouts);
  ws.read_message_max(16 * 1024);
  // A browser that offered subprotocols drops the connection unless one is chosen.
  if (offered_protocol)
    ws.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::sec_websocket_protocol, chat_protocol); }));
  auto [aec] = co_await ws.async_accept(ctx.req, use_tuple);
  if (aec) co_return;
  // The id first, before the subscription below can queue anything (docs/console.md: "always
  // first"; the page and other clients learn their address from it).
  // With the largest file the page may send (POST /chat/upload), so that it refuses a larger
  // one before sending it.
  ch->send(json{{"type", "session"}, {"session", session}, {"upload_max_bytes", s.cfg.server.upload_limit}}.dump());

  // Subscribe before reading the history so that nothing committed in between is missed
  // (a message may then arrive twice; the page ignores ids it already shows).
  // Events published while the history is read are held and sent after it: sent before, they
  // would be wiped by the history frame (the page rebuilds its list from it), and the history
  // read may not include them. The page ignores those it already shows.
  struct held_events {
    std::mutex mutex;
    bool history_sent = false;
    std::vector<std::string> frames;
  };
  auto held = std::make_shared<held_events>();
  auto sub = s.hub.subscribe("webchat:" + session, [ch, held](const std::string& payload) {
    // The visitor ended the session on some device: this socket is told, then closed.
    if (payload == ended_frame) {
      ch->send_and_close(payload);
      return;
    }
    std::lock_guard lock(held->mutex);
    if (held->history_sent) ch->send(payload);
    else held->frames.push_back(payload);
  });
  auto history = co_await db_read<json>(s.db, [&session](storage::connection& c) -> storage::result<json> {
    json msgs = json::array();
    auto q = c.prepare(
        "SELECT c.id, b.session_ended_at IS NOT NULL FROM conversations c JOIN beneficiaries b ON b.id = c.beneficiary_id "
        "WHERE b.channel = 'webchat' AND b.address = ? ORDER BY c.id DESC LIMIT 1");
    if (!q) return q.error();
    q->bind(1, session);
    auto row = q->step();
    if (!row) return row.error();
    if (!*row) return msgs;
    // Ended between the check above and the subscription (its "ended" event then came before
    // this socket listened): nothing is shown, and the socket is closed below.
    if (q->int64(1)) return json(nullptr);
    auto list = storage::list_messages(c, q->int64(0), 200);
    if (!list) return list.error();
    // Erased rows (no text or file left) are not shown as empty bubbles.
    for (auto& m : *list) {
      auto j = conversation_ops::visitor_message_json(m);
      if (!m.text.empty() || j.contains("file")) msgs.push_back(std::move(j));
    }
    return msgs;
  });
  if (!history) {
    // An empty history would wipe what the page shows and offer to start again: the page keeps
    // its screen and reconnects instead.
    log::warn("webchat_history_failed", {{"error", history.error().message()}});
    ch->close();
    co_return;
  }
  if (history->is_null()) {
    ch->send_and_close(std::string(ended_frame));
    co_return;
  }
  {
    std::lock_guard lock(held->mutex);
    ch->send(json{{"type", "history"}, {"messages", *history}}.dump());
    for (auto& f : held->frames) ch->send(std::move(f));
    held->frames.clear();
    held->history_sent = true;
  }

  auto watch = std::make_shared<stop_watch>(s.stopping, ch);
  watch->start();
  beast::flat_buffer buf;
  while (!s.stopping) {
    auto [ec, n] = co_await ws.async_read(buf, use_tuple);
    if (ec) break;
    auto text = beast::buffers_to_string(buf.data());
    buf.consume(buf.size());
    // The page sends text frames; a binary one is not checked as UTF-8 by the protocol, so it
    // is refused whatever it holds.
    auto j = ws.got_text() ? json::parse(text, nullptr, false) : json(json::value_t::discarded);
    if (j.is_discarded() || !j.is_object() || !j.contains("type") || !j["type"].is_string()) {
      ch->send(json{{"type", "error"}, {"message", "malformed message"}}.dump());
      continue;
    }
    channels::inbound in;
    in.channel = channels::kind::webchat;
    in.from = session;
    // The page may send its own id so that a resend after a reconnect is not processed twice.
    std::string client_id = j.contains("client_id") && j["client_id"].is_string() ? j["client_id"].get<std::string>() : "";
    if (!valid_client_id(client_id)) {
      // Not echoed back: an error naming a 16 KiB id would cost more than the frame did.
      ch->send(json{{"type", "error"}, {"code", "malformed"}, {"message", "client_id must be at most 64 characters of A-Z, a-z, 0-9, '-' or '_'"}}.dump());
      continue;
    }
    in.provider_id = "web:" + session + ":" + (client_id.empty() ? random_suffix() : client_id);
    in.timestamp = unix_now();
    auto type = j["type"].get<std::string>();
    if (type == "ping") {
      // The page's own check of the line (it cannot see WebSocket pings): an idle page that
      // hears nothing back reconnects, instead of showing "connected" while replies wait.
      ch->send(std::string(pong_frame));
      continue;
    }
    auto str = [&j](const char* key) { return j.contains(key) && j[key].is_string(); };
    if (type == "text" && str("text")) {
      in.type = channels::inbound_type::text;
      in.text = crypto::truncate_code_points(j["text"].get_ref<const std::string&>(), max_text);
    } else if (type == "choice" && str("id")) {
      in.type = channels::inbound_type::choice;
      in.choice_id = crypto::truncate_bytes(j["id"].get_ref<const std::string&>(), max_choice_id);
      in.text = str("title") ? std::string(crypto::truncate_code_points(j["title"].get_ref<const std::string&>(), max_title)) : "";
    } else {
      // A known type without its string field is as malformed as no type at all.
      bool known = type == "text" || type == "choice";
      ch->send(json{{"type", "error"}, {"message", known ? "malformed message" : "unknown message type"}}.dump());
      continue;
    }
    // The page trims what the visitor typed and sends nothing when nothing is left; say so
    // to any other client rather than drop the frame without a word.
    if (in.type == channels::inbound_type::text &&
        std::all_of(in.text.begin(), in.text.end(), [](unsigned char b) { return std::isspace(b) != 0; })) {
      ch->send(json{{"type", "error"}, {"message", "empty message"}}.dump());
      continue;
    }
    // Someone in danger is not told to wait: behind a shared address (a carrier's NAT, an
    // office) another visitor's flood must not hold back the emergency numbers and the queue.
    // Danger texts have a budget of their own per address (danger_messages_per_minute), so that
    // adding a danger word is no way around the limit; they still use up the ordinary budget,
    // so a flooder's other messages wait.
    const auto now_tp = address_limiter::clock::now();
    const bool danger = in.type == channels::inbound_type::text && s.ops.engine()->is_danger(in.text) &&
                        danger_limits.take(client, now_tp) == 0;
    int wait = limits.take(client, now_tp);
    if (danger) wait = 0;
    if (wait > 0) {
      s.stats.count("webchat_messages_throttled");
      ch->send(json{{"type", "error"},
                    {"code", "rate_limited"},
                    {"message", "too many messages, send it again in a moment"},
                    {"retry_after", wait},
                    {"client_id", client_id}}
                   .dump());
      continue;
    }
    after_commit fx;
    fx.staff_listening = s.hub.has_subscribers("staff");
    auto now = unix_now();
    constexpr int was_ended = -1;
    auto r = co_await db_write<int>(s.db, storage::rerun::safe, [&s, &in, &fx, now](storage::connection& c) -> storage::result<int> {
      auto ended = session_was_ended(c, in.from);
      if (!ended) return ended.error();
      if (*ended) return was_ended;
      return s.ops.handle_all(c, std::span<const channels::inbound>(&in, 1), now, fx);
    });
    if (r && *r == was_ended) {
      // Ended on some device while this message was on its way: not stored, and this socket
      // closes as every socket of the session does.
      ch->send_and_close(std::string(ended_frame));
      break;
    }
    if (!r) {
      ch->send(json{{"type", "error"},
                    {"code", "not_stored"},
                    {"message", "could not store your message, please send it again"},
                    {"client_id", client_id}}
                   .dump());
      continue;
    }
    // The visitor's own message is acknowledged by its client id; the replies follow (via the hub).
    ch->send(json{{"type", "ack"}, {"client_id", client_id}}.dump());
    s.after(fx);
  }
  watch->stop();
  ch->close();
}

/// POST /chat/upload: a photo or a PDF from the visitor (docs/console.md, "Sending a file").
/// The body is the file itself; the session, the page's client id and the file's name come in
/// headers. Answered 200 once the file and its message are committed, like a webhook.
net::awaitable<response> upload_file(const services& s, const session_ids& ids, address_limiter& limits,
                                     request_context& ctx) {
  const auto v = ctx.req.version();
  const bool ka = ctx.req.keep_alive();
  const std::string session(ctx.req["X-Chat-Session"]);
  const std::string client_id(ctx.req["X-Client-Id"]);
  // Every upload costs a message from the client address's budget, refused ones included: a
  // file is read whole before it can be judged, and the chat is public.
  if (int wait = limits.take(limit_key(ctx.remote), address_limiter::clock::now()); wait > 0) {
    s.stats.count("webchat_messages_throttled");
    auto res = error_response(v, ka, api_error::rate_limited, "too many messages, send it again in a moment");
    res.set(http::field::retry_after, std::to_string(wait));
    co_return res;
  }
  if (!valid_session(session))
    co_return error_response(v, ka, api_error::malformed,
                             "X-Chat-Session must be 16-64 characters of A-Z, a-z, 0-9, '-' or '_'");
  if (!valid_client_id(client_id))
    co_return error_response(v, ka, api_error::malformed, "X-Client-Id must be up to 64 characters of A-Z, a-z, 0-9, '-' or '_'");
  {
    auto known = co_await session_known(s, session);
    if (!known) co_return error_response(v, ka, api_error::unavailable, "could not check the session, try again");
    if (*known == session_ended || (*known == session_unknown && !ids.ours(session)))
      co_return error_response(v, ka, api_error::unauthenticated, "unknown session: open the chat again");
  }
  auto& body = ctx.req.body();
  if (body.empty()) co_return error_response(v, ka, api_error::malformed, "the file is empty");
  const auto type = media_http::sniff_upload(body);
  if (!type)
    co_return error_response(v, ka, api_error::unsupported_type,
                             "only photos (JPEG, PNG, WebP) and PDF documents can be sent here");
  storage::upload_row row;
  row.address = session;
  row.kind = std::string(type->kind);
  row.mime = std::string(type->mime);
  row.filename = media_http::upload_name(percent_decode(ctx.req["X-File-Name"]), *type);
  row.created_at = unix_now();
  row.bytes = std::move(body);
  channels::inbound in;
  in.channel = channels::kind::webchat;
  in.from = session;
  in.provider_id = "web:" + session + ":" + (client_id.empty() ? random_suffix() : client_id);
  in.timestamp = row.created_at;
  in.type = channels::inbound_type::media;
  in.raw_type = row.kind;
  in.media_kind = row.kind;
  in.media_mime = row.mime;
  in.media_filename = row.filename;
  in.media_size = static_cast<std::int64_t>(row.bytes.size());
  after_commit fx;
  fx.staff_listening = s.hub.has_subscribers("staff");
  const auto now = row.created_at;
  constexpr int no_consent = -1;
  constexpr int was_ended = -2;
  auto r = co_await db_write<int>(s.db, storage::rerun::safe, [&s, &in, &row, &fx, now](storage::connection& c) -> storage::result<int> {
    auto ended = session_was_ended(c, row.address);
    if (!ended) return ended.error();
    if (*ended) return was_ended;
    // A file is kept only from someone who has agreed to the privacy notice: before, it is
    // not taken at all (the page says to agree first). A text before consent is the dialog's.
    // Someone staff hold, or who waits for staff (danger words before consent put them there),
    // cannot reach the consent question: staff decide what to ask of them, files included.
    {
      auto q = c.prepare(
          "SELECT b.consented_at IS NOT NULL OR EXISTS (SELECT 1 FROM conversations c WHERE c.beneficiary_id = b.id "
          "AND c.mode IN ('staff', 'waiting')) FROM beneficiaries b WHERE b.channel = 'webchat' AND b.address = ?");
      if (!q) return q.error();
      q->bind(1, row.address);
      auto found = q->step();
      if (!found) return found.error();
      if (!*found || q->int64(0) == 0) return no_consent;
    }
    auto id = storage::insert_upload(c, row);
    if (!id) return id.error();
    in.media_id = std::to_string(*id);
    auto fresh = s.ops.handle_all(c, std::span<const channels::inbound>(&in, 1), now, fx);
    if (!fresh) return fresh;
    // Sent before (a resend after a lost answer): the first copy is the one kept.
    if (*fresh == 0)
      if (auto ec = storage::delete_upload(c, *id)) return ec;
    return fresh;
  });
  if (!r) co_return error_response(v, ka, api_error::unavailable, "could not store your file, please send it again");
  if (*r == was_ended) co_return error_response(v, ka, api_error::unauthenticated, "unknown session: open the chat again");
  if (*r == no_consent)
    co_return error_response(v, ka, api_error::conflict,
                             "files are taken once the privacy notice is agreed to: agree to it in the chat, then send the file");
  s.after(fx);
  log::info("webchat_upload", {{"rid", ctx.request_id},
                               {"kind", row.kind},
                               {"bytes", static_cast<std::int64_t>(row.bytes.size())},
                               {"duplicate", *r == 0}});
  co_return json_response(v, ka, json{{"ok", true}, {"client_id", client_id}}.dump());
}

struct static_cache {
  std::mutex mutex;
  std::map<std::string, std::pair<std::string, std::string>> files;  // path -> (type, content)
};

const char* mime_of(const std::string& path) {
  auto ext = std::filesystem::path(path).extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  return "application/octet-stream";
}

}  // namespace

/// POST /chat/end: "end on this device". The session id (X-Chat-Session) no longer opens the
/// conversation anywhere, and its open sockets are told and closed. The conversation stays with
/// the association (it is not an erasure). Answered 204, also for an id that never opened
/// anything (a made-up one).
///
/// An id the server made that holds no conversation yet is ended too, as a row with no
/// conversation: the visitor's first message may still be on its way to the writer (the page
/// sent it, then "end" at once), and stored after the end it would bring the id back to life.
/// The message's own job reads the end (session_was_ended) and stores nothing.
net::awaitable<response> end_session(const services& s, const session_ids& ids, address_limiter& limits,
                                     request_context& ctx) {
  const auto v = ctx.req.version();
  const bool ka = ctx.req.keep_alive();
  const std::string session(ctx.req["X-Chat-Session"]);
  // Each end may write a row that stays: it costs a message from the address's budget, as a
  // text or a file does.
  if (int wait = limits.take(limit_key(ctx.remote), address_limiter::clock::now()); wait > 0) {
    s.stats.count("webchat_messages_throttled");
    auto res = error_response(v, ka, api_error::rate_limited, "too many requests, try again in a moment");
    res.set(http::field::retry_after, std::to_string(wait));
    co_return res;
  }
  if (!valid_session(session))
    co_return error_response(v, ka, api_error::malformed, "X-Chat-Session must be 16-64 characters of A-Z, a-z, 0-9, '-' or '_'");
  auto known = co_await session_known(s, session);
  if (!known) co_return error_response(v, ka, api_error::unavailable, "could not check the session, try again");
  if (*known == session_unknown && !ids.ours(session)) {
    response res{http::status::no_content, v};  // a made-up id never becomes an address
    res.keep_alive(ka);
    co_return res;
  }
  if (*known != session_ended) {
    const auto now = unix_now();
    auto w = co_await db_write<int>(s.db, storage::rerun::safe, [&session, now](storage::connection& c) -> storage::result<int> {
      auto q = c.prepare(
          "UPDATE beneficiaries SET session_ended_at = ? WHERE channel = 'webchat' AND address = ? AND session_ended_at IS NULL");
      if (!q) return q.error();
      if (auto ec = q->bind(1, now).bind(2, session).exec()) return ec;
      if (c.changes() > 0) return 1;
      auto t = c.prepare(
          "INSERT INTO beneficiaries (channel, address, created_at, session_ended_at) VALUES ('webchat', ?1, ?2, ?2) "
          "ON CONFLICT (channel, address) DO NOTHING");
      if (!t) return t.error();
      if (auto ec = t->bind(1, session).bind(2, now).exec()) return ec;
      return c.changes();
    });
    if (!w) co_return error_response(v, ka, api_error::unavailable, "could not end the session, try again");
    if (*w > 0) s.stats.count("webchat_sessions_ended");
  }
  s.hub.publish({"webchat:" + session, std::string(ended_frame)});
  response res{http::status::no_content, v};
  res.keep_alive(ka);
  co_return res;
}

void add_webchat_routes(router& r, const services& s, const std::string& session_key) {
  if (!s.cfg.webchat_enabled) return;
  s.stats.count("webchat_sessions_replaced", 0);
  s.stats.count("webchat_sockets_refused", 0);
  s.stats.count("webchat_origin_refused", 0);
  s.stats.count("webchat_sessions_ended", 0);
  s.stats.count("webchat_messages_throttled", 0);
  auto ids = std::make_shared<const session_ids>(session_key);
  // Texts and files share one budget per client address.
  auto limits = std::make_shared<address_limiter>(s.cfg.webchat_sockets_per_address, s.cfg.webchat_messages_per_minute);
  r.add_websocket("/chat/ws", [&s, ids, limits, danger = std::make_shared<address_limiter>(0, danger_messages_per_minute)](
                                  beast::tcp_stream stream, request_context& ctx) {
    return webchat_session(s, *ids, *limits, *danger, std::move(stream), ctx);
  });
  r.add(http::verb::post, std::string(upload_target),
        [&s, ids, limits](request_context& ctx) { return upload_file(s, *ids, *limits, ctx); });
  r.add(http::verb::post, "/chat/end",
        [&s, ids, limits](request_context& ctx) { return end_session(s, *ids, *limits, ctx); });
}

/// Whether a path under a static folder has only named segments (none empty, none ".").
bool one_spelling(std::string_view rel) {
  for (std::size_t at = 0;;) {
    const auto slash = rel.find('/', at);
    const auto seg = rel.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
    if (seg.empty() || seg == ".") return false;
    if (slash == std::string_view::npos) return true;
    at = slash + 1;
  }
}

void add_static_routes(router& r, const services& s) {
  auto cache = std::make_shared<static_cache>();
  auto serve = [&s, cache](std::string prefix, std::string dir) {
    return [&s, cache, prefix, dir](request_context& ctx) -> net::awaitable<response> {
      if (ctx.path.size() < prefix.size()) {
        // "/chat" without its slash: the page's files are named relative to the folder, so
        // served here it would load none of them (no script: no quick exit, nothing sent).
        response res{http::status::permanent_redirect, ctx.req.version()};
        res.set(http::field::location, prefix);
        res.keep_alive(ctx.req.keep_alive());
        res.prepare_payload();
        co_return res;
      }
      std::string rel(ctx.path.size() > prefix.size() ? ctx.path.substr(prefix.size()) : std::string_view());
      if (rel.empty() || rel.back() == '/') rel += "index.html";
      // No way out of the folder: reject "..", backslashes and NULs outright. And one spelling
      // per file: no empty or "." segment ("//app.js", "./app.js"), so the cache below holds
      // at most one copy of each file, whatever spellings a client tries.
      if (rel.find("..") != std::string::npos || rel.find('\\') != std::string::npos ||
          rel.find('\0') != std::string::npos || !one_spelling(rel))
        co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such file");
      std::string path = s.cfg.source_dir + "/" + dir + "/" + rel;
      std::pair<std::string, std::string> file;
      bool found = false;
      {
        std::lock_guard lock(cache->mutex);
        if (auto it = cache->files.find(path); it != cache->files.end()) {
          file = it->second;
          found = true;
        }
      }
      if (!found) {
        std::ifstream in(path, std::ios::binary);
        if (!in || std::filesystem::is_directory(path))
          co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such file");
        std::stringstream ss;
        ss << in.rdbuf();
        file = {mime_of(path), ss.str()};
        std::lock_guard lock(cache->mutex);
        cache->files[path] = file;
      }
      response res{http::status::ok, ctx.req.version()};
      res.set(http::field::content_type, file.first);
      res.set(http::field::cache_control, "no-cache");
      res.set("X-Content-Type-Options", "nosniff");
      // Not shown inside another site's frame (clickjacking: a page that frames the console
      // and lures a signed-in member of staff into clicks). The chat page is framed by no one
      // either: the association links to it.
      res.set("Content-Security-Policy",
              "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
              "frame-ancestors 'none'");
      res.set("X-Frame-Options", "DENY");
      res.keep_alive(ctx.req.keep_alive());
      res.body() = std::move(file.second);
      res.prepare_payload();
      co_return res;
    };
  };
  r.add_prefix("/console/", serve("/console/", "web/console"));
  // The page is no use without its WebSocket: with the web chat off it is not served either.
  if (s.cfg.webchat_enabled) r.add_prefix("/chat/", serve("/chat/", "web/chat"));
  r.add_prefix("/vendor/", serve("/vendor/", "web/vendor"));
  r.add(http::verb::get, "/", [](request_context& ctx) -> net::awaitable<response> {
    response res{http::status::found, ctx.req.version()};
    res.set(http::field::location, "/console/");
    res.keep_alive(ctx.req.keep_alive());
    res.prepare_payload();
    co_return res;
  });
}

}  // namespace aoun::bot
