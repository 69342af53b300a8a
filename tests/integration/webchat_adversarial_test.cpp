// The web chat's WebSocket (/chat/ws) under hostile input: frames that are not what
// web/chat/chat.js sends, frames over the limit, invalid UTF-8, a flood, made-up, tampered or
// someone else's session ids, a client that leaves mid-message. The rule: a bad frame gets a clear error (or the close
// code the protocol names), nothing is stored, nobody sees another visitor's history, and the
// server keeps serving the next well-formed frame.
#include <doctest/doctest.h>

#include <deque>
#include <set>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;
using namespace std::string_literals;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;

namespace {

/// A visitor's page: one WebSocket on /chat/ws, driven from the test's thread (the io_context
/// runs only inside send/wait calls, so reads and writes never overlap across threads).
class chat_client {
 public:
  /// Connects presenting `asked` (none if empty), and an X-Forwarded-For header if
  /// `forwarded_for` is set; on 101 waits for the server's first frame, the session id it gives
  /// this connection.
  /// `asked` goes as web/chat/chat.js sends it, a subprotocol ("session.<id>" beside
  /// "aoun.chat"), or with `in_url` as pages from before did, `?session=`.
  /// `origin`, if set, goes as a browser's Origin header.
  explicit chat_client(unsigned short port, const std::string& asked = "", const std::string& forwarded_for = "",
                       bool in_url = false, const std::string& origin = "") {
    beast::get_lowest_layer(ws_).connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    const std::string protocols = in_url || asked.empty() ? "aoun.chat" : "aoun.chat, session." + asked;
    ws_.set_option(websocket::stream_base::decorator([forwarded_for, protocols, origin](websocket::request_type& req) {
      if (!forwarded_for.empty()) req.set("X-Forwarded-For", forwarded_for);
      if (!origin.empty()) req.set(http::field::origin, origin);
      req.set(http::field::sec_websocket_protocol, protocols);
    }));
    websocket::response_type resp;
    boost::system::error_code ec;
    ws_.handshake(resp, "127.0.0.1:" + std::to_string(port), in_url && !asked.empty() ? "/chat/ws?session=" + asked : "/chat/ws", ec);
    status = ec ? resp.result_int() : 101;
    protocol = std::string(resp[http::field::sec_websocket_protocol]);
    if (ec) return;
    read_next();
    if (auto first = next([](const json&) { return true; }); first && first->value("type", "") == "session")
      session = first->value("session", "");
  }
  ~chat_client() {
    boost::system::error_code ec;
    beast::get_lowest_layer(ws_).socket().close(ec);
    ioc_.restart();
    ioc_.poll();
  }

  int status = 0;
  std::string protocol;  ///< the subprotocol the server chose
  std::string session;  ///< what the server's first frame named (empty if it did not)

  void send_text(const std::string& bytes) { write(bytes, true); }
  void send_binary(const std::string& bytes) { write(bytes, false); }
  void send(const json& j) { send_text(j.dump()); }
  /// One fragment of a message that never ends (FIN clear).
  void send_fragment(const std::string& bytes) {
    ws_.text(true);
    bool done = false;
    ws_.async_write_some(false, net::buffer(bytes), [&](boost::system::error_code, std::size_t) { done = true; });
    pump([&] { return done; }, std::chrono::seconds(5));
  }
  /// Drops the TCP connection without a close frame.
  void drop() {
    boost::system::error_code ec;
    beast::get_lowest_layer(ws_).socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
  }

  /// Waits for a frame (not yet taken) matching `pred`, takes it and the ones before it.
  std::optional<json> next(const std::function<bool(const json&)>& pred,
                           std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::optional<json> found;
    pump(
        [&] {
          while (!frames_.empty()) {
            auto j = json::parse(frames_.front(), nullptr, false);
            frames_.pop_front();
            if (pred(j)) {
              found = std::move(j);
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }
  std::optional<json> next_of_type(const std::string& type, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return next([&](const json& j) { return j.is_object() && j.value("type", "") == type; }, timeout);
  }
  /// Waits until the server closes; the close code it sent (websocket::close_code::none if
  /// the connection just dropped), or nullopt while it stays open.
  std::optional<std::uint16_t> wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    pump([&] { return closed_; }, timeout);
    if (!closed_) return std::nullopt;
    return static_cast<std::uint16_t>(ws_.reason().code);
  }
  bool closed() const { return closed_; }

 private:
  void read_next() {
    ws_.async_read(buf_, [this](boost::system::error_code ec, std::size_t) {
      if (ec) {
        closed_ = true;
        return;
      }
      frames_.push_back(beast::buffers_to_string(buf_.data()));
      buf_.consume(buf_.size());
      read_next();
    });
  }
  void write(const std::string& bytes, bool text) {
    ws_.text(text);
    bool done = false;
    ws_.async_write(net::buffer(bytes), [&](boost::system::error_code, std::size_t) { done = true; });
    pump([&] { return done; }, std::chrono::seconds(5));
  }
  void pump(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return;
      if (ioc_.stopped()) ioc_.restart();
      if (ioc_.run_one_for(deadline - now) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_{ioc_};
  beast::flat_buffer buf_;
  std::deque<std::string> frames_;
  bool closed_ = false;
};

json text_msg(const std::string& text, const std::string& client_id) {
  return json{{"type", "text"}, {"text", text}, {"client_id", client_id}};
}

long long stored_messages(const std::string& db) {
  return db_value(db, "SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                      "JOIN beneficiaries b ON b.id = c.beneficiary_id WHERE b.channel = 'webchat' AND m.direction = 'in'");
}

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

/// Reconnecting with `session` keeps that id and replays a history that holds `text`.
void replays(unsigned short port, const std::string& session, const std::string& text) {
  chat_client c(port, session);
  REQUIRE(c.status == 101);
  CHECK(c.session == session);
  auto h = c.next_of_type("history");
  REQUIRE(h);
  CHECK(h->dump().find(text) != std::string::npos);
}

/// A visitor who wrote `text` (as `client_id`) and left: their session id.
std::string visitor_who_wrote(unsigned short port, const std::string& text, const std::string& client_id) {
  chat_client a(port);
  REQUIRE(a.status == 101);
  REQUIRE(a.next_of_type("history"));
  a.send(text_msg(text, client_id));
  REQUIRE(a.next_of_type("ack"));
  return a.session;
}

/// The visitor still has a working chat: a well-formed text is acknowledged and answered.
void still_serves(chat_client& c, const std::string& client_id) {
  c.send(text_msg("مرحبا", client_id));
  auto ack = c.next_of_type("ack");
  REQUIRE_MESSAGE(ack, "no ack for a well-formed text");
  CHECK((*ack)["client_id"] == client_id);
}

}  // namespace

TEST_CASE("webchat: frames that are not the page's JSON get an error frame, store nothing, and the session goes on") {
  staff_env e;
  chat_client c(e.port());
  REQUIRE(c.status == 101);
  REQUIRE(c.next_of_type("history"));

  struct bad_frame {
    std::string what, bytes;
    bool binary;
    std::string message;
  };
  const std::vector<bad_frame> frames{
      {"not JSON", "hello", false, "malformed message"},
      {"truncated JSON", "{\"type\":\"text\",\"text\":\"a", false, "malformed message"},
      {"empty frame", "", false, "malformed message"},
      {"JSON null", "null", false, "malformed message"},
      {"JSON array", "[\"text\",\"hi\"]", false, "malformed message"},
      {"JSON string", "\"hi\"", false, "malformed message"},
      {"JSON number", "99999999999999999999", false, "malformed message"},
      {"huge exponent", "{\"type\":\"text\",\"text\":1e999}", false, "malformed message"},
      {"no type", "{\"text\":\"hi\"}", false, "malformed message"},
      {"type is a number", "{\"type\":1,\"text\":\"hi\"}", false, "malformed message"},
      {"type is null", "{\"type\":null,\"text\":\"hi\"}", false, "malformed message"},
      {"type is an array", "{\"type\":[\"text\"],\"text\":\"hi\"}", false, "malformed message"},
      {"unknown type", "{\"type\":\"delete_all\"}", false, "unknown message type"},
      {"text without text", "{\"type\":\"text\"}", false, "malformed message"},
      {"text is a number", "{\"type\":\"text\",\"text\":42}", false, "malformed message"},
      {"text is null", "{\"type\":\"text\",\"text\":null}", false, "malformed message"},
      {"text is an array", "{\"type\":\"text\",\"text\":[\"hi\"]}", false, "malformed message"},
      {"text is an object", "{\"type\":\"text\",\"text\":{\"$gt\":\"\"}}", false, "malformed message"},
      {"choice without id", "{\"type\":\"choice\",\"title\":\"yes\"}", false, "malformed message"},
      {"choice id is a number", "{\"type\":\"choice\",\"id\":7}", false, "malformed message"},
      {"lone surrogate escape", "{\"type\":\"text\",\"text\":\"\\ud800\"}", false, "malformed message"},
      {"raw NUL in a string", "{\"type\":\"text\",\"text\":\"a\0b\"}"s, false, "malformed message"},
      {"binary garbage", "\x00\xff\xfe\x80"s, true, "malformed message"},
      {"binary JSON with invalid UTF-8", "{\"type\":\"text\",\"text\":\"\xff\xfe\"}", true, "malformed message"},
      // The page sends text frames; a binary one is refused whatever it holds.
      {"binary frame with the page's JSON", "{\"type\":\"text\",\"text\":\"hi\"}", true, "malformed message"},
      {"deep nesting", repeat("[", 5000) + repeat("]", 5000), false, "malformed message"},
      // The page trims and never sends these; answered, not silently dropped.
      {"empty text", "{\"type\":\"text\",\"text\":\"\"}", false, "empty message"},
      {"blank text", "{\"type\":\"text\",\"text\":\" \\t\\n \"}", false, "empty message"},
  };
  for (const auto& f : frames) {
    CAPTURE(f.what);
    if (f.binary)
      c.send_binary(f.bytes);
    else
      c.send_text(f.bytes);
    auto err = c.next_of_type("error");
    REQUIRE_MESSAGE(err, "no error frame");
    CHECK((*err)["message"] == f.message);
  }
  CHECK_FALSE(c.closed());
  CHECK(stored_messages(e.db) == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE channel = 'webchat'") == 0);
  still_serves(c, "c-after-bad-frames");
  CHECK(eventually([&] { return stored_messages(e.db) == 1; }));
}

TEST_CASE("webchat: the page's ping is answered pong, stores nothing and costs no message") {
  staff_env e(env_vars{{"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "2"}});
  chat_client c(e.port());
  REQUIRE(c.status == 101);
  REQUIRE(c.next_of_type("history"));
  for (int i = 0; i < 5; ++i) {
    c.send_text(R"({"type":"ping"})");
    REQUIRE(c.next_of_type("pong"));
  }
  CHECK(stored_messages(e.db) == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE channel = 'webchat'") == 0);
  // Five pings spent nothing of the two messages a minute.
  still_serves(c, "c-after-pings");
  CHECK(eventually([&] { return stored_messages(e.db) == 1; }));
}

TEST_CASE("webchat: a client id the page would not make is refused whole, not cut, and not echoed back") {
  staff_env e;
  chat_client c(e.port());
  REQUIRE(c.status == 101);
  REQUIRE(c.next_of_type("history"));
  // Cut to 64 bytes, these two would be one dedupe key: the second message acknowledged, and dropped.
  for (const auto& id : {repeat("a", 64) + "1", repeat("a", 64) + "2", "has space"s, "نص"s}) {
    CAPTURE(id);
    c.send(json{{"type", "text"}, {"text", "مرحبا"}, {"client_id", id}});
    auto err = c.next_of_type("error");
    REQUIRE(err);
    CHECK((*err)["code"] == "malformed");
    CHECK_FALSE(err->contains("client_id"));
  }
  CHECK(stored_messages(e.db) == 0);
  still_serves(c, repeat("b", 64));  // 64 is the page's limit, and taken
}

TEST_CASE("webchat: a socket opens from the server's own pages, or from no browser; another site's is refused") {
  staff_env e;
  const auto port = std::to_string(e.port());
  for (const std::string& origin : {"https://evil.example"s, "http://127.0.0.1.evil.example"s, "null"s,
                                    "http://127.0.0.1:1"s, "file://"s}) {
    CAPTURE(origin);
    chat_client c(e.port(), "", "", false, origin);
    CHECK(c.status == 403);
  }
  // The page at /chat/ (its origin is the Host it was sent to), the public URL's origin, and a
  // client that is no browser (no Origin at all).
  for (const std::string& origin : {"http://127.0.0.1:" + port, "HTTP://127.0.0.1:" + port, "https://bot.example.org"s, ""s}) {
    CAPTURE(origin);
    chat_client c(e.port(), "", "", false, origin);
    CHECK(c.status == 101);
  }
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE channel = 'webchat'") == 0);
}

TEST_CASE("webchat: a session id outside 16-64 of [A-Za-z0-9_-] is refused before the upgrade") {
  staff_env e;
  for (const std::string& s : {"short"s, repeat("a", 65), "aaaaaaaaaaaaaaaa%00"s, "aaaaaaaaaaaaaaa%2F"s, "aaaaaaaaaaaaaaa."s,
                               "%D8%B9%D8%B9%D8%B9%D8%B9%D8%B9%D8%B9%D8%B9%D8%B9"s}) {
    CAPTURE(s);
    chat_client c(e.port(), s, "", true);  // in the URL, percent-encoded
    CHECK(c.status == 400);
  }
  // As the page sends it, a subprotocol (whose tokens cannot carry most of the above).
  for (const std::string& s : {"short"s, repeat("a", 65), "aaaaaaaaaaaaaaa."s, "aaaaaaaa~aaaaaaa"s}) {
    CAPTURE(s);
    chat_client c(e.port(), s);
    CHECK(c.status == 400);
  }
  CHECK(http_call(e.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("webchat: the session id travels as a subprotocol, out of the URL that proxies log; the old way still works") {
  staff_env e;
  const std::string id = visitor_who_wrote(e.port(), "أحتاج مساعدة", "sub-1");
  {
    chat_client c(e.port(), id);  // "aoun.chat, session.<id>"
    REQUIRE(c.status == 101);
    // A browser drops a socket whose server chose none of the subprotocols it offered.
    CHECK(c.protocol == "aoun.chat");
    CHECK(c.session == id);
    auto h = c.next_of_type("history");
    REQUIRE(h);
    CHECK(h->dump().find("أحتاج مساعدة") != std::string::npos);
  }
  {
    chat_client c(e.port(), id, "", true);  // a page loaded before: ?session=<id>
    REQUIRE(c.status == 101);
    CHECK(c.session == id);
  }
}

TEST_CASE("webchat: long texts and long choice fields are cut on a character boundary, and the chat keeps working") {
  staff_env e;
  std::string session;
  {
    chat_client c(e.port());
    REQUIRE(c.status == 101);
    session = c.session;
    REQUIRE(c.next_of_type("history"));
    // 'a' then Arabic letters (two bytes each): a cut at a fixed byte count lands inside one.
    c.send(text_msg("a" + repeat("ع", 5000), "long-1"));
    REQUIRE(c.next_of_type("ack"));
    c.send(json{{"type", "choice"}, {"id", "x" + repeat("ع", 100)}, {"title", "y" + repeat("ع", 300)}, {"client_id", "long-2"}});
    auto ack = c.next([](const json& j) { return j.value("type", "") == "ack" || j.value("type", "") == "error"; });
    REQUIRE(ack);
    CHECK((*ack)["type"] == "ack");
  }
  CHECK(eventually([&] { return stored_messages(e.db) == 2; }));
  // What was stored is text every reader can serialise: staff can open the conversation and the
  // queue...
  auto admin = login(e.port());
  auto cid = conversation_of(e.db, session);
  auto msgs = api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(cid) + "/messages", admin);
  CHECK_MESSAGE(msgs.status == 200, msgs.body);
  auto list = api(e.port(), "GET", "/api/v1/conversations?mode=all", admin);
  CHECK_MESSAGE(list.status == 200, list.body);
  // ...where the visitor's session id, their key to the chat, is never shown whole.
  auto listed = find_conversation(as_json(list), cid);
  REQUIRE(listed.is_object());
  CHECK(listed["address"] == "web:" + session.substr(0, 8));
  CHECK(list.body.find(session) == std::string::npos);
  CHECK(api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(cid), admin).body.find(session) == std::string::npos);
  // ...and the visitor's reconnect replays it.
  chat_client again(e.port(), session);
  REQUIRE(again.status == 101);
  auto history = again.next_of_type("history");
  REQUIRE_MESSAGE(history, "no history on reconnect");
  std::string longest;
  for (auto& m : (*history)["messages"])
    if (m["direction"] == "in" && m["text"].get<std::string>().size() > longest.size()) longest = m["text"];
  CHECK(longest.size() == 1 + 2 * 4095);  // 4096 characters: 'a' and 4095 letters
  still_serves(again, "long-3");
}

TEST_CASE("webchat: invalid UTF-8 in a text frame and frames over the limit close the socket with the protocol's code") {
  staff_env e;
  std::string utf8_session;
  {
    chat_client c(e.port());
    REQUIRE(c.status == 101);
    utf8_session = c.session;
    REQUIRE(c.next_of_type("history"));
    c.send_text("{\"type\":\"text\",\"text\":\"\xc3\x28\"}");
    auto code = c.wait_closed();
    REQUIRE(code);
    CHECK(*code == websocket::close_code::bad_payload);
  }
  {
    chat_client c(e.port());
    REQUIRE(c.status == 101);
    REQUIRE(c.next_of_type("history"));
    c.send(text_msg(repeat("a", 20 * 1024), "big"));
    auto code = c.wait_closed();
    REQUIRE(code);
    CHECK(*code == websocket::close_code::too_big);
  }
  CHECK(stored_messages(e.db) == 0);
  chat_client next(e.port(), utf8_session);
  REQUIRE(next.status == 101);
  CHECK(next.session == utf8_session);
  REQUIRE(next.next_of_type("history"));
  still_serves(next, "after-close");
}

TEST_CASE("webchat: a visitor never sees another visitor's history") {
  staff_env e;
  const std::string alice = visitor_who_wrote(e.port(), "سري للغاية", "alice-1");
  // Ids close to Alice's, and made-up ones, are other (new) visitors: each is given an id of
  // its own and has nothing to replay.
  std::string upper = alice, lower = alice, flipped = alice;
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  std::set<std::string> given{alice};
  for (const auto& other : {upper, lower, flipped, alice.substr(0, 22), alice.substr(0, 40), alice + "x",
                            std::string("Alice-Session-012345678_"), std::string("0000000000000000")}) {
    CAPTURE(other);
    chat_client b(e.port(), other);
    REQUIRE(b.status == 101);
    CHECK(b.session != other);
    CHECK(given.insert(b.session).second);
    auto h = b.next_of_type("history");
    REQUIRE(h);
    CHECK((*h)["messages"].empty());
  }
  // Alice herself gets her history back; another visitor's new messages are not pushed to her.
  chat_client a(e.port(), alice);
  REQUIRE(a.status == 101);
  CHECK(a.session == alice);
  auto mine = a.next_of_type("history");
  REQUIRE(mine);
  CHECK(mine->dump().find("سري للغاية") != std::string::npos);
  {
    chat_client b(e.port());
    REQUIRE(b.status == 101);
    b.send(text_msg("رسالة بوب", "bob-1"));
    REQUIRE(b.next_of_type("ack"));
    REQUIRE(b.next_of_type("message"));  // the bot's answer to Bob
  }
  CHECK_FALSE(a.next([](const json&) { return true; }, std::chrono::milliseconds(300)));
}

TEST_CASE("webchat: the server makes the session ids, keeps them across a restart, and keeps ids from before") {
  staff_env e;
  std::string made;
  {
    chat_client c(e.port());
    REQUIRE(c.status == 101);
    made = c.session;
    // 22 random characters and a 22-character tag, base64url.
    CHECK(made.size() == 44);
    CHECK(made.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
    REQUIRE(c.next_of_type("history"));
    c.send(text_msg("أحتاج مساعدة", "made-1"));
    REQUIRE(c.next_of_type("ack"));
  }
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE channel = 'webchat' AND address = '" + made + "'") == 1);
  // Two new visitors never get the same id.
  {
    chat_client x(e.port()), y(e.port());
    CHECK(x.session.size() == 44);
    CHECK(y.session.size() == 44);
    CHECK(x.session != y.session);
    CHECK(x.session != made);
  }
  // A made-up id, well-formed, is replaced: what the visitor then writes lives at the new id.
  const std::string made_up = "0123456789abcdef0123456789abcdef";
  {
    chat_client c(e.port(), made_up);
    REQUIRE(c.status == 101);
    CHECK(c.session != made_up);
    CHECK(c.session.size() == 44);
    c.send(text_msg("مرحبا", "made-up-1"));
    REQUIRE(c.next_of_type("ack"));
  }
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE channel = 'webchat' AND address = '" + made_up + "'") == 0);
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("\naoun_webchat_sessions_replaced_total 1\n") != std::string::npos);
  // An id the page chose itself before the server made them: a conversation lives at it, so it
  // is kept (stand-in: a conversation moved to such an address).
  const std::string before = "fedcba9876543210fedcba9876543210";
  db_exec(e.db, "UPDATE beneficiaries SET address = '" + before + "' WHERE channel = 'webchat' AND address = '" + made + "'");
  replays(e.port(), before, "أحتاج مساعدة");
  db_exec(e.db, "UPDATE beneficiaries SET address = '" + made + "' WHERE channel = 'webchat' AND address = '" + before + "'");
  // The key is in the database: after a restart the same id is still the server's own.
  REQUIRE(e.restart() == 0);
  replays(e.port(), made, "أحتاج مساعدة");
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("\naoun_webchat_sessions_replaced_total 0\n") != std::string::npos);
}

TEST_CASE("webchat: a flood of messages is processed in order, and the server stays responsive") {
  staff_env e(std::map<std::string, std::string>{{"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "0"}});  // no per-address limit: the order is what is tested
  chat_client c(e.port());
  REQUIRE(c.status == 101);
  REQUIRE(c.next_of_type("history"));
  constexpr int n = 150;
  for (int i = 0; i < n; ++i) c.send(text_msg("رسالة " + std::to_string(i), "flood-" + std::to_string(i)));
  // The same client ids again: resends, not new messages.
  for (int i = 0; i < 20; ++i) c.send(text_msg("رسالة " + std::to_string(i), "flood-" + std::to_string(i)));
  CHECK(http_call(e.port(), "GET", "/healthz").status == 200);
  c.send(text_msg("انتهيت", "flood-end"));
  CHECK(c.next([](const json& j) { return j.value("type", "") == "ack" && j.value("client_id", "") == "flood-end"; },
               std::chrono::seconds(30)));
  CHECK(stored_messages(e.db) == n + 1);
  // In the order sent, each once.
  for (int i = 0; i <= n; ++i)
    CHECK(db_text(e.db, "SELECT text FROM messages WHERE direction = 'in' ORDER BY id LIMIT 1 OFFSET " + std::to_string(i)) ==
          (i < n ? "رسالة " + std::to_string(i) : std::string("انتهيت")));
}

TEST_CASE("webchat: a client that leaves mid-message stores nothing and costs the server nothing") {
  staff_env e;
  std::string session;
  {
    chat_client c(e.port());
    REQUIRE(c.status == 101);
    session = c.session;
    REQUIRE(c.next_of_type("history"));
    c.send_fragment("{\"type\":\"text\",\"text\":\"first half");
    c.drop();
  }
  {
    // A frame header that promises more bytes than ever arrive.
    raw_connection raw(e.port());
    REQUIRE(raw.connected());
    raw.send("GET /chat/ws?session=half-frame-session-01 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    auto hello = raw.read_all(std::chrono::milliseconds(300));
    REQUIRE(hello.rfind("HTTP/1.1 101", 0) == 0);
    // FIN + text, masked, 16-bit length 1000, mask key 0, then only 10 bytes of payload.
    raw.send("\x81\xfe\x03\xe8\x00\x00\x00\x00"s + "{\"type\":\"");
  }
  {
    chat_client c(e.port(), session);
    REQUIRE(c.status == 101);
    CHECK(c.session == session);
    auto h = c.next_of_type("history");
    REQUIRE(h);
    CHECK((*h)["messages"].empty());
    still_serves(c, "after-drop");
  }
  CHECK(stored_messages(e.db) == 1);
  CHECK(http_call(e.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("webchat: one client address holds a few sockets and sends a few messages a minute, whatever it claims") {
  staff_env e({{"AOUN_WEBCHAT_SOCKETS_PER_ADDRESS", "2"}, {"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "3"}});
  auto a = std::make_unique<chat_client>(e.port());
  chat_client b(e.port());
  REQUIRE(a->status == 101);
  REQUIRE(b.status == 101);
  // A third socket from the same address is refused before the upgrade, and X-Forwarded-For
  // changes nothing when no proxy is trusted (a client cannot name itself someone else).
  CHECK(chat_client(e.port()).status == 429);
  CHECK(chat_client(e.port(), "", "203.0.113.5").status == 429);
  // A malformed session id is still told so (400), whatever the count.
  CHECK(chat_client(e.port(), "short").status == 400);
  // A socket that closes gives its place back.
  a.reset();
  std::unique_ptr<chat_client> d;
  CHECK(eventually([&] {
    d = std::make_unique<chat_client>(e.port());
    return d->status == 101;
  }));
  // Three messages a minute: the fourth gets an error naming the wait, and is not stored.
  for (int i = 0; i < 3; ++i) still_serves(b, "ok-" + std::to_string(i));
  b.send(text_msg("رسالة رابعة", "too-many"));
  auto err = b.next_of_type("error");
  REQUIRE(err);
  CHECK((*err)["code"] == "rate_limited");
  CHECK((*err)["client_id"] == "too-many");
  CHECK((*err)["retry_after"].get<int>() >= 1);
  CHECK((*err)["retry_after"].get<int>() <= 20);
  // The budget is the address's, not the socket's.
  d->send(text_msg("من نافذة أخرى", "other-tab"));
  auto err2 = d->next_of_type("error");
  REQUIRE(err2);
  CHECK((*err2)["code"] == "rate_limited");
  CHECK(eventually([&] { return stored_messages(e.db) == 3; }));
  CHECK(stored_messages(e.db) == 3);
  auto metrics = http_call(e.port(), "GET", "/metrics").body;
  CHECK(metrics.find("\naoun_webchat_sockets_refused_total 2\n") != std::string::npos);
  CHECK(metrics.find("\naoun_webchat_messages_throttled_total 2\n") != std::string::npos);
  CHECK(http_call(e.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("webchat: behind a trusted proxy each client is counted by the address the proxy names") {
  staff_env e({{"AOUN_WEBCHAT_SOCKETS_PER_ADDRESS", "1"}, {"AOUN_TRUSTED_PROXIES", "127.0.0.1"}});
  chat_client x(e.port(), "", "203.0.113.5");
  chat_client y(e.port(), "", "203.0.113.6");
  CHECK(x.status == 101);
  CHECK(y.status == 101);
  // The proxy appends the address it saw; what the client wrote to the left is not believed.
  CHECK(chat_client(e.port(), "", "198.51.100.1, 203.0.113.5").status == 429);
  CHECK(chat_client(e.port(), "", "203.0.113.5").status == 429);
  // IPv6 clients are counted per /64.
  chat_client v6(e.port(), "", "2001:db8:1:2::10");
  CHECK(v6.status == 101);
  CHECK(chat_client(e.port(), "", "[2001:db8:1:2:ffff::1]:51000").status == 429);
  CHECK(chat_client(e.port(), "", "2001:db8:1:3::10").status == 101);
  // The proxy's own connections (no header) are the proxy's address.
  chat_client direct(e.port());
  CHECK(direct.status == 101);
  CHECK(chat_client(e.port()).status == 429);
}

TEST_CASE("webchat: the session frame comes first even while the conversation is busy") {
  // Another tab of the same visitor keeps the bot replying while this one connects: a reply
  // published between the subscription and the session frame must not come before it.
  // No socket limit: 60 tabs open and close here, and a closed one gives its place back only
  // once the server has seen the close (a clean-clone CI run met the default 20 with a 429).
  staff_env e(std::map<std::string, std::string>{{"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "0"},
                                                 {"AOUN_WEBCHAT_SOCKETS_PER_ADDRESS", "0"}});
  chat_client a(e.port());
  REQUIRE(a.status == 101);
  REQUIRE(!a.session.empty());
  int not_first = 0;
  for (int i = 0; i < 60; ++i) {
    a.send(text_msg("مرحبا " + std::to_string(i), "busy-" + std::to_string(i)));
    chat_client b(e.port(), a.session);
    REQUIRE(b.status == 101);
    if (b.session != a.session) ++not_first;
  }
  CHECK(not_first == 0);
}

TEST_CASE("webchat: \"delete my data\" clears every open page of the session, and the history has no empty bubbles") {
  staff_env e;
  chat_client a(e.port());
  REQUIRE(a.status == 101);
  REQUIRE(a.next_of_type("history"));
  a.send(text_msg("اسمي منى ورقم هويتي 1012345678", "er-1"));
  REQUIRE(a.next_of_type("ack"));
  chat_client tab(e.port(), a.session);  // the same visitor in a second tab
  REQUIRE(tab.status == 101);
  REQUIRE(tab.next_of_type("history"));
  a.send(text_msg("احذف بياناتي", "er-2"));
  REQUIRE(a.next_of_type("ack"));
  REQUIRE(a.next([](const json& j) { return j.value("type", "") == "message" && j["message"]["choices"].size() == 2; }));
  a.send(json{{"type", "choice"}, {"id", "erase.yes"}, {"client_id", "er-3"}});
  for (auto* page : {&a, &tab}) {
    REQUIRE(page->next_of_type("erased"));
    auto confirm = page->next_of_type("message");  // the confirmation comes after the clearing
    REQUIRE(confirm);
    CHECK_FALSE((*confirm)["message"]["text"].get<std::string>().empty());
  }
  chat_client again(e.port(), a.session);
  auto h = again.next_of_type("history");
  REQUIRE(h);
  CHECK(h->dump().find("1012345678") == std::string::npos);
  for (const auto& m : (*h)["messages"]) {
    CHECK_FALSE(m["text"].get<std::string>().empty());
    // The page gets what it shows: no staff names, no internal ids.
    CHECK_FALSE(m.contains("staff_name"));
    CHECK_FALSE(m.contains("conversation_id"));
  }
}

TEST_CASE("webchat: an idle visitor's open page does not hold up a stop (webhooks would be refused meanwhile)") {
  staff_env e(env_vars{{"AOUN_SHUTDOWN_GRACE", "15"}});
  chat_client idle(e.port());
  REQUIRE(idle.status == 101);
  REQUIRE(idle.next_of_type("history"));
  const auto started = std::chrono::steady_clock::now();
  CHECK(e.srv->stop(15) == 0);
  // Before: the stop waited out the 15 s grace for this socket ("shutdown_grace_expired").
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));
  CHECK(e.srv->errors().find("shutdown_grace_expired") == std::string::npos);
}

TEST_CASE("webchat: the history names the page's client_id of what the visitor sent (a lost ack is not sent twice)") {
  staff_env e;
  const std::string session = visitor_who_wrote(e.port(), "مرحبا", "cid-0001");
  chat_client again(e.port(), session);
  auto h = again.next_of_type("history");
  REQUIRE(h);
  int mine = 0;
  for (const auto& m : (*h)["messages"]) {
    if (m["direction"] == "in") {
      ++mine;
      CHECK(m.value("client_id", "") == "cid-0001");
    } else {
      CHECK_FALSE(m.contains("client_id"));
    }
  }
  CHECK(mine == 1);
  // The page sends it again after a reconnect: acknowledged, not stored twice.
  again.send(text_msg("مرحبا", "cid-0001"));
  REQUIRE(again.next_of_type("ack"));
  CHECK(stored_messages(e.db) == 1);
}

TEST_CASE("webchat: a reply published while the history is read comes after the history frame, not before it") {
  // Before, such a reply was sent first and then wiped by the history frame (the page rebuilds
  // its list from it), while the history read might not include it.
  staff_env e(std::map<std::string, std::string>{{"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "0"}});
  chat_client a(e.port());
  REQUIRE(a.status == 101);
  int before_history = 0;
  for (int i = 0; i < 60; ++i) {
    a.send(text_msg("مرحبا " + std::to_string(i), "hist-" + std::to_string(i)));
    chat_client b(e.port(), a.session);
    REQUIRE(b.status == 101);
    auto first = b.next([](const json&) { return true; });
    REQUIRE(first);
    if ((*first).value("type", "") != "history") ++before_history;
  }
  CHECK(before_history == 0);
}

TEST_CASE("webchat: danger words are never throttled, whatever else came from the same address") {
  staff_env e(std::map<std::string, std::string>{{"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "1"}});
  chat_client flood(e.port());
  REQUIRE(flood.status == 101);
  REQUIRE(flood.next_of_type("history"));
  flood.send(text_msg("مرحبا", "fl-1"));
  REQUIRE(flood.next_of_type("ack"));
  flood.send(text_msg("مرحبا", "fl-2"));
  REQUIRE(flood.next([](const json& j) { return j.value("code", "") == "rate_limited"; }));
  // Another visitor on the same address, in danger.
  chat_client other(e.port());
  REQUIRE(other.status == 101);
  REQUIRE(other.next_of_type("history"));
  other.send(text_msg("أنا في خطر", "dg-1"));
  auto ack = other.next([](const json& j) { return j.value("type", "") == "ack" || j.value("type", "") == "error"; });
  REQUIRE(ack);
  CHECK((*ack)["type"] == "ack");
  CHECK(db_value(e.db, "SELECT count(*) FROM conversations WHERE priority = 1") == 1);
}

TEST_CASE("webchat: a danger word is no way around the limit: such texts have a small budget of their own") {
  staff_env e(std::map<std::string, std::string>{{"AOUN_WEBCHAT_MESSAGES_PER_MINUTE", "1"}});
  chat_client c(e.port());
  REQUIRE(c.status == 101);
  REQUIRE(c.next_of_type("history"));
  int acked = 0, throttled = 0;
  for (int i = 0; i < 14; ++i) {
    c.send(text_msg("x في خطر " + std::to_string(i), "dgf-" + std::to_string(i)));
    auto r = c.next([](const json& j) { return j.value("type", "") == "ack" || j.value("code", "") == "rate_limited"; });
    REQUIRE(r);
    if ((*r)["type"] == "ack") ++acked;
    else ++throttled;
  }
  // the ordinary minute's worth (1, up to 2 at first) plus 10 (up to 20) for danger texts
  CHECK(acked <= 12);
  CHECK(throttled >= 2);
}

namespace {

/// A valid 1×1 PNG (what a phone's screenshot starts with), then `extra` bytes of padding.
std::string tiny_png(std::size_t extra = 0) {
  static const unsigned char png[] = {
      0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
      0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00,
      0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xFF, 0xFF, 0x3F, 0x00, 0x05, 0xFE, 0x02, 0xFE, 0xA7,
      0x35, 0x81, 0x84, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(png), sizeof png) + std::string(extra, '\0');
}

http_result upload(unsigned short port, const std::string& session, const std::string& body,
                   const std::string& client_id = "", const std::string& name = "",
                   const std::string& forwarded_for = "", const std::string& target = "/chat/upload") {
  std::map<std::string, std::string> h{{"Content-Type", "application/octet-stream"}};
  if (!session.empty()) h["X-Chat-Session"] = session;
  if (!client_id.empty()) h["X-Client-Id"] = client_id;
  if (!name.empty()) h["X-File-Name"] = name;
  if (!forwarded_for.empty()) h["X-Forwarded-For"] = forwarded_for;
  return http_call(port, "POST", target, body, h);
}

/// A visitor who greeted the bot and agreed to the privacy notice (files are taken after that).
std::string consented_visitor(unsigned short port) {
  chat_client a(port);
  REQUIRE(a.status == 101);
  REQUIRE(a.next_of_type("history"));
  a.send(text_msg("السلام عليكم", "hello-1"));
  REQUIRE(a.next_of_type("ack"));
  a.send(json{{"type", "choice"}, {"id", "consent.yes"}, {"client_id", "consent-1"}});
  REQUIRE(a.next_of_type("ack"));
  return a.session;
}

}  // namespace

TEST_CASE("webchat: a visitor sends a photo; every tab sees it, staff download the same bytes, a resend is one file") {
  staff_env e;
  // Before the privacy notice is agreed to, no file is taken (and nothing is stored).
  const std::string early = visitor_who_wrote(e.port(), "السلام عليكم", "hello-0");
  auto refused = upload(e.port(), early, tiny_png(), "file-0", "x.png");
  CHECK(refused.status == 409);
  CHECK(as_json(refused)["message"].get<std::string>().find("privacy notice") != std::string::npos);
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE kind = 'media'") == 0);
  // Someone in danger before consent waits for staff and cannot reach the consent question:
  // their files are taken (staff decide what to ask of them).
  const std::string in_danger = visitor_who_wrote(e.port(), "أنا في خطر", "danger-0");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM conversations WHERE mode = 'waiting'") == 1; }));
  CHECK(upload(e.port(), in_danger, tiny_png(), "file-d", "x.png").status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 1);
  db_exec(e.db, "DELETE FROM uploads");
  db_exec(e.db, "DELETE FROM messages WHERE kind = 'media'");

  const std::string visitor = consented_visitor(e.port());
  chat_client tab(e.port(), visitor);  // another tab of the same session
  REQUIRE(tab.next_of_type("history"));
  const std::string bytes = tiny_png(3000);
  // "صورة الهوية.png", percent-encoded as the page sends it
  auto r = upload(e.port(), visitor, bytes, "file-1", "%D8%B5%D9%88%D8%B1%D8%A9%20%D8%A7%D9%84%D9%87%D9%88%D9%8A%D8%A9.png");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(as_json(r)["client_id"] == "file-1");
  auto shown = tab.next([](const json& j) { return j.value("type", "") == "message" && j["message"].contains("file"); });
  REQUIRE(shown);
  CHECK((*shown)["message"]["file"]["kind"] == "image");
  CHECK((*shown)["message"]["file"]["name"] == "صورة الهوية.png");
  CHECK((*shown)["message"]["client_id"] == "file-1");
  CHECK(shown->dump().find("\"id\":\"") == std::string::npos);  // no media id for the page
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 1);
  CHECK(db_value(e.db, "SELECT size FROM uploads") == static_cast<long long>(bytes.size()));
  const auto mid = db_value(e.db, "SELECT id FROM messages WHERE kind = 'media'");
  CHECK(db_text(e.db, "SELECT json_extract(payload, '$.media.mime') FROM messages WHERE id = " + std::to_string(mid)) == "image/png");

  // The page's resend after a lost answer: acknowledged, not stored twice.
  auto again = upload(e.port(), visitor, bytes, "file-1", "x.png");
  CHECK(again.status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE kind = 'media'") == 1);

  // A reload shows it in the history.
  chat_client later(e.port(), visitor);
  auto h = later.next_of_type("history");
  REQUIRE(h);
  CHECK(h->dump().find("صورة الهوية.png") != std::string::npos);

  // Staff fetch exactly those bytes, as a download, and the audit log says who.
  auto agent = add_staff(e.port(), login(e.port()), "huda", "agent", "هدى");
  auto got = api(e.port(), "GET", "/api/v1/messages/" + std::to_string(mid) + "/media", agent);
  REQUIRE_MESSAGE(got.status == 200, got.body);
  CHECK(got.body == bytes);
  CHECK(got.headers["content-type"] == "image/png");
  CHECK(got.headers["content-disposition"].find("attachment;") == 0);
  CHECK(got.headers["x-content-type-options"] == "nosniff");
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'media.download' AND target = 'message:" +
                           std::to_string(mid) + "' AND json_extract(detail, '$.result') = 'ok'") == 1);
}

TEST_CASE("webchat: uploads that are not a visitor's photo or PDF are refused and store nothing") {
  staff_env e(std::map<std::string, std::string>{{"AOUN_WEBCHAT_UPLOAD_MAX_BYTES", "4096"}, {"AOUN_BODY_LIMIT", "65536"}});
  const std::string visitor = consented_visitor(e.port());
  const auto messages = db_value(e.db, "SELECT count(*) FROM messages");
  CHECK(upload(e.port(), "", tiny_png()).status == 400);                       // no session
  CHECK(upload(e.port(), "not a session!", tiny_png()).status == 400);         // not an id's shape
  CHECK(upload(e.port(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", tiny_png()).status == 401);  // made up
  CHECK(upload(e.port(), visitor, "").status == 400);                                   // empty
  auto html = upload(e.port(), visitor, "<html><script>alert(1)</script></html>", "", "report.pdf");
  CHECK(html.status == 415);  // the bytes decide, not the name
  CHECK(as_json(html)["error"] == "unsupported_type");
  CHECK(upload(e.port(), visitor, tiny_png(), "bad id/../x").status == 400);  // client id
  auto big = upload(e.port(), visitor, tiny_png(5000));  // over the limit
  CHECK(big.status == 413);
  CHECK(as_json(big)["limit_bytes"] == 4096);
  // The router takes "//chat/upload/" for the same route: so does the body limit.
  auto slashes = upload(e.port(), visitor, tiny_png(5000), "", "", "", "//chat/upload/");
  CHECK(slashes.status == 413);
  CHECK(as_json(slashes)["limit_bytes"] == 4096);
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM messages") == messages);

  // A PDF named like a program is kept under a name that opens as what it is.
  auto pdf = upload(e.port(), visitor, "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<<>>\nendobj\n", "doc-1", "setup.exe");
  REQUIRE(pdf.status == 200);
  CHECK(db_text(e.db, "SELECT filename FROM uploads") == "setup.exe.pdf");
  CHECK(db_text(e.db, "SELECT kind FROM uploads") == "document");
}

TEST_CASE("webchat: at most four files are read at once, two from one client; places come free when they end") {
  staff_env e(std::map<std::string, std::string>{{"AOUN_TRUSTED_PROXIES", "127.0.0.1"}});
  const std::string visitor = consented_visitor(e.port());
  const std::string body = tiny_png(100);
  // An upload whose body is slow to come, from the client `from` (behind the trusted proxy).
  auto slow = [&](const std::string& from) {
    auto c = std::make_unique<raw_connection>(e.port());
    REQUIRE(c->send("POST /chat/upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Forwarded-For: " + from +
                    "\r\nX-Chat-Session: " + visitor + "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n\r\n" + body.substr(0, 10)));
    return c;
  };
  // What a client's next upload gets: an empty body is refused (400) once it has a place, with
  // nothing stored; without one it is told to come back (503).
  auto probe = [&](const std::string& from) { return upload(e.port(), visitor, "", "", "", from).status; };

  std::vector<std::unique_ptr<raw_connection>> held;
  held.push_back(slow("198.51.100.1"));
  held.push_back(slow("198.51.100.1"));
  REQUIRE(eventually([&] { return probe("198.51.100.1") == 503; }));  // two from one client at most
  CHECK(probe("198.51.100.2") == 400);                                 // others still get in
  held.push_back(slow("198.51.100.2"));
  held.push_back(slow("198.51.100.3"));
  REQUIRE(eventually([&] { return probe("198.51.100.4") == 503; }));  // four in all
  auto fifth = upload(e.port(), visitor, body, "fifth", "", "198.51.100.4");
  CHECK(fifth.status == 503);
  CHECK(as_json(fifth)["error"] == "unavailable");
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 0);

  // One finishes: its file is stored.
  REQUIRE(held[0]->send(body.substr(10)));
  CHECK(held[0]->read_all(std::chrono::seconds(5)).find("200 OK") != std::string::npos);
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 1);
  // The others give up. Every place comes back: four slow uploads at once all get through.
  held.clear();
  REQUIRE(eventually([&] { return probe("198.51.100.9") == 400; }));
  for (int i = 0; i < 4; ++i) held.push_back(slow("203.0.113." + std::to_string(i)));
  for (auto& c : held) {
    REQUIRE(c->send(body.substr(10)));
    CHECK(c->read_all(std::chrono::seconds(5)).find("200 OK") != std::string::npos);
  }
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 5);
}

TEST_CASE("webchat: an upload declared over the limit is answered 413 with the limit, before its body is read") {
  staff_env e;  // the default limit, 10 MiB
  const std::string visitor = consented_visitor(e.port());
  raw_connection c(e.port());
  REQUIRE(c.send("POST /chat/upload HTTP/1.1\r\nHost: x\r\nX-Chat-Session: " + visitor +
                 "\r\nContent-Length: " + std::to_string(11 * 1024 * 1024) + "\r\n\r\n" + tiny_png()));
  const auto answer = c.read_all(std::chrono::seconds(5));
  CHECK(answer.find("413 Payload Too Large") != std::string::npos);
  CHECK(answer.find("\"limit_bytes\":10485760") != std::string::npos);
}

TEST_CASE("webchat: staff ask a visitor for documents; the uploaded file joins the case; erasure deletes it") {
  staff_env e;
  chat_client c(e.port());
  REQUIRE(c.next_of_type("history"));
  c.send(text_msg("السلام عليكم", "hello-1"));
  REQUIRE(c.next_of_type("ack"));
  c.send(json{{"type", "choice"}, {"id", "consent.yes"}, {"client_id", "consent-1"}});
  REQUIRE(c.next_of_type("ack"));
  const std::string visitor = c.session;
  const auto cid = conversation_of(e.db, visitor);
  // A case of theirs (as the intake makes it; the intake over the web chat is tests/transcripts/30).
  db_exec(e.db, "INSERT INTO cases (reference, beneficiary_id, conversation_id, channel, full_name, national_id, mobile, "
                "city, service_type, description, created_at, updated_at) SELECT 'AWN-2026-000777', beneficiary_id, id, "
                "'webchat', 'نورة', '1757491186', '+966501234567', 'الرياض', 'legal', 'x', 1, 1 FROM conversations "
                "WHERE id = " + std::to_string(cid));
  auto agent = add_staff(e.port(), login(e.port()), "huda", "agent", "هدى");
  auto r = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/request-documents", agent,
               nlohmann::json{{"reference", "AWN-2026-000777"}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  auto asked = c.next([](const json& j) {
    return j.value("type", "") == "message" && j["message"].value("text", "").find("AWN-2026-000777") != std::string::npos;
  });
  REQUIRE_MESSAGE(asked, "the visitor was not asked for the documents");

  const std::string pdf = "%PDF-1.4\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n";
  REQUIRE(upload(e.port(), visitor, pdf, "doc-1", "police-report.pdf").status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM case_documents") == 1; }));
  const auto did = db_value(e.db, "SELECT id FROM case_documents");
  auto got = api(e.port(), "GET", "/api/v1/cases/AWN-2026-000777/documents/" + std::to_string(did) + "/media", agent);
  REQUIRE_MESSAGE(got.status == 200, got.body);
  CHECK(got.body == pdf);
  CHECK(got.headers["content-type"] == "application/pdf");
  CHECK(got.headers["content-disposition"].find("police-report.pdf") != std::string::npos);

  // "Delete my data": the file goes with the rest.
  const auto mid = db_value(e.db, "SELECT id FROM messages WHERE kind = 'media'");
  c.send(text_msg("احذف بياناتي", "erase-1"));
  REQUIRE(c.next_of_type("ack"));
  c.send(json{{"type", "choice"}, {"id", "erase.yes"}, {"client_id", "erase-2"}});
  REQUIRE(c.next_of_type("ack"));
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE erased_at IS NOT NULL") == 1; }));
  CHECK(db_value(e.db, "SELECT count(*) FROM uploads") == 0);
  CHECK(api(e.port(), "GET", "/api/v1/messages/" + std::to_string(mid) + "/media", agent).status == 404);
}

TEST_CASE("webchat: \"end on this device\" ends the id on the server: its pages are told and closed, and it opens nothing after") {
  staff_env e;
  const auto visitor = consented_visitor(e.port());
  chat_client a(e.port(), visitor);
  chat_client b(e.port(), visitor);  // another device holding a copy of the id
  REQUIRE(a.status == 101);
  REQUIRE(b.status == 101);
  REQUIRE(a.session == visitor);
  auto h = b.next_of_type("history");
  REQUIRE(h);
  REQUIRE_FALSE((*h)["messages"].empty());
  const auto stored = stored_messages(e.db);

  CHECK(http_call(e.port(), "POST", "/chat/end", "", {{"X-Chat-Session", "short"}}).status == 400);
  CHECK(http_call(e.port(), "POST", "/chat/end", "", {{"X-Chat-Session", visitor}}).status == 204);
  for (auto* c : {&a, &b}) {
    CHECK(c->next_of_type("ended"));
    CHECK(c->wait_closed());
  }
  // The id opens nothing now: a new one, with an empty history; no file is taken under it.
  chat_client again(e.port(), visitor);
  REQUIRE(again.status == 101);
  CHECK(again.session != visitor);
  auto fresh = again.next_of_type("history");
  REQUIRE(fresh);
  CHECK((*fresh)["messages"].empty());
  CHECK(upload(e.port(), visitor, tiny_png(), "after-end", "a.png").status == 401);
  // The conversation stays with the association: it is not an erasure.
  CHECK(stored_messages(e.db) == stored);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE channel = 'webchat' AND session_ended_at IS NOT NULL") == 1);
  // Ending it again changes nothing.
  CHECK(http_call(e.port(), "POST", "/chat/end", "", {{"X-Chat-Session", visitor}}).status == 204);
}

TEST_CASE("webchat: an id the server made is ended before anything is stored under it; it opens nothing after") {
  staff_env e;
  chat_client a(e.port());
  REQUIRE(a.status == 101);
  REQUIRE(a.next_of_type("history"));
  const std::string visitor = a.session;
  CHECK(http_call(e.port(), "POST", "/chat/end", "", {{"X-Chat-Session", visitor}}).status == 204);
  CHECK(a.next_of_type("ended"));
  CHECK(a.wait_closed());
  // Kept as ended, with nothing else: a copy of the id (another tab, a browser backup) opens a
  // new conversation, not this one, and no file is taken under it.
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE channel = 'webchat' AND address = '" + visitor +
                           "' AND session_ended_at IS NOT NULL") == 1);
  chat_client again(e.port(), visitor);
  REQUIRE(again.status == 101);
  CHECK(again.session != visitor);
  CHECK(upload(e.port(), visitor, tiny_png(), "after-end", "a.png").status == 401);
  // A made-up id is not ours to keep: nothing is recorded for it.
  CHECK(http_call(e.port(), "POST", "/chat/end", "", {{"X-Chat-Session", "made-up-session-id-1234"}}).status == 204);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = 'made-up-session-id-1234'") == 0);
  CHECK(stored_messages(e.db) == 0);
}

TEST_CASE("webchat: a first message still on its way when the visitor ends the session is not stored after the end") {
  staff_env e;
  chat_client a(e.port());
  REQUIRE(a.status == 101);
  REQUIRE(a.next_of_type("history"));
  const std::string visitor = a.session;
  // The writer is held (another process has the write lock), so the end's job waits at the head
  // of its queue and the message's job comes behind it: the order of a press of "end" that
  // overtakes the first message.
  write_lock lock(e.db);
  int ended = 0;
  std::thread end([&] { ended = http_call(e.port(), "POST", "/chat/end", "", {{"X-Chat-Session", visitor}}).status; });
  std::this_thread::sleep_for(std::chrono::seconds(2));  // (the writer's busy timeout is 5 s)
  a.send(text_msg("رقم هويتي 1757491186", "first-1"));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  lock.release();
  end.join();
  CHECK(ended == 204);
  CHECK(a.next_of_type("ended"));
  CHECK(a.wait_closed());
  CHECK(stored_messages(e.db) == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM conversations") == 0);
  chat_client again(e.port(), visitor);
  REQUIRE(again.status == 101);
  CHECK(again.session != visitor);
}
