// The staff API under hostile input: bodies that are not JSON or have the wrong types, ids that
// are not ids, query strings out of range, malformed Authorization headers. The rule
// (docs/staff.md, docs/api.yaml): malformed 400, too large 413, missing or bad token 401, wrong
// role 403, unknown id 404; a refused request changes nothing in the database, and the server
// answers the next well-formed request.
#include <doctest/doctest.h>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;
using namespace std::string_literals;

namespace {

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

/// Everything a staff request could change, as one string.
std::string fingerprint(const std::string& db) {
  return db_text(db,
                 "SELECT (SELECT count(*) FROM audit_log) || '|' || (SELECT count(*) FROM messages) || '|' || "
                 "(SELECT count(*) FROM outbox) || '|' || (SELECT count(*) FROM sessions) || '|' || "
                 "(SELECT count(*) FROM case_events) || '|' || "
                 "(SELECT group_concat(id || mode || coalesce(assigned_staff_id, '-'), ',') FROM conversations) || '|' || "
                 "(SELECT group_concat(reference || step, ',') FROM cases) || '|' || "
                 "(SELECT group_concat(username || role || display_name || disabled || password_hash, ',') FROM staff)");
}

/// A server with a beneficiary whose request is filed (one case) and whose conversation the
/// admin holds; an agent account; and the database's fingerprint once all that is settled.
struct hostile_env {
  staff_env e;
  std::string admin, agent, ref;
  long long cid = 0, agent_id = 0;
  hostile_env() {
    admin = login(e.port());
    agent = add_staff(e.port(), admin, "agent1", "agent", "Agent One");
    agent_id = db_value(e.db, "SELECT id FROM staff WHERE username = 'agent1'");
    wa_user b{e.port(), "966500000777"};
    walk_intake(b);
    cid = conversation_of(e.db, b.from);
    ref = db_text(e.db, "SELECT reference FROM cases");
    REQUIRE(api(e.port(), "POST", conv("/takeover"), admin).status == 200);
    // The outbox settles (the intake's and takeover's messages are delivered) before comparing.
    REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending','sending')") == 0; }));
  }
  std::string conv(const std::string& tail) const { return "/api/v1/conversations/" + std::to_string(cid) + tail; }
};

struct bad_call {
  std::string method, target, body;
  int status;
  std::string error;
  bool as_agent = false;
};

void check_refused(hostile_env& h, const std::vector<bad_call>& calls) {
  const auto before = fingerprint(h.e.db);
  for (const auto& c : calls) {
    CAPTURE(c.method);
    CAPTURE(c.target);
    CAPTURE(c.body.substr(0, 200));
    auto r = api(h.e.port(), c.method, c.target, c.as_agent ? h.agent : h.admin, c.body);
    CHECK_MESSAGE(r.status == c.status, r.body);
    CHECK(as_json(r).value("error", "") == c.error);
  }
  CHECK(fingerprint(h.e.db) == before);
}

}  // namespace

TEST_CASE("staff api: malformed bodies on every write endpoint are 400 and change nothing") {
  hostile_env h;
  const auto msg = h.conv("/messages"), take = h.conv("/takeover"), tpl = h.conv("/template"),
             docs = h.conv("/request-documents"), trans = "/api/v1/cases/" + h.ref + "/transition",
             staff = "/api/v1/staff"s, me = "/api/v1/staff/1"s,
             agent = "/api/v1/staff/" + std::to_string(h.agent_id);
  std::vector<bad_call> calls;
  // Shapes that are never an object, on every endpoint that reads a body.
  for (const auto& [m, t] : std::vector<std::pair<const char*, std::string>>{
           {"POST", msg}, {"POST", tpl}, {"POST", docs}, {"POST", trans}, {"POST", staff}, {"PATCH", agent},
           {"POST", "/api/v1/auth/login"}, {"POST", take}})
    for (std::string body : {"not json"s, "{\"text\": "s, "[]"s, "null"s, "\"text\""s, "99999999999999999999"s,
                             "{\"a\":1e999}"s, repeat("[", 20000), repeat("[", 20000) + repeat("]", 20000)})
      calls.push_back({m, t, body, 400, "malformed"});
  // Empty bodies where one is required (takeover's is optional).
  for (const auto& [m, t] : std::vector<std::pair<const char*, std::string>>{
           {"POST", msg}, {"POST", tpl}, {"POST", docs}, {"POST", trans}, {"POST", staff}, {"PATCH", agent},
           {"POST", "/api/v1/auth/login"}})
    for (std::string body : {""s, "   \r\n"s, "{}"s}) calls.push_back({m, t, body, 400, "malformed"});
  // Fields of the wrong type, out of range, or unknown only.
  for (std::string body : {R"({"text": 5})", R"({"text": null})", R"({"text": ["hi"]})", R"({"text": {"a": 1}})",
                           R"({"text": true})", R"({"text": ""})", R"({"text": "  \n "})", R"({"txt": "hi"})"})
    calls.push_back({"POST", msg, body, 400, "malformed"});
  calls.push_back({"POST", msg, json{{"text", repeat("ع", 4097)}}.dump(), 400, "malformed"});
  for (std::string body : {R"({"override": "true"})", R"({"override": 1})",
                           R"({"override": 99999999999999999999})", R"({"override": [true]})", R"({"override": {}})"})
    calls.push_back({"POST", take, body, 400, "malformed"});
  for (std::string body : {R"({"name": 5})", R"({"name": null})", R"({"name": "aoun_followup", "params": "x"})",
                           R"({"name": "aoun_followup", "params": [1]})", R"({"name": "aoun_followup", "params": [null]})",
                           R"({"name": "other_template"})"})
    calls.push_back({"POST", tpl, body, 400, "malformed"});
  calls.push_back({"POST", tpl, json{{"name", "aoun_followup"}, {"params", json::array({"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"})}}.dump(), 400, "malformed"});
  calls.push_back({"POST", tpl, json{{"name", "aoun_followup"}, {"params", {repeat("ع", 1025)}}}.dump(), 400, "malformed"});
  // An unknown template's name is quoted back, shortened: never cut inside a character.
  calls.push_back({"POST", tpl, json{{"name", "x" + repeat("ع", 100)}}.dump(), 400, "malformed"});
  for (std::string body : {R"({"reference": 5})", R"({"reference": ""})", R"({"reference": null})", R"({"ref": "AWN-1"})"})
    calls.push_back({"POST", docs, body, 400, "malformed"});
  calls.push_back({"POST", docs, json{{"reference", repeat("A", 65)}}.dump(), 400, "malformed"});
  for (std::string body : {R"({"to": 5})", R"({"to": "flying"})", R"({"to": null})", R"({"to": "evaluating", "note": 5})",
                           R"({"to": "collecting_info"})", R"({"to": "collecting_info", "verification_method": "psychic"})",
                           R"({"to": "collecting_info", "verification_method": 1})",
                           R"({"to": "collecting_info", "verification_method": "interview", "appointment": "2026-13-01"})",
                           R"({"to": "collecting_info", "verification_method": "interview", "appointment": 20260501})",
                           R"({"to": "evaluating", "appointment": "2026-05-01"})"})
    calls.push_back({"POST", trans, body, 400, "malformed"});
  calls.push_back({"POST", trans, json{{"to", "collecting_info"}, {"verification_method", "interview"}, {"note", repeat("ع", 2001)}}.dump(), 400, "malformed"});
  for (std::string body : {R"({"username": "new1", "password": "password-1"})",
                           R"({"username": "new1", "password": "password-1", "role": "root"})",
                           R"({"username": "New1", "password": "password-1", "role": "agent"})",
                           R"({"username": "n", "password": "password-1", "role": "agent"})",
                           R"({"username": ["new1"], "password": "password-1", "role": "agent"})",
                           R"({"username": "new1", "password": 12345678, "role": "agent"})",
                           R"({"username": "new1", "password": "short", "role": "agent"})",
                           R"({"username": "new1", "password": "password-1", "role": "agent", "display_name": 7})",
                           R"({"username": "new1", "password": "password-1", "role": "agent", "display_name": " "})"})
    calls.push_back({"POST", staff, body, 400, "malformed"});
  for (std::string body : {R"({"disabled": "true"})", R"({"disabled": 1})", R"({"role": 1})", R"({"role": "root"})",
                           R"({"display_name": ""})", R"({"password": "short"})", R"({"password": ["long-enough"]})",
                           R"({"rol": "admin"})", R"({"disabled": null})"})
    calls.push_back({"PATCH", agent, body, 400, "malformed"});
  for (std::string body : {R"({"username": 1, "password": "x"})", R"({"username": "admin"})",
                           R"({"username": "admin", "password": null})", R"({"username": "", "password": "x"})"})
    calls.push_back({"POST", "/api/v1/auth/login", body, 400, "malformed"});
  // The admin's own account: neither disabled nor demoted (409), whatever else the body says.
  calls.push_back({"PATCH", me, R"({"disabled": true})", 409, "conflict"});
  calls.push_back({"PATCH", me, R"({"role": "agent", "display_name": "x"})", 409, "conflict"});
  // An agent is refused admin endpoints before the body is read.
  calls.push_back({"POST", staff, "not json", 403, "forbidden", true});
  calls.push_back({"PATCH", agent, R"({"role": "admin"})", 403, "forbidden", true});
  calls.push_back({"POST", "/api/v1/outbox/1/retry", "", 403, "forbidden", true});
  check_refused(h, calls);

  // Unknown fields beside valid ones are ignored (the schemas allow them); the request works.
  auto ok = api(h.e.port(), "POST", msg, h.admin, json{{"text", "مرحبا"}, {"sender", "system"}, {"staff_id", 999}});
  CHECK_MESSAGE(ok.status == 200, ok.body);
  CHECK(as_json(ok)["sender"] == "staff");
}

TEST_CASE("staff api: a path id that is not a positive decimal in range is 404, with no database change") {
  hostile_env h;
  std::vector<bad_call> calls;
  for (std::string id : {"abc", "-1", "0", "00", "1.0", "1e3", "0x1", "%31", "+1", "99999999999999999999",
                         "9223372036854775808", "9223372036854775807", "999999999999999999", "%D9%A1"}) {
    for (const auto& [m, tail, body] : std::vector<std::tuple<const char*, std::string, std::string>>{
             {"GET", "", ""}, {"GET", "/messages", ""}, {"POST", "/messages", R"({"text":"hi"})"},
             {"POST", "/takeover", ""}, {"POST", "/release", ""}, {"POST", "/resolve", ""},
             {"POST", "/template", R"({"name":"aoun_followup"})"},
             {"POST", "/request-documents", json{{"reference", h.ref}}.dump()}})
      calls.push_back({m, "/api/v1/conversations/" + id + tail, body, 404, "not_found"});
    calls.push_back({"PATCH", "/api/v1/staff/" + id, R"({"display_name":"x"})", 404, "not_found"});
    calls.push_back({"POST", "/api/v1/outbox/" + id + "/retry", "", 404, "not_found"});
    calls.push_back({"GET", "/api/v1/messages/" + id + "/media", "", 404, "not_found"});
    calls.push_back({"GET", "/api/v1/cases/" + h.ref + "/documents/" + id + "/media", "", 404, "not_found"});
  }
  for (std::string ref : {"AWN-0000-000000", "%00", "%FF%FE", "..%2F..%2Fetc", "'%20OR%201=1--"}) {
    calls.push_back({"GET", "/api/v1/cases/" + ref, "", 404, "not_found"});
    calls.push_back({"POST", "/api/v1/cases/" + ref + "/transition", R"({"to":"evaluating"})", 404, "not_found"});
  }
  check_refused(h, calls);
  CHECK(api(h.e.port(), "GET", h.conv(""), h.admin).status == 200);
}

TEST_CASE("staff api: query parameters out of range are 400") {
  hostile_env h;
  std::vector<bad_call> calls;
  for (std::string q : {"limit=abc", "limit=0", "limit=-1", "limit=1001", "limit=99999999999999999999", "limit=5abc",
                        "limit=", "limit=1e3", "limit=%00", "mode=evil", "mode=", "mode=WAITING"})
    calls.push_back({"GET", "/api/v1/conversations?" + q, "", 400, "malformed"});
  for (std::string q : {"step=evil", "step=%00", "step=SUBMITTED"}) calls.push_back({"GET", "/api/v1/cases?" + q, "", 400, "malformed"});
  for (std::string q : {"from=2026-02-30", "from=2026-1-1", "from=yesterday", "to=99999-01-01", "from=2026-05-02&to=2026-05-01",
                        "from=%00", "to=2026-05-01T00:00"})
    calls.push_back({"GET", "/api/v1/reports/satisfaction?" + q, "", 400, "malformed"});
  for (std::string q : {"state=evil", "state="}) calls.push_back({"GET", "/api/v1/outbox?" + q, "", 400, "malformed"});
  check_refused(h, calls);
  for (std::string q : {"limit=1", "limit=1000", "mode=waiting&mine=1", "mine=garbage"})
    CHECK(api(h.e.port(), "GET", "/api/v1/conversations?" + q, h.admin).status == 200);
}

TEST_CASE("staff api: malformed or misplaced tokens are 401, a lower role 403") {
  hostile_env h;
  const auto before = fingerprint(h.e.db);
  for (std::string v : {""s, "Bearer"s, "Bearer "s, "Bearer      "s, "Basic YWRtaW46YWRtaW4="s, "Token " + h.admin,
                        "Bearer " + h.admin + "x", "Bearer x" + h.admin, "Bearer " + h.admin.substr(1),
                        "Bearer " + repeat("a", 300), "Bearer " + repeat("a", 100000), "Bearer\t" + h.admin,
                        "Bearer " + h.admin + " " + h.admin, "Bearer \xd8\xb9\xd8\xb9"s}) {
    CAPTURE(v.substr(0, 80));
    auto r = http_call(h.e.port(), "GET", "/api/v1/me", "", {{"Authorization", v}});
    // A header line over Beast's 16 KiB header limit is a malformed request.
    CHECK(r.status == (v.size() > 16 * 1024 ? 400 : 401));
    if (v.size() < 16 * 1024) CHECK(r.headers["www-authenticate"] == "Bearer");
  }
  // The scheme is case-insensitive (RFC 7235 section 2.1); spaces around the token are not part of it.
  for (std::string v : {"Bearer ", "bearer ", "BEARER ", "bEaReR  "}) {
    CAPTURE(v);
    CHECK(http_call(h.e.port(), "GET", "/api/v1/me", "", {{"Authorization", v + h.admin + " "}}).status == 200);
  }
  // Tokens never travel in the URL of a REST call (only the stream's upgrade accepts one).
  CHECK(http_call(h.e.port(), "GET", "/api/v1/me?token=" + h.admin).status == 401);
  // Two Authorization headers: the first one counts, and it must be valid.
  auto two = raw_call(h.e.port(), "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer nope\r\n"
                                  "Authorization: Bearer " + h.admin + "\r\n\r\n");
  CHECK(two.rfind("HTTP/1.1 401", 0) == 0);
  // The stream's upgrade: the same checks before any WebSocket exists.
  for (std::string t : {"?token="s, "?token=%00"s, "?token=" + repeat("a", 300), "?token=" + h.admin + "x"}) {
    stream_client s(h.e.port(), "/api/v1/stream" + t);
    CHECK(s.status == 401);
  }
  // A valid agent token on admin and supervisor endpoints.
  CHECK(api(h.e.port(), "GET", "/api/v1/staff", h.agent).status == 403);
  CHECK(api(h.e.port(), "GET", "/api/v1/outbox", h.agent).status == 403);
  CHECK(fingerprint(h.e.db) == before);
  CHECK(api(h.e.port(), "GET", "/api/v1/me", h.admin).status == 200);
}

TEST_CASE("staff api: a body over the limit is 413 and a header over the limit 400, before authentication") {
  staff_env e(env_vars{{"AOUN_BODY_LIMIT", "4096"}});
  auto admin = login(e.port());
  const auto before = fingerprint(e.db);
  auto big = json{{"text", repeat("a", 5000)}}.dump();
  for (std::string t : {"/api/v1/conversations/1/messages", "/api/v1/auth/login", "/api/v1/staff"}) {
    CAPTURE(t);
    for (const auto& token : {admin, std::string()}) {
      auto r = api(e.port(), "POST", t, token, big);
      CHECK(r.status == 413);
      CHECK(as_json(r).value("error", "") == "too_large");
    }
  }
  auto r = http_call(e.port(), "GET", "/api/v1/me", "", {{"Authorization", "Bearer " + admin}, {"X-Pad", repeat("a", 20000)}});
  CHECK(r.status == 400);
  CHECK(fingerprint(e.db) == before);
  CHECK(api(e.port(), "GET", "/api/v1/me", admin).status == 200);
}

TEST_CASE("staff api: the queue is a supervisor's to empty: an agent cannot send a waiting beneficiary back to the bot") {
  hostile_env h;
  auto admin = h.admin;
  REQUIRE(api(h.e.port(), "POST", h.conv("/release"), admin).status == 200);
  REQUIRE(post_wa(h.e.port(), wa_text("966500000777", "wamid.QUEUE1", "موظف")).status == 200);  // asks for a person
  REQUIRE(db_value(h.e.db, "SELECT count(*) FROM conversations WHERE mode = 'waiting' AND id = " + std::to_string(h.cid)) == 1);
  REQUIRE(eventually([&] { return db_value(h.e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending','sending')") == 0; }));
  const auto before = fingerprint(h.e.db);
  auto r = api(h.e.port(), "POST", h.conv("/request-documents"), h.agent, json{{"reference", h.ref}}.dump());
  CHECK(r.status == 403);
  CHECK(as_json(r)["error"] == "forbidden");
  // Before the case is looked up: no answer tells an agent whether a reference exists.
  CHECK(api(h.e.port(), "POST", h.conv("/request-documents"), h.agent, json{{"reference", "AWN-0000-000000"}}.dump()).status == 403);
  CHECK(fingerprint(h.e.db) == before);
  // Resolved from the queue by a supervisor who never spoke with the person: the survey is
  // credited to no one (it rates the one who held the conversation).
  REQUIRE(api(h.e.port(), "POST", h.conv("/resolve"), admin).status == 200);
  CHECK(db_value(h.e.db, "SELECT count(*) FROM surveys WHERE staff_id IS NULL AND conversation_id = " + std::to_string(h.cid)) == 1);
  CHECK(db_text(h.e.db, "SELECT json_extract(detail, '$.holder_staff_id') IS NULL FROM audit_log WHERE action = "
                        "'conversation.resolve'") == "1");
}

TEST_CASE("staff api: a flood of sign-ins is refused at once beyond the ones being checked, and staff get in after") {
  // Each guess from its own address (behind the proxy), so the per-address throttle stays out of it.
  staff_env e(std::map<std::string, std::string>{{"AOUN_TRUSTED_PROXIES", "127.0.0.1"}});
  std::vector<std::thread> threads;
  std::atomic<int> unavailable{0}, refused{0};
  for (int i = 0; i < 40; ++i)
    threads.emplace_back([&, i] {
      auto r = http_call(e.port(), "POST", "/api/v1/auth/login",
                         json{{"username", "user" + std::to_string(i)}, {"password", "bad-password"}}.dump(),
                         {{"X-Forwarded-For", "198.51.100." + std::to_string(i)}});
      if (r.status == 503) ++unavailable;
      if (r.status == 401 || r.status == 429) ++refused;
    });
  for (auto& t : threads) t.join();
  CHECK(unavailable + refused == 40);
  CHECK(unavailable > 0);
  CHECK(refused >= 8);
  CHECK(login_call(e.port(), "admin", "admin-password-1").status == 200);
}
