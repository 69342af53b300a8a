// The spine over real HTTP: the `aoun` binary on a free port with a temporary database.
#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness/harness.hpp"

using namespace aoun::test;

TEST_CASE("healthz reports version and a reachable database") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db");
  auto r = http_call(srv.port(), "GET", "/healthz");
  CHECK(r.status == 200);
  auto j = nlohmann::json::parse(r.body);
  CHECK(j["status"] == "ok");
  CHECK(j["database"]["reachable"] == true);
  CHECK(j["version"] == "0.1.0");
  CHECK(!r.headers["x-request-id"].empty());
}

TEST_CASE("metrics are Prometheus text with requests by route and the commit histogram") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db");
  http_call(srv.port(), "GET", "/healthz");
  http_call(srv.port(), "GET", "/nowhere");
  auto r = http_call(srv.port(), "GET", "/metrics");
  CHECK(r.status == 200);
  CHECK(r.headers["content-type"].find("text/plain") == 0);
  CHECK(r.body.find("aoun_http_requests_total{route=\"/healthz\",status=\"200\"} 1") != std::string::npos);
  CHECK(r.body.find("aoun_http_requests_total{route=\"not_found\",status=\"404\"} 1") != std::string::npos);
  CHECK(r.body.find("aoun_http_request_duration_seconds_bucket{le=\"+Inf\"}") != std::string::npos);
  CHECK(r.body.find("aoun_db_commit_seconds_count") != std::string::npos);
  CHECK(r.body.find("aoun_db_batch_size_bucket") != std::string::npos);
  // The migrations were committed through the WAL, and nothing has asked it to start over yet.
  CHECK(r.body.find("\naoun_db_wal_resets_total 0\n") != std::string::npos);
  auto gauge = r.body.find("\naoun_db_wal_frames ");
  REQUIRE(gauge != std::string::npos);
  CHECK(std::stoi(r.body.substr(gauge + std::strlen("\naoun_db_wal_frames "))) > 0);
}

TEST_CASE("bad requests get a clear status and the server keeps serving") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db", {{"AOUN_BODY_LIMIT", "4096"}});

  SUBCASE("unknown route is 404 with a JSON error") {
    auto r = http_call(srv.port(), "GET", "/no/such/thing");
    CHECK(r.status == 404);
    CHECK(nlohmann::json::parse(r.body)["error"] == "not_found");
  }
  SUBCASE("wrong method is 405 with Allow") {
    auto r = http_call(srv.port(), "DELETE", "/healthz");
    CHECK(r.status == 405);
    CHECK(r.headers["allow"] == "GET, HEAD");
    CHECK(nlohmann::json::parse(r.body)["error"] == "bad_method");
  }
  SUBCASE("a body over the limit is 413") {
    auto r = http_call(srv.port(), "POST", "/api/v1/auth/login", std::string(5000, 'x'));
    CHECK(r.status == 413);
    CHECK(nlohmann::json::parse(r.body)["error"] == "too_large");
    // chunked, with no length announced: counted as it comes
    auto out = raw_call(srv.port(), "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "1388\r\n" + std::string(5000, 'x') + "\r\n0\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
    // The WhatsApp webhook's 3 MiB (below) is for a server with WhatsApp on: off, its route
    // takes what any other does.
    r = http_call(srv.port(), "POST", "/webhooks/whatsapp", std::string(5000, 'x'));
    CHECK(r.status == 413);
    out = raw_call(srv.port(), "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
  }
  SUBCASE("a malformed request line is 400") {
    auto out = raw_call(srv.port(), "GARBAGE\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
    out = raw_call(srv.port(), "GET /healthz HTTP/9.9\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
    out = raw_call(srv.port(), "GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
  }
  SUBCASE("HEAD is answered wherever GET is, without a body") {
    auto out = raw_call(srv.port(), "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 200", 0) == 0);
    CHECK(out.substr(out.find("\r\n\r\n") + 4).empty());
    // Not on the API, whose GETs may do things a HEAD must not (fetch a file, audit a download).
    CHECK(raw_call(srv.port(), "HEAD /api/v1/conversations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
              .rfind("HTTP/1.1 405", 0) == 0);
  }
  SUBCASE("a chunk size line or trailers that never end are refused, not buffered") {
    // Beast counts neither against the header or body limits: without a cap on the read
    // buffer, the server would hold every byte of these until the body deadline.
    const std::string endless(256 * 1024, 'x');
    auto out = raw_call(srv.port(), "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;" + endless);
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
    out = raw_call(srv.port(), "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + endless);
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
  }
  SUBCASE("a Transfer-Encoding that does not end with chunked is 400, and its body is not taken for a request") {
    auto out = raw_call(srv.port(), "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
                                    "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(out.rfind("HTTP/1.1 400", 0) == 0);
    CHECK(out.find("aoun_http_requests_total") == std::string::npos);
  }
  SUBCASE("binary junk does not crash the server") {
    std::string junk;
    for (int i = 0; i < 2000; ++i) junk += static_cast<char>((i * 7919) % 256);
    raw_call(srv.port(), junk, std::chrono::milliseconds(500));
  }
  // Whatever came before, the server still answers.
  CHECK(http_call(srv.port(), "GET", "/healthz").status == 200);
  CHECK(srv.running());
}

TEST_CASE("keep-alive serves several requests on one connection") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db");
  std::string two =
      "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto out = raw_call(srv.port(), two);
  std::size_t first = out.find("HTTP/1.1 200");
  REQUIRE(first != std::string::npos);
  CHECK(out.find("HTTP/1.1 200", first + 1) != std::string::npos);
}

TEST_CASE("SIGTERM on a busy server finishes in-flight requests and exits 0") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db");
  // Load: clients hammering the server while it is told to stop.
  std::atomic<bool> go{true};
  std::atomic<int> ok{0}, bad_status{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i)
    clients.emplace_back([&] {
      while (go) {
        auto r = http_call(srv.port(), "GET", "/healthz");
        if (r.status == 200)
          ++ok;
        else if (r.status != 0)  // 0: refused after the listener closed, which is expected
          ++bad_status;
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  // One request is in flight mid-body when the signal arrives: it must still be answered,
  // with Connection: close. An idle keep-alive connection is closed without a response.
  raw_connection inflight(srv.port());
  REQUIRE(inflight.send("POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345"));
  raw_connection idle(srv.port());
  REQUIRE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::thread stopper([&] { CHECK(srv.stop(SIGTERM) == 0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(inflight.send("67890"));
  auto answer = inflight.read_all(std::chrono::seconds(10));
  CHECK(answer.rfind("HTTP/1.1 404", 0) == 0);
  CHECK(answer.find("Connection: close") != std::string::npos);
  auto idle_answer = idle.read_all(std::chrono::seconds(10));
  CHECK(idle_answer.rfind("HTTP/1.1 200", 0) == 0);  // its one request was answered before the signal
  stopper.join();
  go = false;
  for (auto& t : clients) t.join();
  CHECK(ok > 0);
  CHECK(bad_status == 0);
}

TEST_CASE("pages: the console and the chat page are served; AOUN_WEBCHAT=0 turns off the chat only") {
  const std::string upgrade =
      "GET /chat/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  auto status_line = [](const std::string& answer) { return answer.substr(0, answer.find("\r\n")); };
  temp_dir dir;
  {
    server_process srv(dir.path + "/on.db");
    auto page = http_call(srv.port(), "GET", "/console/");
    CHECK(page.status == 200);
    // Never inside another site's frame (clickjacking of a signed-in member of staff).
    CHECK(page.headers["content-security-policy"].find("frame-ancestors 'none'") != std::string::npos);
    CHECK(page.headers["x-frame-options"] == "DENY");
    // One spelling per file: other spellings of a path are 404, so they cannot each fill the
    // file cache with another copy.
    CHECK(http_call(srv.port(), "GET", "/console/app.js").status == 200);
    for (const char* other : {"/console//app.js", "/console/./app.js", "/console/.//app.js", "/console/x/../app.js"})
      CHECK_MESSAGE(http_call(srv.port(), "GET", other).status == 404, other);
    auto chat = http_call(srv.port(), "GET", "/chat/");
    CHECK(chat.status == 200);
    // Without its slash the page would load none of its files (named relative to the folder):
    // sent to the folder instead, as the console is.
    for (const char* bare : {"/chat", "/console"}) {
      auto moved = http_call(srv.port(), "GET", bare);
      CHECK_MESSAGE(moved.status == 308, bare);
      CHECK_MESSAGE(moved.headers["location"] == std::string(bare) + "/", bare);
    }
    CHECK(chat.body.find("dir=\"rtl\"") != std::string::npos);
    CHECK(status_line(raw_call(srv.port(), upgrade, std::chrono::milliseconds(500))) == "HTTP/1.1 101 Switching Protocols");
  }
  server_process srv(dir.path + "/off.db", {{"AOUN_WEBCHAT", "0"}});
  auto console = http_call(srv.port(), "GET", "/console/");
  CHECK(console.status == 200);
  CHECK(console.body.find("<html") != std::string::npos);
  CHECK(http_call(srv.port(), "GET", "/chat/").status == 404);
  CHECK(status_line(raw_call(srv.port(), upgrade, std::chrono::milliseconds(500))) == "HTTP/1.1 404 Not Found");
}

TEST_CASE("one client holds at most AOUN_MAX_CONNECTIONS_PER_ADDRESS connections; a closed one frees its place") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db", {{"AOUN_MAX_CONNECTIONS_PER_ADDRESS", "3"}});
  // Three connections that send nothing (each would be kept for the header timeout).
  std::vector<std::unique_ptr<raw_connection>> held;
  for (int i = 0; i < 3; ++i) held.push_back(std::make_unique<raw_connection>(srv.port()));
  for (auto& c : held) REQUIRE(c->connected());
  // The fourth from the same address is closed at once, unread.
  {
    raw_connection extra(srv.port());
    extra.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(extra.read_all(std::chrono::seconds(2)).empty());
  }
  // One of the three leaves: its place is free again.
  held.pop_back();
  CHECK(eventually([&] { return http_call(srv.port(), "GET", "/healthz").status == 200; }));
  CHECK(eventually([&] {
    auto m = http_call(srv.port(), "GET", "/metrics");
    return m.status == 200 && m.body.find("aoun_http_connections_refused_total ") != std::string::npos;
  }));
  CHECK(srv.running());
}

TEST_CASE("a log nobody reads any more (a pipe whose reader exited) does not kill the server") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db", {{"<stderr>", "closed pipe"}});
  // Every request writes a log line, into a pipe with no reader: EPIPE, and SIGPIPE unless ignored.
  for (int i = 0; i < 5; ++i) CHECK(http_call(srv.port(), "GET", "/healthz").status == 200);
  CHECK(http_call(srv.port(), "GET", "/no-such-page").status == 404);
  CHECK(srv.running());
  CHECK(srv.stop() == 0);  // and it still stops gracefully
}

TEST_CASE("healthz says so when writes fail while reads work (a lock another process holds), and recovers") {
  temp_dir dir;
  server_process srv(dir.path + "/aoun.db");
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open((dir.path + "/aoun.db").c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  // A sign-in writes its audit row: it waits out the busy timeout and fails.
  auto login = http_call(srv.port(), "POST", "/api/v1/auth/login", R"({"username":"admin","password":"admin-password-1"})");
  CHECK(login.status == 503);
  auto down = http_call(srv.port(), "GET", "/healthz");
  CHECK(down.status == 503);
  auto j = nlohmann::json::parse(down.body);
  CHECK(j["status"] == "degraded");
  CHECK(j["database"]["reachable"] == true);
  CHECK(j["database"]["writable"] == false);
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  auto up = http_call(srv.port(), "GET", "/healthz");
  CHECK(up.status == 200);
  CHECK(nlohmann::json::parse(up.body)["database"]["writable"] == true);
  CHECK(http_call(srv.port(), "GET", "/healthz").status == 200);
}

TEST_CASE("request bodies: WhatsApp's 3 MiB when it is on, and a budget for all bodies held at once") {
  temp_dir dir;
  std::map<std::string, std::string> env{{"AOUN_BODY_LIMIT", "4096"},
                                         {"AOUN_BODIES_IN_FLIGHT_BYTES", "16777216"},  // 16 MiB; 4 MiB a client
                                         {"AOUN_TRUSTED_PROXIES", "127.0.0.1"},
                                         {"AOUN_WHATSAPP_VERIFY_TOKEN", "verify-me"},
                                         {"AOUN_WHATSAPP_APP_SECRET", "app-secret"},
                                         {"AOUN_WHATSAPP_TOKEN", "graph-token"},
                                         {"AOUN_WHATSAPP_PHONE_NUMBER_ID", "106540352242922"},
                                         {"AOUN_WHATSAPP_API_BASE", "http://127.0.0.1:9/v21.0"}};
  server_process srv(dir.path + "/aoun.db", env);
  // Meta's batches may reach 3 MB: the WhatsApp webhook takes up to 3 MiB whatever the limit
  // (this one's signature is wrong: 401, read whole).
  CHECK(http_call(srv.port(), "POST", "/webhooks/whatsapp", std::string(5000, 'x')).status == 401);
  // (announced only: the answer comes as the header ends, before a body is sent)
  auto out = raw_call(srv.port(), "POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nContent-Length: 3145729\r\n\r\n");
  CHECK(out.rfind("HTTP/1.1 413", 0) == 0);
  // Clients (named by the trusted proxy) that announce 3 MB and send it slowly: each holds its
  // share of the budget while it does.
  const auto head = [](const std::string& client) {
    return "POST /webhooks/whatsapp HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " + client +
           "\r\nContent-Length: 3000000\r\n\r\n";
  };
  std::vector<std::unique_ptr<raw_connection>> slow;
  for (int i = 1; i <= 5; ++i) {
    slow.push_back(std::make_unique<raw_connection>(srv.port()));
    REQUIRE(slow.back()->send(head("203.0.113." + std::to_string(i)) + std::string(1000, 'x')));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Five are 15 MB of the 16 MiB: one more from a sixth client does not fit (503 with
  // Retry-After, before its body is read) ...
  out = raw_call(srv.port(), head("203.0.113.6"));
  CHECK(out.rfind("HTTP/1.1 503", 0) == 0);
  CHECK(out.find("Retry-After: 1") != std::string::npos);
  // ... nor a second from one of them, past its quarter of the budget, whatever the total.
  slow.pop_back();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(raw_call(srv.port(), head("203.0.113.1")).rfind("HTTP/1.1 503", 0) == 0);
  // A small body still fits, and the server serves what has no body at all.
  CHECK(http_call(srv.port(), "POST", "/webhooks/whatsapp", std::string(5000, 'x')).status == 401);
  CHECK(http_call(srv.port(), "GET", "/healthz").status == 200);
  // The slow ones gone, their shares are back.
  slow.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(http_call(srv.port(), "POST", "/webhooks/whatsapp", std::string(3 * 1000 * 1000, 'x')).status == 401);
}
