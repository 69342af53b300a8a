// The outbox under provider trouble and across a crash.
#include <doctest/doctest.h>
#include <signal.h>

#include <future>
#include <mutex>
#include <set>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {

/// The texts the fake Graph API received for `to`, in order.
std::vector<std::string> wa_texts_to(staff_env& e, const std::string& to) {
  std::vector<std::string> got;
  for (auto& j : wa_sends(e.graph, to)) got.push_back(wa_body(j));
  return got;
}

/// Row `first` (sent, then sent again) followed by all `rows` outbox rows in order: what the
/// beneficiary gets when one send was repeated.
std::vector<std::string> resent_then_all(staff_env& e, long long first, long long rows) {
  std::vector<std::string> want;
  want.push_back(db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox WHERE id = " + std::to_string(first)));
  for (long long k = 0; k < rows; ++k)
    want.push_back(db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox ORDER BY id LIMIT 1 OFFSET " +
                                     std::to_string(k)));
  return want;
}

}  // namespace

namespace {
/// A database with the schema and nothing else: a server started and stopped on it, so that a
/// test can write rows (a backlog, a damaged row) before the server it watches starts.
void make_schema(const std::string& db, const std::map<std::string, std::string>& env) {
  server_process first(db, env);
  REQUIRE(first.stop() == 0);
}
}  // namespace

TEST_CASE("provider outage: 500s, then 429 with retry-after, then recovery — each reply once, in order per recipient") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  // The first 6 sends fail with 500, the next 2 with 429 + Retry-After: 1, then all succeed.
  std::atomic<int> calls{0};
  graph.set_default([&](const recorded_request&) {
    int n = ++calls;
    if (n <= 6) return scripted_response{500, R"({"error":{"message":"unavailable","code":2}})"};
    if (n <= 8)
      return scripted_response{429, R"({"error":{"message":"rate","code":130429}})", "application/json", {{"Retry-After", "1"}}};
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.out.)" + std::to_string(n) + R"("}]})"};
  });
  std::string db = dir.path + "/aoun.db";
  server_process srv(db, channel_env(graph, tg, twilio));
  const std::vector<std::string> users = {"966511111111", "966522222222", "966533333333"};
  int n = 0;
  for (int round = 0; round < 2; ++round)
    for (auto& u : users) CHECK(post_wa(srv.port(), wa_text(u, "wamid.O" + std::to_string(++n), "مرحبا")).status == 200);
  auto expected = db_value(db, "SELECT count(*) FROM outbox");
  REQUIRE(expected > 0);
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == expected; },
                     std::chrono::seconds(30)));
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE state = 'dead'") == 0);
  // Successful deliveries: exactly one per outbox row, and for each recipient in outbox order.
  std::map<std::string, std::vector<std::string>> delivered;  // recipient -> bodies in arrival order
  int ok_calls = 0;
  auto reqs = graph.requests();
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    if (static_cast<int>(i) < 8) continue;  // the failed attempts
    auto j = json::parse(reqs[i].body);
    delivered[j["to"]].push_back(wa_body(j));
    ++ok_calls;
  }
  CHECK(ok_calls == expected);
  // A 500 or a 429 is an answer: the provider did not take the message, so a resend is no
  // duplicate and nothing is flagged.
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'") == 0);
  for (auto& u : users) {
    std::vector<std::string> want;
    int rows = static_cast<int>(db_value(db, "SELECT count(*) FROM outbox WHERE recipient = '" + u + "'"));
    for (int k = 0; k < rows; ++k)
      want.push_back(db_text(db, "SELECT json_extract(payload, '$.text') FROM outbox WHERE recipient = '" + u +
                                     "' ORDER BY id LIMIT 1 OFFSET " + std::to_string(k)));
    CHECK(delivered[u] == want);
  }
}

TEST_CASE("dead letter: a message the provider keeps refusing stops after the last attempt and can be revived") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  graph.set_default([](const recorded_request&) { return scripted_response{503, "{}"}; });
  auto env = channel_env(graph, tg, twilio);
  env["AOUN_OUTBOX_MAX_ATTEMPTS"] = "3";
  std::string db = dir.path + "/aoun.db";
  server_process srv(db, env);
  CHECK(post_wa(srv.port(), wa_text("966544444444", "wamid.DL1", "hi")).status == 200);
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'dead'") >= 1; },
                     std::chrono::seconds(20)));
  CHECK(db_value(db, "SELECT max(attempts) FROM outbox") == 3);
  // Every row ends dead after its third attempt, and nothing more is tried.
  const auto rows = db_value(db, "SELECT count(*) FROM outbox");
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'dead'") == rows; },
                     std::chrono::seconds(30)));
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE attempts <> 3") == 0);
  const auto tried = graph.requests().size();
  CHECK(tried == static_cast<std::size_t>(3 * rows));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // more than the backoffs so far
  CHECK(graph.requests().size() == tried);
  // A supervisor revives the first; the provider is back: it goes, once.
  graph.set_default([](const recorded_request&) {
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.revived"}]})"};
  });
  auto admin = login(srv.port());
  auto sup = add_staff(srv.port(), admin, "sara", "supervisor", "Sara");
  const auto first = db_value(db, "SELECT min(id) FROM outbox");
  auto r = api(srv.port(), "POST", "/api/v1/outbox/" + std::to_string(first) + "/retry", sup);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE(eventually([&] { return db_text(db, "SELECT state FROM outbox WHERE id = " + std::to_string(first)) == "sent"; }));
  CHECK(graph.requests().size() == tried + 1);
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE state = 'dead'") == rows - 1);
}

TEST_CASE("crash: kill -9 after a burst of acknowledged webhooks loses nothing") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  // The provider is slow, so that replies are still queued or in flight at the kill.
  graph.set_default([](const recorded_request&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.out"}]})"};
  });
  std::string db = dir.path + "/aoun.db";
  auto env = channel_env(graph, tg, twilio);
  env["AOUN_WHATSAPP_RATE"] = "20";
  auto srv = std::make_unique<server_process>(db, env);
  std::set<std::string> acked;
  for (int i = 0; i < 40; ++i) {
    auto wamid = "wamid.K" + std::to_string(i);
    if (post_wa(srv->port(), wa_text("9665" + std::to_string(10000000 + i % 8), wamid, "مرحبا")).status == 200)
      acked.insert(wamid);
  }
  CHECK(acked.size() == 40);
  srv->kill9();
  auto replies = db_value(db, "SELECT count(*) FROM outbox");
  auto sent_before = db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'");
  CAPTURE(replies);
  CAPTURE(sent_before);
  CHECK(sent_before < replies);  // the kill really interrupted the outbox
  // Every acknowledged message is stored.
  for (auto& w : acked) CHECK(db_value(db, "SELECT count(*) FROM messages WHERE provider_id = '" + w + "'") == 1);
  auto deliveries_before = graph.requests().size();

  srv = std::make_unique<server_process>(db, env);
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == replies; },
                     std::chrono::seconds(60)));
  // Each reply reached the provider at least once; a duplicate is possible only for a row that
  // was in flight at the kill, and those are flagged "uncertain".
  auto total = static_cast<long long>(graph.requests().size());
  auto uncertain = db_value(db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'");
  CHECK(total >= replies);
  CHECK(total - replies <= uncertain);
  CHECK(static_cast<long long>(deliveries_before) < total);  // the restart sent what the kill left
  // ... and in order per recipient: what each received is their rows in id order, where a row
  // flagged uncertain may come twice in a row (sent before the kill, and again after it).
  for (int r = 0; r < 8; ++r) {
    const std::string to = "9665" + std::to_string(10000000 + r);
    CAPTURE(to);
    std::vector<std::string> got;
    for (auto& j : wa_sends(graph, to)) got.push_back(wa_body(j));
    std::vector<std::pair<std::string, bool>> rows;  // text, uncertain
    for (long long k = 0;; ++k) {
      const std::string at = "FROM outbox WHERE recipient = '" + to + "' ORDER BY id LIMIT 1 OFFSET " + std::to_string(k);
      if (db_value(db, "SELECT count(*) FROM (SELECT 1 " + at + ")") == 0) break;
      rows.emplace_back(db_text(db, "SELECT coalesce(json_extract(payload, '$.text'), '') " + at),
                        db_value(db, "SELECT last_error LIKE 'uncertain%' " + at) == 1);
    }
    REQUIRE(!rows.empty());
    std::size_t i = 0;
    std::vector<bool> again(rows.size(), false);
    bool in_order = true;
    for (const auto& text : got) {
      if (i < rows.size() && text == rows[i].first) {
        ++i;
      } else if (i > 0 && rows[i - 1].second && !again[i - 1] && text == rows[i - 1].first) {
        again[i - 1] = true;
      } else {
        in_order = false;
        break;
      }
    }
    CHECK(in_order);
    CHECK(i == rows.size());
  }
  // Retries of the acknowledged webhooks are still duplicates after the restart.
  CHECK(post_wa(srv->port(), wa_text("966510000000", "wamid.K0", "مرحبا")).status == 200);
  CHECK(db_value(db, "SELECT count(*) FROM messages WHERE provider_id = 'wamid.K0'") == 1);
}

namespace {
long long db_jobs(unsigned short port) {
  auto r = http_call(port, "GET", "/metrics");
  auto at = r.body.find("\naoun_db_jobs_total ");
  REQUIRE(at != std::string::npos);
  return std::stoll(r.body.substr(at + 20));
}
}  // namespace

TEST_CASE("a reply queued behind one in flight waits for it without busying the worker") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  // The provider holds every send until the test releases it.
  std::atomic<bool> started{false}, release{false};
  std::atomic<int> calls{0};
  graph.set_default([&](const recorded_request&) {
    int n = ++calls;
    started = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.slow.)" + std::to_string(n) + R"("}]})"};
  });
  std::string db = dir.path + "/aoun.db";
  server_process srv(db, channel_env(graph, tg, twilio));
  const std::string u = "966555555555";
  REQUIRE(post_wa(srv.port(), wa_text(u, "wamid.Q1", "مرحبا")).status == 200);
  REQUIRE(eventually([&] { return started.load(); }));  // the first reply is in flight
  REQUIRE(post_wa(srv.port(), wa_text(u, "wamid.Q2", "مرحبا")).status == 200);
  CAPTURE(db_text(db, "SELECT group_concat(id || ':' || state, ' ') FROM outbox"));
  REQUIRE(db_value(db, "SELECT count(*) FROM outbox WHERE state = 'pending'") >= 1);  // behind it
  // While it waits, the worker has nothing to do: no claim after claim against the database.
  auto before = db_jobs(srv.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  auto during = db_jobs(srv.port()) - before;
  CAPTURE(during);
  CHECK(during <= 3);
  // Then it goes, in order, once each.
  release = true;
  auto expected = db_value(db, "SELECT count(*) FROM outbox");
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == expected; }));
  CHECK(static_cast<long long>(graph.requests().size()) == expected);
  std::vector<std::string> want, got;
  for (long long k = 0; k < expected; ++k)
    want.push_back(db_text(db, "SELECT json_extract(payload, '$.text') FROM outbox ORDER BY id LIMIT 1 OFFSET " +
                                   std::to_string(k)));
  for (auto& j : wa_sends(graph, u)) got.push_back(wa_body(j));
  CHECK(got == want);
}

TEST_CASE("a send left without an answer is sent again, flagged uncertain, and staff can list it") {
  // The provider takes the first request and answers only after our timeout: it may have sent
  // the message, so the resend may be a duplicate. It must still go (nothing lost), flagged.
  std::atomic<int> calls{0};
  staff_env e(env_vars{{"AOUN_SEND_TIMEOUT_MS", "300"}, {"AOUN_OUTBOX_BACKOFF_MS", "20"}});
  e.graph.set_default([&](const recorded_request&) {
    int n = ++calls;
    scripted_response r{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.slow.)" + std::to_string(n) + R"("}]})"};
    if (n == 1) r.delay = std::chrono::milliseconds(900);
    return r;
  });
  const std::string u = "966500000301";
  REQUIRE(post_wa(e.port(), wa_text(u, "wamid.U1", "مرحبا")).status == 200);
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(rows >= 1);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; }));
  const auto first = db_value(e.db, "SELECT min(id) FROM outbox");
  CHECK(db_text(e.db, "SELECT last_error FROM outbox WHERE id = " + std::to_string(first))
            .rfind("uncertain: no answer after the request was sent", 0) == 0);
  // Only the row whose answer never came is flagged; the provider saw it twice, the rest once.
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'") == 1);
  CHECK(static_cast<long long>(e.graph.requests().size()) == rows + 1);
  // In order for the beneficiary, the resend included.
  CHECK(wa_texts_to(e, u) == resent_then_all(e, first, rows));

  auto admin = login(e.port());
  auto sup = add_staff(e.port(), admin, "sara", "supervisor", "Sara");
  auto list = as_json(api(e.port(), "GET", "/api/v1/outbox?state=uncertain", sup));
  REQUIRE(list["outbox"].size() == 1);
  CHECK(list["outbox"][0]["id"] == first);
  CHECK(list["outbox"][0]["uncertain"] == true);
  CHECK(list["outbox"][0]["state"] == "sent");
  CHECK(as_json(api(e.port(), "GET", "/api/v1/outbox?state=sent", sup))["outbox"].size() == static_cast<std::size_t>(rows));
}

TEST_CASE("an uncertain row that ends dead keeps its flag; a refused connection is not uncertain") {
  std::atomic<int> calls{0};
  staff_env e(env_vars{{"AOUN_SEND_TIMEOUT_MS", "300"}, {"AOUN_OUTBOX_BACKOFF_MS", "20"}, {"AOUN_OUTBOX_MAX_ATTEMPTS", "2"}});
  e.graph.set_default([&](const recorded_request&) {
    scripted_response r{503, R"({"error":{"message":"unavailable","code":2}})"};
    if (++calls == 1) r.delay = std::chrono::milliseconds(900);
    return r;
  });
  REQUIRE(post_wa(e.port(), wa_text("966500000302", "wamid.U2", "مرحبا")).status == 200);
  const auto first = db_value(e.db, "SELECT min(id) FROM outbox");
  REQUIRE(eventually([&] { return db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(first)) == "dead"; }));
  auto err = db_text(e.db, "SELECT last_error FROM outbox WHERE id = " + std::to_string(first));
  CAPTURE(err);
  CHECK(err.rfind("uncertain; ", 0) == 0);  // the 503 that killed it, behind the flag

  // A provider nobody listens for: the request never left, so the resend cannot duplicate it.
  temp_dir dir;
  fake_provider tg, twilio;
  auto vars = e.vars;
  {
    fake_provider gone;
    vars["AOUN_WHATSAPP_API_BASE"] = gone.base();
  }  // closed: its port now refuses connections
  std::string db = dir.path + "/aoun.db";
  server_process srv(db, vars);
  REQUIRE(post_wa(srv.port(), wa_text("966500000303", "wamid.U3", "مرحبا")).status == 200);
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'dead'") >= 1; }));
  auto refused = db_text(db, "SELECT last_error FROM outbox WHERE state = 'dead' ORDER BY id LIMIT 1");
  CAPTURE(refused);
  CHECK(refused.rfind("network: ", 0) == 0);
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'") == 0);
}

TEST_CASE("a 502 or 504 from a gateway in front of the provider is flagged uncertain; the provider's own errors are not") {
  // Keyed by recipient, so the order between the two beneficiaries' sends does not matter.
  std::mutex m;
  std::set<std::string> failed_once;
  staff_env e(env_vars{{"AOUN_OUTBOX_BACKOFF_MS", "20"}});
  e.graph.set_default([&](const recorded_request& req) {
    auto to = json::parse(req.body).value("to", "");
    {
      std::lock_guard lock(m);
      if (failed_once.insert(to).second) {
        if (to == "966500000321") return scripted_response{504, "<html>504 Gateway Time-out</html>", "text/html"};
        if (to == "966500000322") return scripted_response{502, "<html>502 Bad Gateway</html>", "text/html"};
        if (to == "966500000324") return scripted_response{502, R"({"error":{"message":"unknown","code":1}})"};
        return scripted_response{500, R"({"error":{"message":"unknown","code":1}})"};
      }
    }
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.gw.)" + to + R"("}]})"};
  });
  for (auto [u, id] : {std::pair{"966500000321", "wamid.G1"}, {"966500000322", "wamid.G2"}, {"966500000323", "wamid.G3"},
                       {"966500000324", "wamid.G4"}})
    REQUIRE(post_wa(e.port(), wa_text(u, id, "مرحبا")).status == 200);
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; }));
  auto first_error = [&](const std::string& to) {
    return db_text(e.db, "SELECT COALESCE(last_error, '') FROM outbox WHERE recipient = '" + to + "' ORDER BY id LIMIT 1");
  };
  CAPTURE(first_error("966500000321"));
  CAPTURE(first_error("966500000323"));
  CHECK(first_error("966500000321").rfind("uncertain: gateway error after the request was sent: http 504", 0) == 0);
  CHECK(first_error("966500000322").rfind("uncertain: gateway error after the request was sent: http 502", 0) == 0);
  CHECK(first_error("966500000323").rfind("http 500", 0) == 0);
  CHECK(first_error("966500000324").rfind("http 502 code 1", 0) == 0);  // the provider's own answer
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'") == 2);
}

TEST_CASE("a slow provider: at most 256 sends at once, the rest wait their turn, and a stop sends nothing twice") {
  // Every send is held until the test opens the gate. Each webhook's replies take the fast
  // path, a chain per recipient.
  temp_dir dir;
  fake_provider graph, tg, twilio;
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<int> calls{0};
  graph.set_default([&](const recorded_request&) {
    scripted_response r{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.held.)" + std::to_string(++calls) + R"("}]})"};
    r.hold = [opened] { opened.wait_for(std::chrono::seconds(30)); };
    return r;
  });
  std::string db = dir.path + "/aoun.db";
  auto env = channel_env(graph, tg, twilio);
  env["AOUN_WHATSAPP_RATE"] = "100000";
  auto srv = std::make_unique<server_process>(db, env);
  // 300 beneficiaries at once: 300 recipients whose replies all take the fast path. Posted from
  // four threads, so that even a slow build has them all in flight within the hold.
  std::atomic<int> acked{0};
  {
    std::vector<std::thread> posters;
    for (int t = 0; t < 4; ++t)
      posters.emplace_back([&, t] {
        for (int i = t; i < 300; i += 4)
          if (post_wa(srv->port(), wa_text("96656" + std::to_string(1000000 + i), "wamid.H" + std::to_string(i), "مرحبا"))
                  .status == 200)
            ++acked;
      });
    for (auto& p : posters) p.join();
  }
  REQUIRE(acked == 300);
  // None is answered yet: exactly 256 are in flight, and no more come while they are.
  REQUIRE(eventually([&] { return graph.requests().size() >= 256; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(graph.requests().size() == 256);
  // A graceful stop now, the gate opening a moment later: the chains already handed to the
  // worker finish (those waiting for a slot included) and are recorded, nothing is left
  // `sending` or flagged, and after a restart nothing goes twice.
  std::thread opener([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    gate.set_value();
  });
  CHECK(srv->stop(15) == 0);
  opener.join();
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sending'") == 0);
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'") == 0);
  const auto rows = db_value(db, "SELECT count(*) FROM outbox");
  srv = std::make_unique<server_process>(db, env);
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; },
                     std::chrono::seconds(60)));
  CHECK(static_cast<long long>(graph.requests().size()) == rows);
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'") == 0);
}

namespace {

/// A Graph API whose first answer waits until `locked` is set (then 0.2 s more), however slow
/// the build: that send's outcome is then written while the lock is held.
void answer_first_once_locked(fake_provider& graph, std::atomic<int>& calls, std::atomic<bool>& locked,
                              const std::string& id_prefix) {
  graph.set_default([&calls, &locked, id_prefix](const recorded_request&) {
    int n = ++calls;
    scripted_response r{200, R"({"messaging_product":"whatsapp","messages":[{"id":")" + id_prefix + std::to_string(n) + R"("}]})"};
    if (n == 1) {
      for (int i = 0; i < 500 && !locked; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      r.delay = std::chrono::milliseconds(200);
    }
    return r;
  });
}

/// A server whose first reply to `user` is at the Graph API, its answer held until `locked`.
struct first_reply_held {
  std::atomic<int> calls{0};
  std::atomic<bool> locked{false};
  staff_env e;
  long long rows = 0;   ///< the outbox rows the first message made
  long long first = 0;  ///< the first of them, the one held
  first_reply_held(const std::string& user, const std::string& id_prefix) {
    answer_first_once_locked(e.graph, calls, locked, id_prefix);
    REQUIRE(post_wa(e.port(), wa_text(user, id_prefix + "in", "مرحبا")).status == 200);
    rows = db_value(e.db, "SELECT count(*) FROM outbox");
    first = db_value(e.db, "SELECT min(id) FROM outbox");
    REQUIRE(eventually([&] { return calls >= 1; }));
  }
};

}  // namespace

TEST_CASE("a send whose outcome cannot be written at once is recorded later, and the beneficiary's next replies go") {
  // Another process holds the database's write lock for longer than the server's busy timeout
  // (5 s) while the provider answers the first send: writing "sent" fails. A row left `sending`
  // would hold back everything else for that beneficiary (one send at a time per recipient).
  const std::string u = "966500000311";
  first_reply_held h(u, "wamid.locked.");
  auto& e = h.e;
  const auto first_rows = h.rows;
  const auto first = h.first;
  {
    write_lock lock(e.db);
    h.locked = true;
    // The answer comes 0.2 s later; the server's write waits 5 s for the lock, then fails.
    std::this_thread::sleep_for(std::chrono::milliseconds(7000));
    CHECK(db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(first)) == "sending");
  }
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("aoun_outbox_record_failed_total") != std::string::npos);
  // Written once the lock is gone, with the provider's id: nothing sent again, nothing flagged.
  REQUIRE(eventually([&] { return db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(first)) == "sent"; }));
  CHECK(db_text(e.db, "SELECT provider_message_id FROM outbox WHERE id = " + std::to_string(first)) == "wamid.locked.1");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == first_rows; }));
  // The beneficiary writes again: the answer goes out.
  REQUIRE(post_wa(e.port(), wa_text(u, "wamid.K2", "1")).status == 200);
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(rows > first_rows);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; }));
  CHECK(static_cast<long long>(e.graph.requests().size()) == rows);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'uncertain%'") == 0);
}

TEST_CASE("a stop while a send's outcome cannot be written: nothing more goes to that beneficiary until the restart") {
  // As above, but the server is stopped while the lock is held: the "sent" of the first reply is
  // never written. Its next replies must not be sent now, or the restart would send them again.
  const std::string u = "966500000312";
  first_reply_held h(u, "wamid.stopped.");
  auto& e = h.e;
  auto& calls = h.calls;
  const auto rows = h.rows;
  REQUIRE(rows >= 2);  // a chain: the welcome and what follows it
  const auto first = h.first;
  write_lock lock(e.db);
  h.locked = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // answered; its write waits for the lock
  CHECK(e.srv->stop(15, std::chrono::seconds(90)) == 0);
  lock.release();
  CHECK(calls == 1);  // only the reply whose answer could not be recorded
  CHECK(db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(first)) == "sending");
  // The restart sends it again, flagged, and each of the others once.
  e.srv = std::make_unique<server_process>(e.db, e.vars);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; }));
  CHECK(calls == rows + 1);
  CHECK(db_text(e.db, "SELECT last_error FROM outbox WHERE id = " + std::to_string(first)).rfind("uncertain", 0) == 0);
  CHECK(wa_texts_to(e, u) == resent_then_all(e, first, rows));
}

namespace {
/// The Graph API's answer to an expired or revoked access token.
scripted_response token_expired() {
  return scripted_response{401, R"({"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"AbC"}})"};
}
/// Graph API requests answered 200, and those refused, while `refuse` says so.
struct token_switch {
  std::atomic<bool> refuse{true};
  std::atomic<int> refused{0}, accepted{0};
  std::mutex mutex;
  std::map<std::string, std::vector<std::string>> delivered;  // recipient -> texts accepted, in order
  std::vector<std::chrono::steady_clock::time_point> refused_at;
  void attach(fake_provider& graph) {
    graph.set_default([this](const recorded_request& req) {
      if (refuse) {
        ++refused;
        std::lock_guard lock(mutex);
        refused_at.push_back(std::chrono::steady_clock::now());
        return token_expired();
      }
      {
        auto j = json::parse(req.body);
        std::lock_guard lock(mutex);
        delivered[j["to"]].push_back(wa_body(j));
      }
      int n = ++accepted;
      return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.tok.)" + std::to_string(n) + R"("}]})"};
    });
  }
};
}  // namespace

TEST_CASE("refused credentials hold the channel's replies, probe once per pause, and send each once when fixed") {
  token_switch tok;
  staff_env e(env_vars{{"AOUN_CREDENTIALS_PAUSE_MS", "300"}, {"AOUN_OUTBOX_MAX_ATTEMPTS", "2"}});
  tok.attach(e.graph);
  // Six beneficiaries: without the one-probe rule each pause would end in six refused sends.
  const std::vector<std::string> users = {"966500000401", "966500000402", "966500000404",
                                          "966500000405", "966500000406", "966500000407"};
  int n = 0;
  for (int round = 0; round < 2; ++round)
    for (const auto& u : users) REQUIRE(post_wa(e.port(), wa_text(u, "wamid.T" + std::to_string(++n), "مرحبا")).status == 200);
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(rows >= 4);
  REQUIRE(eventually([&] {
    return db_value(e.db, "SELECT count(*) FROM outbox WHERE last_error = 'credentials_refused: http 401 code 190'") >= 6;
  }));
  // Seen from outside: health, metrics, the staff API.
  auto health = as_json(http_call(e.port(), "GET", "/healthz"));
  CHECK(health["status"] == "degraded");
  REQUIRE(health["channel_faults"].size() == 1);
  CHECK(health["channel_faults"][0]["channel"] == "whatsapp");
  CHECK_FALSE(health["channel_faults"][0].contains("error"));  // the details are for staff, not for anyone
  CHECK(http_call(e.port(), "GET", "/healthz").status == 200);
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("aoun_channel_credentials_refused{channel=\"whatsapp\"} 1") !=
        std::string::npos);
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "nora", "agent", "Nora");
  auto faults = as_json(api(e.port(), "GET", "/api/v1/channels/faults", agent))["faults"];
  REQUIRE(faults.size() == 1);
  CHECK(faults[0]["state"] == "credentials_refused");
  CHECK(faults[0]["error"] == "http 401 code 190");

  // Two more seconds refused: one probe per pause (300, 600, 1200 ms ...), not a send per row
  // per retry, and no row spends its attempts or dies.
  const int before = tok.refused;
  std::this_thread::sleep_for(std::chrono::seconds(2));
  {
    std::lock_guard lock(tok.mutex);
    const std::vector<std::chrono::steady_clock::time_point> probes(tok.refused_at.begin() + before, tok.refused_at.end());
    CHECK(probes.size() >= 1);  // the credentials are tried again ...
    CHECK(probes.size() <= 4);  // ... less and less often ...
    for (std::size_t i = 1; i < probes.size(); ++i)  // ... by one send at a time
      CHECK(probes[i] - probes[i - 1] >= std::chrono::milliseconds(250));
  }
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'dead'") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 0);
  CHECK(db_value(e.db, "SELECT max(attempts) FROM outbox") <= 1);

  // The token is fixed: the next probe goes through and every held reply follows, once each,
  // in order per beneficiary.
  tok.refuse = false;
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; },
                     std::chrono::seconds(20)));
  CHECK(tok.accepted == rows);
  for (const auto& u : users) {
    std::vector<std::string> want;
    const auto mine = db_value(e.db, "SELECT count(*) FROM outbox WHERE recipient = '" + u + "'");
    for (long long k = 0; k < mine; ++k)
      want.push_back(db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox WHERE recipient = '" + u +
                                       "' ORDER BY id LIMIT 1 OFFSET " + std::to_string(k)));
    std::lock_guard lock(tok.mutex);
    CHECK(tok.delivered[u] == want);
  }
  CHECK(as_json(http_call(e.port(), "GET", "/healthz"))["status"] == "ok");
  CHECK(as_json(api(e.port(), "GET", "/api/v1/channels/faults", agent))["faults"].empty());
  CHECK(http_call(e.port(), "GET", "/metrics").body.find("aoun_channel_credentials_refused{channel=\"whatsapp\"} 0") !=
        std::string::npos);
}

TEST_CASE("replies held for refused credentials go out at once after a restart (the restart may be the fix)") {
  token_switch tok;
  staff_env e(env_vars{{"AOUN_CREDENTIALS_PAUSE_MS", "600000"}});
  tok.attach(e.graph);
  REQUIRE(post_wa(e.port(), wa_text("966500000403", "wamid.TR1", "مرحبا")).status == 200);
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  // Held: the first send refused and written so, every row pending (not yet sent, not dead).
  REQUIRE(eventually([&] {
    return tok.refused >= 1 &&
           db_value(e.db, "SELECT count(*) FROM outbox WHERE last_error LIKE 'credentials_refused: %' AND state = 'pending'") >= 1 &&
           db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'pending'") == rows;
  }));
  CHECK(tok.accepted == 0);
  tok.refuse = false;
  CHECK(e.restart() == 0);
  // Ten minutes' pause would hold them; the restart makes them due.
  CHECK(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; },
                   std::chrono::seconds(10)));
  CHECK(tok.accepted == rows);
}

TEST_CASE("a send accepted while the channel is held ends the fault, and the held replies go at once, not after the pause") {
  // A's send is in flight (the provider takes 1.5 s) when B's is refused: the channel is held
  // for a 10-minute pause. A's acceptance proves the token works: B's reply goes now.
  staff_env e(env_vars{{"AOUN_CREDENTIALS_PAUSE_MS", "600000"}});
  const std::string a = "966500000411", b = "966500000412";
  std::atomic<int> b_calls{0};
  e.graph.set_default([&](const recorded_request& req) {
    auto j = json::parse(req.body);
    if (j["to"] == a) {
      scripted_response r{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.a.)" + std::to_string(req.body.size()) + R"("}]})"};
      r.delay = std::chrono::milliseconds(1500);
      return r;
    }
    if (++b_calls == 1) return token_expired();
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.b.)" + std::to_string(b_calls.load()) + R"("}]})"};
  });
  REQUIRE(post_wa(e.port(), wa_text(a, "wamid.HA1", "مرحبا")).status == 200);
  REQUIRE(eventually([&] { return !wa_sends(e.graph, a).empty(); }));  // A's request is at the provider
  REQUIRE(post_wa(e.port(), wa_text(b, "wamid.HB1", "مرحبا")).status == 200);
  REQUIRE(eventually([&] { return b_calls.load() >= 1; }));
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  CHECK(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == rows; },
                   std::chrono::seconds(15)));
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'dead'") == 0);
  CHECK(as_json(http_call(e.port(), "GET", "/healthz"))["status"] == "ok");
}

TEST_CASE("a refusal that holds the channel but concerns one recipient ends with their rows, not with the channel") {
  // Code 10 (permission denied) holds the channel: it usually means the app lost a permission.
  // Here the provider gives it for one recipient only. Their rows must not hold everyone's
  // replies after every probe, for as long as they wait.
  staff_env e(env_vars{{"AOUN_CREDENTIALS_PAUSE_MS", "300"}});
  const std::string p = "966500000421";
  const std::vector<std::string> others = {"966500000422", "966500000423", "966500000424"};
  std::atomic<int> to_p{0}, accepted{0};
  e.graph.set_default([&](const recorded_request& req) {
    if (json::parse(req.body)["to"] == p) {
      ++to_p;
      return scripted_response{403, R"({"error":{"message":"(#10) Permission denied","type":"OAuthException","code":10,"fbtrace_id":"Ab1"}})"};
    }
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.ok.)" + std::to_string(++accepted) + R"("}]})"};
  });
  REQUIRE(post_wa(e.port(), wa_text(p, "wamid.RA1", "مرحبا")).status == 200);
  REQUIRE(eventually([&] { return to_p.load() >= 1; }));
  int n = 0;
  for (const auto& u : others) REQUIRE(post_wa(e.port(), wa_text(u, "wamid.RB" + std::to_string(++n), "مرحبا")).status == 200);
  const auto of = [&](const std::string& who, const std::string& state) {
    return db_value(e.db, "SELECT count(*) FROM outbox WHERE recipient = '" + who + "' AND state = '" + state + "'");
  };
  const auto rows_p = db_value(e.db, "SELECT count(*) FROM outbox WHERE recipient = '" + p + "'");
  REQUIRE(rows_p >= 1);
  // Everyone else's replies go; the one recipient's are dead, with the provider's reason.
  CHECK(eventually([&] {
    for (const auto& u : others)
      if (of(u, "sent") == 0 || of(u, "pending") + of(u, "sending") > 0) return false;
    return true;
  }, std::chrono::seconds(15)));
  REQUIRE(eventually([&] { return of(p, "dead") == rows_p; }, std::chrono::seconds(15)));
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE recipient = '" + p + "' AND last_error LIKE '%code 10%'") == rows_p);
  // Each of their rows went at most twice (held once, then refused alone): no probe loop.
  CHECK(to_p.load() <= 2 * rows_p);
  // The channel is not held: health is ok, and a newcomer's reply goes.
  CHECK(eventually([&] { return as_json(http_call(e.port(), "GET", "/healthz"))["status"] == "ok"; }));
  REQUIRE(post_wa(e.port(), wa_text("966500000425", "wamid.RC1", "مرحبا")).status == 200);
  CHECK(eventually([&] { return of("966500000425", "sent") >= 1; }));
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'dead' AND recipient <> '" + p + "'") == 0);
}

TEST_CASE("an SMS backlog waiting for its rate limit holds up no other channel, and a stop does not wait for it") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  std::string db = dir.path + "/aoun.db";
  auto env = channel_env(graph, tg, twilio);
  env["AOUN_SMS_RATE"] = "1";
  make_schema(db, env);
  // As after an outage: 300 SMS replies due at once (one a second is the gateway's pace), and a
  // WhatsApp reply written after them.
  std::string values;
  for (int i = 0; i < 300; ++i)
    values += std::string(i ? "," : "") + "('sms', '+9665" + std::to_string(10000000 + i) + "', '{\"text\":\"sms " +
              std::to_string(i) + "\"}', 'pending', 1)";
  db_exec(db, "INSERT INTO outbox (channel, recipient, payload, state, created_at) VALUES " + values);
  db_exec(db, "INSERT INTO outbox (channel, recipient, payload, state, created_at) VALUES "
              "('whatsapp', '966500009999', '{\"text\":\"واتساب بعد الرسائل القصيرة\"}', 'pending', 1)");
  auto srv = std::make_unique<server_process>(db, env);
  // Before: 256 SMS chains took every place and the WhatsApp reply waited about four minutes.
  CHECK(eventually([&] { return !wa_sends(graph, "966500009999").empty(); }, std::chrono::seconds(10)));
  CHECK(twilio.requests().size() < 60);
  // The SMS rows not yet taken stay pending in the database, not `sending` in memory: one claim
  // (64) at most, where 256 were before.
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE channel = 'sms' AND state = 'sending'") <= 64);
  // Nor later: the claim that includes them at least every 5 s adds rows only while fewer than a
  // claim's worth are held in memory (before, 64 more every 5 s, until they took every place).
  std::this_thread::sleep_for(std::chrono::seconds(11));
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE channel = 'sms' AND state = 'sending'") <= 128);
  // A stop does not wait for the SMS still waiting their turn; what was not sent goes back to
  // pending, unflagged (it never left), for the next start.
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(srv->stop() == 0);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sending'") == 0);
  const auto sent = db_value(db, "SELECT count(*) FROM outbox WHERE channel = 'sms' AND state = 'sent'");
  CHECK(static_cast<std::size_t>(sent) == twilio.requests().size());
  CHECK(db_value(db, "SELECT count(*) FROM outbox WHERE channel = 'sms' AND state = 'pending' AND "
                     "coalesce(last_error, '') NOT LIKE 'uncertain%'") == 300 - sent);
}

TEST_CASE("SMS are paced by segment: a long Arabic reply takes the gateway's time of each of its parts") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  std::string db = dir.path + "/aoun.db";
  auto env = channel_env(graph, tg, twilio);
  env["AOUN_SMS_RATE"] = "10";  // segments a second; a second's worth (10) may go at once
  make_schema(db, env);
  // Four 400-character Arabic replies (UCS-2: 6 segments of 67 each), due at once to four
  // people (sent in any order). Counted as messages, the four fit the first second's 10;
  // counted as segments, the last waits until the 18 before it have had their time: 0.9 s.
  std::string longer;
  for (int i = 0; i < 400; ++i) longer += "ع";
  db_exec(db, "INSERT INTO outbox (channel, recipient, payload, state, created_at) VALUES "
              "('sms', '+966510000001', '{\"text\":\"" + longer + "\"}', 'pending', 1), "
              "('sms', '+966510000002', '{\"text\":\"" + longer + "\"}', 'pending', 1), "
              "('sms', '+966510000003', '{\"text\":\"" + longer + "\"}', 'pending', 1), "
              "('sms', '+966510000004', '{\"text\":\"" + longer + "\"}', 'pending', 1)");
  server_process srv(db, env);
  REQUIRE(eventually([&] { return twilio.requests().size() == 4; }, std::chrono::seconds(10)));
  const auto reqs = twilio.requests();
  std::chrono::steady_clock::time_point first = reqs[0].at, last = reqs[0].at;
  for (const auto& r : reqs) {
    first = std::min(first, r.at);
    last = std::max(last, r.at);
  }
  CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(last - first) >= std::chrono::milliseconds(750));
}

TEST_CASE("a reply whose send throws inside the server every time is dead at the last attempt, and stops holding the person's next") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  std::string db = dir.path + "/aoun.db";
  auto env = channel_env(graph, tg, twilio);
  env["AOUN_OUTBOX_MAX_ATTEMPTS"] = "3";
  env["AOUN_OUTBOX_BACKOFF_MS"] = "10";
  make_schema(db, env);
  // A payload the renderer throws on (a flag that is not a boolean: a damaged row, say), then
  // the person's next reply behind it.
  db_exec(db, "INSERT INTO outbox (channel, recipient, payload, state, created_at) VALUES "
              "('whatsapp', '966500000321', '{\"text\":\"x\",\"request_contact\":\"yes\"}', 'pending', 1), "
              "('whatsapp', '966500000321', '{\"text\":\"after\"}', 'pending', 1)");
  server_process srv(db, env);
  REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 1; }));
  CHECK(db_text(db, "SELECT state || ' ' || attempts FROM outbox WHERE id = 1") == "dead 3");
  CHECK(db_text(db, "SELECT last_error FROM outbox WHERE id = 1").rfind("uncertain: the send failed inside the server", 0) == 0);
  REQUIRE(graph.requests().size() == 1);
  CHECK(graph.requests()[0].body.find("after") != std::string::npos);
}

TEST_CASE("a 429 on the whole channel holds the other recipients' sends too; a pair limit holds only its recipient") {
  temp_dir dir;
  fake_provider graph, tg, twilio;
  std::string db = dir.path + "/aoun.db";
  auto env = channel_env(graph, tg, twilio);
  env["AOUN_WHATSAPP_RATE"] = "0.5";  // one every 2 s: the rows go one after the other
  make_schema(db, env);
  std::atomic<int> calls{0};
  for (const char* code : {"130429", "131056"}) {
    CAPTURE(code);
    const auto base = graph.requests().size();
    calls = 0;
    graph.set_default([&calls, code](const recorded_request&) {
      if (++calls == 1) {
        scripted_response r{400, std::string(R"({"error":{"message":"limit","code":)") + code + "}}"};
        r.headers = {{"Retry-After", "6"}};
        return r;
      }
      return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.ok"}]})"};
    });
    db_exec(db, "DELETE FROM outbox");
    db_exec(db, "INSERT INTO outbox (channel, recipient, payload, state, created_at) VALUES "
                "('whatsapp', '966500000401', '{\"text\":\"a\"}', 'pending', 1), "
                "('whatsapp', '966500000402', '{\"text\":\"b\"}', 'pending', 1)");
    server_process srv(db, env);
    REQUIRE(eventually([&] { return db_value(db, "SELECT count(*) FROM outbox WHERE state = 'sent'") == 2; },
                       std::chrono::seconds(30)));
    const auto reqs = graph.requests();
    REQUIRE(reqs.size() >= base + 2);
    const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(reqs[base + 1].at - reqs[base].at);
    CAPTURE(gap.count());
    if (std::string(code) == "130429") CHECK(gap >= std::chrono::milliseconds(5500));  // the channel waited the 6 s
    else CHECK(gap < std::chrono::milliseconds(4500));                                 // only that recipient did
    REQUIRE(srv.stop() == 0);
  }
}
