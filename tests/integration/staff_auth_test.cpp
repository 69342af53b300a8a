// Authorization of every staff endpoint, token expiry, lockout, the per-address throttle,
// staff accounts and the audit log.
#include <doctest/doctest.h>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {

struct endpoint {
  const char* method;
  const char* target;
  int min_rank;  // 0 agent, 1 supervisor, 2 admin
};

const std::vector<endpoint>& endpoints() {
  static const std::vector<endpoint> list = {
      {"GET", "/api/v1/me", 0},
      {"GET", "/api/v1/conversations?mode=all", 0},
      {"GET", "/api/v1/conversations/1", 0},
      {"GET", "/api/v1/conversations/1/messages", 0},
      {"POST", "/api/v1/conversations/1/messages", 0},
      {"POST", "/api/v1/conversations/1/takeover", 0},
      {"POST", "/api/v1/conversations/1/release", 0},
      {"POST", "/api/v1/conversations/1/resolve", 0},
      {"POST", "/api/v1/conversations/1/template", 0},
      {"POST", "/api/v1/conversations/1/request-documents", 0},
      {"GET", "/api/v1/cases", 0},
      {"GET", "/api/v1/cases/AWN-2026-000001", 0},
      {"POST", "/api/v1/cases/AWN-2026-000001/transition", 0},
      {"GET", "/api/v1/reports/satisfaction", 0},
      {"GET", "/api/v1/reports/cases", 0},
      {"GET", "/api/v1/canned-answers", 0},
      {"GET", "/api/v1/stream", 0},
      {"GET", "/api/v1/outbox?state=dead", 1},
      {"POST", "/api/v1/outbox/1/retry", 1},
      {"GET", "/api/v1/staff", 2},
      {"POST", "/api/v1/staff", 2},
      {"PATCH", "/api/v1/staff/1", 2},
      {"POST", "/api/v1/me/password", 0},
      {"POST", "/api/v1/auth/logout", 0},  // last: it ends the agent's and supervisor's sessions
  };
  return list;
}

}  // namespace

TEST_CASE("staff auth: every endpoint needs a valid token and the right role") {
  staff_env e;
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");
  auto sup = add_staff(e.port(), admin, "sara", "supervisor", "Sara");
  for (auto& ep : endpoints()) {
    CAPTURE(ep.method);
    CAPTURE(ep.target);
    auto none = http_call(e.port(), ep.method, ep.target, "{}");
    CHECK(none.status == 401);
    CHECK(as_json(none)["error"] == "unauthenticated");
    CHECK(none.headers["www-authenticate"] == "Bearer");
    CHECK(api(e.port(), ep.method, ep.target, "not-a-real-token", std::string("{}")).status == 401);
    CHECK(http_call(e.port(), ep.method, ep.target, "{}", {{"Authorization", "Basic YWRtaW46eA=="}}).status == 401);
    int agent_status = api(e.port(), ep.method, ep.target, agent, std::string("{}")).status;
    int sup_status = api(e.port(), ep.method, ep.target, sup, std::string("{}")).status;
    // Allowed: past the checks of token and role (a 404 for conversation 1, a 400 for the
    // empty body, a 200), never a 401, a 403, or a server error.
    const auto allowed = [](int status) { return status != 401 && status != 403 && status >= 200 && status < 500; };
    CAPTURE(agent_status);
    CAPTURE(sup_status);
    if (ep.min_rank >= 1) CHECK(agent_status == 403); else CHECK(allowed(agent_status));
    if (ep.min_rank >= 2) CHECK(sup_status == 403); else CHECK(allowed(sup_status));
    if (std::string(ep.target) != "/api/v1/auth/logout")
      CHECK(allowed(api(e.port(), ep.method, ep.target, admin, std::string("{}")).status));
  }
  // The agent's and supervisor's logouts above ended their sessions.
  CHECK(api(e.port(), "GET", "/api/v1/me", agent).status == 401);
  auto me = as_json(api(e.port(), "GET", "/api/v1/me", admin));
  CHECK(me["staff"]["username"] == "admin");
  CHECK(me["staff"]["role"] == "admin");
}

TEST_CASE("staff auth: login shape, logout, expired tokens") {
  staff_env e(env_vars{{"AOUN_TOKEN_TTL_SECONDS", "2"}});
  auto r = login_call(e.port(), "admin", "admin-password-1");
  REQUIRE(r.status == 200);
  auto j = as_json(r);
  auto token = j["token"].get<std::string>();
  CHECK(token.size() >= 32);
  CHECK(j["staff"]["username"] == "admin");
  CHECK(j["staff"]["role"] == "admin");
  CHECK(j["staff"].contains("id"));
  CHECK(j["expires_at"].is_number_integer());
  CHECK_FALSE(j["staff"].contains("password_hash"));
  // Only a hash of the token is stored.
  CHECK(db_value(e.db, "SELECT count(*) FROM sessions WHERE token_hash = '" + token + "'") == 0);
  CHECK(db_value(e.db, "SELECT count(*) FROM sessions WHERE length(token_hash) = 64") == 1);
  CHECK(api(e.port(), "GET", "/api/v1/me", token).status == 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));
  CHECK(api(e.port(), "GET", "/api/v1/me", token).status == 401);

  auto t2 = login(e.port());
  CHECK(api(e.port(), "POST", "/api/v1/auth/logout", t2).status == 200);
  CHECK(api(e.port(), "GET", "/api/v1/me", t2).status == 401);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'auth.logout'") == 1);
  CHECK(login_call(e.port(), "admin", "").status == 400);
  CHECK(http_call(e.port(), "POST", "/api/v1/auth/login", "{oops").status == 400);
}

TEST_CASE("staff auth: lockout after repeated failures, also for the right password, until it expires") {
  staff_env e(env_vars{{"AOUN_MAX_FAILED_LOGINS", "3"}, {"AOUN_LOCKOUT_SECONDS", "2"}});
  auto unknown = login_call(e.port(), "nobody", "whatever-123");
  auto wrong = login_call(e.port(), "admin", "wrong-password-1");
  CHECK(unknown.status == 401);
  CHECK(wrong.status == 401);
  CHECK(as_json(unknown)["message"] == as_json(wrong)["message"]);  // no hint which one exists
  CHECK(login_call(e.port(), "admin", "wrong-password-2").status == 401);
  auto third = login_call(e.port(), "admin", "wrong-password-3");
  CHECK(third.status == 429);
  CHECK(as_json(third)["error"] == "locked");
  auto right = login_call(e.port(), "admin", "admin-password-1");
  CHECK(right.status == 429);
  CHECK(as_json(right)["error"] == "locked");
  // A name that does not exist locks alike at its third failure: the answers do not tell
  // whether an account exists.
  CHECK(login_call(e.port(), "nobody", "whatever-124").status == 401);
  auto phantom = login_call(e.port(), "nobody", "whatever-125");
  CHECK(phantom.status == 429);
  CHECK(as_json(phantom)["error"] == as_json(third)["error"]);
  CHECK(as_json(phantom)["message"] == as_json(third)["message"]);
  std::this_thread::sleep_for(std::chrono::milliseconds(2300));
  CHECK(login_call(e.port(), "admin", "admin-password-1").status == 200);
  // The audit log has the failures, the lock and the success, and never a password.
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'") == 7);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'auth.locked'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'auth.login'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE detail LIKE '%password-%'") == 0);
}

TEST_CASE("staff auth: a disabled account locks like any other, so the answers do not tell it apart") {
  staff_env e(env_vars{{"AOUN_MAX_FAILED_LOGINS", "3"}, {"AOUN_LOCKOUT_SECONDS", "60"}});
  auto admin = login(e.port());
  add_staff(e.port(), admin, "khalid", "agent", "خالد");
  const auto id = db_value(e.db, "SELECT id FROM staff WHERE username = 'khalid'");
  REQUIRE(api(e.port(), "PATCH", "/api/v1/staff/" + std::to_string(id), admin, json{{"disabled", true}}).status == 200);
  CHECK(login_call(e.port(), "khalid", "khalid-password-1").status == 401);
  CHECK(login_call(e.port(), "khalid", "khalid-password-1").status == 401);
  auto third = login_call(e.port(), "khalid", "khalid-password-1");
  CHECK(third.status == 429);
  CHECK(as_json(third)["error"] == "locked");
}

TEST_CASE("staff auth: too many failures from one address are refused") {
  staff_env e;
  for (int i = 0; i < 10; ++i) CHECK(login_call(e.port(), "user" + std::to_string(i), "bad-password").status == 401);
  auto r = login_call(e.port(), "admin", "admin-password-1");
  CHECK(r.status == 429);
  CHECK(as_json(r)["error"] == "locked");
}

TEST_CASE("staff auth: behind a trusted proxy the throttle counts the client it names, IPv6 by /64") {
  staff_env e(std::map<std::string, std::string>{{"AOUN_TRUSTED_PROXIES", "127.0.0.1"}});
  auto from = [&](const std::string& client, const std::string& user, const std::string& pw) {
    return http_call(e.port(), "POST", "/api/v1/auth/login", json{{"username", user}, {"password", pw}}.dump(),
                     {{"X-Forwarded-For", client}});
  };
  // Ten failures from ten addresses of one /64 are one client's.
  for (int i = 0; i < 10; ++i) CHECK(from("2001:db8:5:6::" + std::to_string(i + 1), "user" + std::to_string(i), "bad-password").status == 401);
  CHECK(from("2001:db8:5:6:ffff::77", "admin", "admin-password-1").status == 429);
  // Another client behind the same proxy, and the proxy itself, are not blocked.
  CHECK(from("2001:db8:5:7::1", "admin", "admin-password-1").status == 200);
  CHECK(from("203.0.113.8", "admin", "admin-password-1").status == 200);
  CHECK(login_call(e.port(), "admin", "admin-password-1").status == 200);
}

TEST_CASE("staff auth: a staff member changes their own password; their other sessions end, this one stays") {
  staff_env e;
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");  // password "noura-password-1"
  auto other_tab = login(e.port(), "noura", "noura-password-1");
  const auto change = [&](const std::string& token, const json& body) {
    return api(e.port(), "POST", "/api/v1/me/password", token, body);
  };
  // Bad input changes nothing.
  CHECK(change(agent, json{{"new_password", "a-new-password-1"}}).status == 400);
  CHECK(change(agent, json{{"current_password", "noura-password-1"}, {"new_password", "short"}}).status == 400);
  CHECK(change(agent, json{{"current_password", "noura-password-1"}, {"new_password", "noura-password-1"}}).status == 400);
  CHECK(change(agent, json{{"current_password", 5}, {"new_password", "a-new-password-1"}}).status == 400);
  CHECK(http_call(e.port(), "POST", "/api/v1/me/password",
                  json{{"current_password", "noura-password-1"}, {"new_password", "a-new-password-1"}}.dump()).status == 401);
  auto wrong = change(agent, json{{"current_password", "not-my-password"}, {"new_password", "a-new-password-1"}});
  CHECK(wrong.status == 403);
  CHECK(login_call(e.port(), "noura", "noura-password-1").status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'auth.password_change_failed'") == 1);

  auto ok = change(agent, json{{"current_password", "noura-password-1"}, {"new_password", "a-new-password-1"}});
  REQUIRE_MESSAGE(ok.status == 200, ok.body);
  CHECK(api(e.port(), "GET", "/api/v1/me", agent).status == 200);       // this session stays
  CHECK(api(e.port(), "GET", "/api/v1/me", other_tab).status == 401);   // the others end
  CHECK(login_call(e.port(), "noura", "noura-password-1").status == 401);
  CHECK(login_call(e.port(), "noura", "a-new-password-1").status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'auth.password_changed'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE detail LIKE '%password-1%'") == 0);
  // An admin's reset still works, and ends this session too.
  auto id = db_value(e.db, "SELECT id FROM staff WHERE username = 'noura'");
  REQUIRE(api(e.port(), "PATCH", "/api/v1/staff/" + std::to_string(id), admin, json{{"password", "reset-by-admin-1"}}).status == 200);
  CHECK(api(e.port(), "GET", "/api/v1/me", agent).status == 401);
}

TEST_CASE("staff accounts: create, list without passwords, duplicates, disable") {
  staff_env e;
  auto admin = login(e.port());
  auto create = [&](json body) { return api(e.port(), "POST", "/api/v1/staff", admin, body); };
  auto c = create({{"username", "khalid"}, {"password", "khalid-pass-1"}, {"role", "agent"}, {"display_name", "خالد الشهري"}});
  REQUIRE_MESSAGE(c.status == 201, c.body);
  auto id = as_json(c)["id"].get<long long>();
  CHECK(as_json(c)["role"] == "agent");
  CHECK(create({{"username", "khalid"}, {"password", "another-pass-1"}, {"role", "agent"}, {"display_name", "x"}}).status == 409);
  CHECK(create({{"username", "short"}, {"password", "1234567"}, {"role", "agent"}, {"display_name", "x"}}).status == 400);
  CHECK(create({{"username", "bad role"}, {"password", "12345678"}, {"role", "agent"}, {"display_name", "x"}}).status == 400);
  CHECK(create({{"username", "roles"}, {"password", "12345678"}, {"role", "root"}, {"display_name", "x"}}).status == 400);
  CHECK(create({{"username", "nopass"}, {"role", "agent"}}).status == 400);
  auto list = api(e.port(), "GET", "/api/v1/staff", admin);
  REQUIRE(list.status == 200);
  CHECK(as_json(list)["staff"].size() == 2);
  CHECK(list.body.find("password") == std::string::npos);
  CHECK(list.body.find("scrypt") == std::string::npos);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'staff.create'") == 1);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE detail LIKE '%khalid-pass%'") == 0);

  auto k = login(e.port(), "khalid", "khalid-pass-1");
  auto p = api(e.port(), "PATCH", "/api/v1/staff/" + std::to_string(id), admin, json{{"disabled", true}});
  REQUIRE_MESSAGE(p.status == 200, p.body);
  CHECK(as_json(p)["disabled"] == true);
  CHECK(api(e.port(), "GET", "/api/v1/me", k).status == 401);
  CHECK(login_call(e.port(), "khalid", "khalid-pass-1").status == 401);
  auto self = as_json(api(e.port(), "GET", "/api/v1/me", admin))["staff"]["id"].get<long long>();
  CHECK(api(e.port(), "PATCH", "/api/v1/staff/" + std::to_string(self), admin, json{{"disabled", true}}).status == 409);
  CHECK(api(e.port(), "PATCH", "/api/v1/staff/999", admin, json{{"disabled", true}}).status == 404);
}

TEST_CASE("canned answers: the FAQ and the policy's tools, in both languages") {
  staff_env e;
  auto admin = login(e.port());
  auto r = api(e.port(), "GET", "/api/v1/canned-answers", admin);
  REQUIRE(r.status == 200);
  auto a = as_json(r)["answers"];
  bool faq_ar = false, regs_ar = false, form_en = false;
  for (auto& x : a) {
    CHECK(x["text"].is_string());
    CHECK(x["title"].is_string());
    if (x["id"] == "faq.services" && x["lang"] == "ar") faq_ar = true;
    if (x["id"] == "tool.regulations" && x["lang"] == "ar") regs_ar = true;
    if (x["id"] == "tool.support_form" && x["lang"] == "en") form_en = true;
  }
  CHECK(faq_ar);
  CHECK(regs_ar);
  CHECK(form_en);
}
