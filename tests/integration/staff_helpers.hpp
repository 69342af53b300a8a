#pragma once
// Helpers for the staff API integration tests (tests/integration/staff_*_test.cpp): a server
// with the channels pointed at fake providers, signed-in API calls, a WebSocket client for
// /api/v1/stream, and a second writer on the database file (to move time for the 24-hour rule).
#include <sqlite3.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "channels_helpers.hpp"

namespace aoun::test {

using env_vars = std::map<std::string, std::string>;

/// The server's database write-locked by another process (BEGIN IMMEDIATE) until release():
/// the server's writes wait its busy timeout (5 s), then fail.
struct write_lock {
  sqlite3* db = nullptr;
  explicit write_lock(const std::string& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  void release() {
    if (!db) return;
    CHECK(sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
    db = nullptr;
  }
  ~write_lock() { release(); }
};

/// A server whose working hours cover every day, unless `extra` says otherwise.
struct staff_env {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  std::string db = dir.path + "/aoun.db";
  std::map<std::string, std::string> vars;
  std::unique_ptr<server_process> srv;
  explicit staff_env(std::map<std::string, std::string> extra = {}) {
    vars = channel_env(graph, tg, twilio);
    vars["AOUN_WORKING_HOURS"] = "0-6 00:00-24:00";
    for (auto& [k, v] : extra) vars[k] = v;
    srv = std::make_unique<server_process>(db, vars);
  }
  unsigned short port() const { return srv->port(); }
  /// Graceful stop (must exit 0), then a new process on the same database and environment.
  int restart() {
    int rc = srv->stop(15);
    srv = std::make_unique<server_process>(db, vars);
    return rc;
  }
};

inline nlohmann::json as_json(const http_result& r) {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

/// The conversation with `id` in a GET /api/v1/conversations answer; null if it is not there.
inline nlohmann::json find_conversation(const nlohmann::json& list, long long id) {
  for (auto& c : list["conversations"])
    if (c["id"] == id) return c;
  return nullptr;
}

inline http_result api(unsigned short port, const std::string& method, const std::string& target,
                       const std::string& token, const std::string& body = {}) {
  std::map<std::string, std::string> h;
  if (!token.empty()) h["Authorization"] = "Bearer " + token;
  return http_call(port, method, target, body, h);
}
inline http_result api(unsigned short port, const std::string& method, const std::string& target,
                       const std::string& token, const nlohmann::json& body) {
  return api(port, method, target, token, body.dump());
}

inline http_result login_call(unsigned short port, const std::string& user, const std::string& pw) {
  return http_call(port, "POST", "/api/v1/auth/login", nlohmann::json{{"username", user}, {"password", pw}}.dump());
}

/// Signs in and returns the token (fails the test otherwise).
inline std::string login(unsigned short port, const std::string& user = "admin",
                         const std::string& pw = "admin-password-1") {
  auto r = login_call(port, user, pw);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  return as_json(r)["token"].get<std::string>();
}

/// Creates a staff account as admin and returns its token.
inline std::string add_staff(unsigned short port, const std::string& admin_token, const std::string& user,
                             const std::string& role, const std::string& display_name) {
  auto r = api(port, "POST", "/api/v1/staff", admin_token,
               nlohmann::json{{"username", user}, {"password", user + "-password-1"}, {"role", role},
                              {"display_name", display_name}});
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return login(port, user, user + "-password-1");
}

/// A beneficiary on WhatsApp: unique message ids, each webhook must be answered 200.
struct wa_user {
  unsigned short port;
  std::string from;
  int n = 0;
  std::string next_id() { return "wamid." + from + "." + std::to_string(++n); }
  void text(const std::string& t) {
    auto r = post_wa(port, wa_text(from, next_id(), t));
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  void button(const std::string& id, const std::string& title) {
    auto r = post_wa(port, wa_button(from, next_id(), id, title));
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
  void image() {
    auto j = nlohmann::json::parse(fixture("whatsapp_image.json"));
    auto& v = j["entry"][0]["changes"][0]["value"];
    v["contacts"][0]["wa_id"] = from;
    v["messages"][0]["from"] = from;
    v["messages"][0]["id"] = next_id();
    v["messages"][0]["timestamp"] = wa_now();
    auto r = post_wa(port, j.dump());
    REQUIRE_MESSAGE(r.status == 200, r.body);
  }
};

/// The whole help-request intake of tests/transcripts/01 (Nora, national ID 1757491186, Riyadh,
/// legal advice), confirmed: the case exists afterwards.
inline void walk_intake(wa_user& b) {
  b.text("السلام عليكم");
  b.button("consent.yes", "أوافق");
  b.text("١");
  b.text("نورة محمد السبيعي");
  b.text("١٧٥٧٤٩١١٨٦");
  b.text("نعم");
  b.text("الرياض");
  b.button("service.legal", "استشارة قانونية");
  b.text("سرقوا سيارتي من أمام البيت وأحتاج استشارة");
  b.button("docs.skip", "تخطي");
  b.button("intake.confirm", "تأكيد");
}

/// Whether some message sent to `to` through the fake Graph API contains `part`.
inline bool wa_sent_containing(fake_provider& graph, const std::string& to, const std::string& part) {
  for (auto& s : wa_sends(graph, to))
    if (wa_body(s).find(part) != std::string::npos) return true;
  return false;
}

/// The conversation id of a beneficiary address (from the database).
inline long long conversation_of(const std::string& db, const std::string& address) {
  return db_value(db, "SELECT c.id FROM conversations c JOIN beneficiaries b ON b.id = c.beneficiary_id "
                      "WHERE b.address = '" + address + "'");
}

/// A second writer on the live database (WAL, busy timeout): only to move a timestamp back.
inline void db_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE_MESSAGE(rc == SQLITE_OK, msg);
}

/// The text of a locale entry ("survey.overall"), joined like the engine joins lines.
inline std::string locale_text(const std::string& lang, const std::string& dotted) {
  auto j = nlohmann::json::parse(read_file(std::string(AOUN_SOURCE_DIR) + "/locales/" + lang + ".json"))["texts"];
  std::size_t pos = 0;
  while (pos <= dotted.size()) {
    auto dot = dotted.find('.', pos);
    j = j[dotted.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos)];
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  if (j.is_array()) {
    std::string out;
    for (auto& l : j) out += (out.empty() ? "" : "\n") + l.get<std::string>();
    return out;
  }
  return j.get<std::string>();
}

/// locale_text with its placeholders filled: {"reference", "AWN-…"} for "{reference}".
inline std::string locale_text(const std::string& lang, const std::string& dotted,
                               const std::map<std::string, std::string>& vars) {
  std::string out = locale_text(lang, dotted);
  for (const auto& [name, value] : vars)
    for (auto at = out.find("{" + name + "}"); at != std::string::npos; at = out.find("{" + name + "}", at + value.size()))
      out.replace(at, name.size() + 2, value);
  return out;
}

/// A WebSocket client on /api/v1/stream: a thread reads frames into a list.
class stream_client {
 public:
  /// Connects; `status` is 101 on success or the HTTP status of a refused upgrade.
  /// `protocols`, if set, goes as Sec-WebSocket-Protocol (as web/console/stream.js sends it);
  /// `chosen` is then the server's answer.
  stream_client(unsigned short port, const std::string& target, const std::string& bearer = {},
                const std::string& protocols = {}) {
    namespace beast = boost::beast;
    namespace websocket = beast::websocket;
    boost::asio::ip::tcp::resolver res(ioc_);
    beast::get_lowest_layer(ws_).connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    websocket::response_type resp;
    ws_.set_option(websocket::stream_base::decorator([bearer, protocols](websocket::request_type& req) {
      if (!bearer.empty()) req.set(beast::http::field::authorization, "Bearer " + bearer);
      if (!protocols.empty()) req.set(beast::http::field::sec_websocket_protocol, protocols);
    }));
    boost::system::error_code ec;
    ws_.handshake(resp, "127.0.0.1", target, ec);
    status = ec ? resp.result_int() : 101;
    chosen = std::string(resp[beast::http::field::sec_websocket_protocol]);
    if (ec) return;
    reader_ = std::thread([this] {
      for (;;) {
        beast::flat_buffer buf;
        boost::system::error_code rec;
        ws_.read(buf, rec);
        if (rec) break;
        std::lock_guard lock(mutex_);
        frames_.push_back(beast::buffers_to_string(buf.data()));
      }
      closed_ = true;
    });
  }
  ~stream_client() {
    boost::system::error_code ec;
    boost::beast::get_lowest_layer(ws_).socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    if (reader_.joinable()) reader_.join();
  }
  int status = 0;
  std::string chosen;  ///< the subprotocol the server chose (Sec-WebSocket-Protocol of its answer)
  bool closed() const { return closed_; }
  std::vector<nlohmann::json> events() {
    std::lock_guard lock(mutex_);
    std::vector<nlohmann::json> out;
    for (auto& f : frames_) out.push_back(nlohmann::json::parse(f, nullptr, false));
    return out;
  }
  /// Waits for an event matching `pred`.
  bool wait_for(const std::function<bool(const nlohmann::json&)>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return eventually(
        [&] {
          for (auto& e : events())
            if (pred(e)) return true;
          return false;
        },
        timeout);
  }

 private:
  boost::asio::io_context ioc_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_{ioc_};
  std::thread reader_;
  std::mutex mutex_;
  std::vector<std::string> frames_;
  std::atomic<bool> closed_{false};
};

}  // namespace aoun::test
