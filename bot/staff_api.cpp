// The staff REST API under /api/v1 (SPEC §4–5, docs/api.yaml, docs/staff.md): sign-in, the
// conversation queues and takeover, replies on the beneficiary's channel, cases and their
// workflow, staff accounts, reports, canned answers and the outbox's dead letters.
//
// Every handler authenticates first (bot/auth), validates its input completely before touching
// the database, then does its work in ONE write job: the state change, the beneficiary's
// notification (transcript + outbox), the audit-log row and the stream events all commit
// together or not at all. Job lambdas capture only references and trivial values (bot/db.hpp).
#include "bot/staff_api.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bot/auth.hpp"
#include "bot/client_limits.hpp"
#include "bot/db.hpp"
#include "bot/http_error.hpp"
#include "bot/log.hpp"
#include "bot/password.hpp"
#include "bot/staff_logic.hpp"
#include "channels/crypto.hpp"
#include "channels/sms.hpp"
#include "storage/cases_admin.hpp"
#include "storage/conversations.hpp"
#include "storage/media_copies.hpp"
#include "storage/outbox.hpp"
#include "storage/reports.hpp"
#include "storage/staff.hpp"
#include "storage/uploads.hpp"

namespace aoun::bot {
namespace {

using nlohmann::json;
namespace sl = staff_logic;

constexpr std::size_t max_text = 4096;
constexpr std::size_t max_note = 2000;

// Constant after start-up.
struct api_state {
  login_throttle throttle{10, 15 * 60};
  unknown_user_lockout unknown_users;
  // Sign-ins whose password check (scrypt, on a small pool) is queued or running: beyond
  // max_logins_in_flight the answer is 503 at once, so a flood of guesses (which the throttle
  // counts only once they fail) cannot queue staff's own sign-ins behind minutes of scrypt.
  static constexpr int max_logins_in_flight = 8;
  std::atomic<int> logins_in_flight{0};
  std::string dummy_hash;  // verified against for unknown usernames, so timing does not tell
  json canned;             // locales/canned.json
};

/// What a write job decided: a body for 200/201, or an error with optional extra fields.
struct outcome {
  int status = 200;
  api_error err = api_error::internal;
  std::string message;
  json body;
  json extra;
};

outcome ok(json body, int status = 200) {
  outcome o;
  o.status = status;
  o.body = std::move(body);
  return o;
}
outcome fail(api_error e, std::string message, json extra = nullptr) {
  outcome o;
  o.status = static_cast<int>(status_of(e));
  o.err = e;
  o.message = std::move(message);
  o.extra = std::move(extra);
  return o;
}

response respond(request_context& ctx, const outcome& o) {
  if (o.status < 300)
    return json_response(ctx.req.version(), ctx.req.keep_alive(), o.body.dump(), static_cast<http::status>(o.status));
  if (o.extra.is_object()) {
    json j{{"error", code_of(o.err)}, {"message", o.message}};
    j.update(o.extra);
    return json_response(ctx.req.version(), ctx.req.keep_alive(), j.dump(), status_of(o.err));
  }
  return error_response(ctx.req.version(), ctx.req.keep_alive(), o.err, o.message);
}

response bad_request(request_context& ctx, std::string_view msg) {
  return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::malformed, msg);
}

response db_failed(request_context& ctx, const boost::system::error_code& ec) {
  log::error("staff_api_db_failed", {{"rid", ctx.request_id}, {"route", ctx.route}, {"error", ec.message()}});
  return error_response(ctx.req.version(), false, api_error::unavailable, "database unavailable; try again");
}

/// The request body as a JSON object; an empty body is {} when `allow_empty`.
std::optional<json> body_object(request_context& ctx, bool allow_empty) {
  const auto& b = ctx.req.body();
  if (b.empty() || b.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (allow_empty) return json::object();
    return std::nullopt;
  }
  auto j = json::parse(b, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::optional<std::int64_t> id_param(request_context& ctx) {
  auto it = ctx.params.find("id");
  if (it == ctx.params.end() || it->second.empty() || it->second.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  for (char c : it->second) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v > 0 ? std::optional<std::int64_t>(v) : std::nullopt;
}

/// An optional string field: nullopt when absent or null; `bad` set when of another type.
std::optional<std::string> opt_string(const json& j, const char* key, bool& bad) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_string()) {
    bad = true;
    return std::nullopt;
  }
  return j[key].get<std::string>();
}

json staff_json(const storage::staff_row& s, std::int64_t now) {
  return json{{"id", s.id},
              {"username", s.username},
              {"display_name", s.display_name},
              {"role", s.role},
              {"disabled", s.disabled},
              {"locked", s.locked_until > now},
              {"created_at", s.created_at}};
}
json staff_brief(const storage::staff_row& s) {
  return json{{"id", s.id}, {"username", s.username}, {"display_name", s.display_name}, {"role", s.role}};
}

std::string conv_target(std::int64_t id) { return "conversation:" + std::to_string(id); }

channels::kind channel_kind(const storage::conversation_row& conv) {
  return channels::kind_from_string(conv.channel).value_or(channels::kind::webchat);
}

bool holds(const storage::conversation_row& conv, const storage::staff_row& me) {
  return conv.mode == "staff" && conv.assigned_staff_id && *conv.assigned_staff_id == me.id;
}

/// Release/resolve/reply: the holder, or a supervisor or admin.
bool may_act(const storage::conversation_row& conv, const storage::staff_row& me) {
  return holds(conv, me) || sl::role_rank(me.role) >= sl::supervisor;
}

json case_out(const storage::case_row& k) {
  auto j = conversation_ops::case_json(k);
  j["national_id"] = sl::ascii_digits(k.national_id);
  return j;
}

constexpr std::int64_t view_audit_seconds = 3600;

boost::system::error_code audit(storage::connection& c, const storage::staff_row& me, std::string_view action,
                                std::string_view target, const json& detail, std::int64_t now) {
  return storage::audit(c, me.id, action, target, detail.dump(), now);
}

/// Loads locales/canned.json: {"ar": [{"id","title","text"}...], "en": [...]}. Start-up only:
/// throws config_error naming the file.
json load_canned(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw config_error("cannot read '" + path + "' (canned answers)");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw config_error("'" + path + "': not a JSON object");
  json out = json::array();
  for (auto& [lang, list] : j.items()) {
    if (!list.is_array()) throw config_error("'" + path + "': '" + lang + "' is not an array");
    for (auto& a : list) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_string() || !a.contains("title") ||
          !a["title"].is_string() || !a.contains("text") || !a["text"].is_string())
        throw config_error("'" + path + "': every answer of '" + lang + "' needs string id, title and text");
      out.push_back({{"id", a["id"]}, {"title", a["title"]}, {"text", a["text"]}, {"lang", lang}});
    }
  }
  return out;
}

using staff_handler = std::function<net::awaitable<response>(request_context&, const storage::staff_row&)>;

/// Wraps a handler with authentication and the minimum role.
handler guarded(const services& s, int min_rank, staff_handler f) {
  return [&s, min_rank, f = std::move(f)](request_context& ctx) -> net::awaitable<response> {
    auto a = co_await authenticate(s, ctx, min_rank);
    if (!a.staff) co_return std::move(a.error);
    co_return co_await f(ctx, *a.staff);
  };
}

// ---------------------------------------------------------------------------------------------
// auth

struct login_result {
  int status = 401;  // 200, 401, 429
  bool unknown_user = false;  // no account that may sign in (none, or disabled): counted in memory
  storage::staff_row staff;
};

net::awaitable<response> login(const services& s, api_state& st, request_context& ctx) {
  auto now = unix_now();
  if (st.throttle.blocked(limit_key(ctx.remote), now))
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::locked,
                             "too many failed sign-ins from this address; try again later");
  auto body = body_object(ctx, false);
  if (!body || !(*body).contains("username") || !(*body)["username"].is_string() || !(*body).contains("password") ||
      !(*body)["password"].is_string())
    co_return bad_request(ctx, "expected {\"username\": string, \"password\": string}");
  auto username = (*body)["username"].get<std::string>();
  auto pw = (*body)["password"].get<std::string>();
  if (username.empty() || username.size() > 64 || pw.empty() || pw.size() > 256)
    co_return bad_request(ctx, "username (1-64) and password (1-256) are required");

  if (st.logins_in_flight.fetch_add(1) >= api_state::max_logins_in_flight) {
    st.logins_in_flight.fetch_sub(1);
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::unavailable,
                             "too many sign-ins at once; try again in a moment");
  }
  struct in_flight {
    std::atomic<int>& n;
    ~in_flight() { n.fetch_sub(1); }
  } counted{st.logins_in_flight};
  auto found = co_await db_read<std::optional<storage::staff_row>>(
      s.db, [&username](storage::connection& c) -> storage::result<std::optional<storage::staff_row>> {
        auto r = storage::find_staff_by_username(c, username);
        if (r) return std::optional<storage::staff_row>(std::move(*r));
        if (r.error() == storage::errc::not_found) return std::optional<storage::staff_row>();
        return r.error();
      });
  if (!found) co_return db_failed(ctx, found.error());
  const std::string& stored = *found ? (*found)->password_hash : st.dummy_hash;
  // scrypt runs for unknown users too, so the answer's timing does not reveal who exists.
  bool verified = co_await off_io<bool>([&pw, &stored] { return password::verify(pw, stored); });
  verified = verified && found->has_value();

  auto token = password::random_token();
  auto token_hash = password::sha256_hex(token);
  const int max_failures = s.cfg.max_failed_logins;
  const std::int64_t lock_until = now + s.cfg.lockout_seconds;
  const std::int64_t expires = now + s.cfg.token_ttl_seconds;
  auto r = co_await db_write<login_result>(s.db, [&](storage::connection& c) -> storage::result<login_result> {
    login_result out;
    json who{{"username", username.substr(0, 64)}};
    if (!found->has_value()) {
      who["reason"] = "unknown_user";
      if (auto ec = storage::audit(c, std::nullopt, "auth.login_failed", "", who.dump(), now)) return ec;
      out.unknown_user = true;
      return out;
    }
    auto fresh = storage::find_staff(c, (*found)->id);  // the lock as of now, not as of the read
    if (!fresh) return fresh.error();
    const auto target = "staff:" + std::to_string(fresh->id);
    if (fresh->disabled) {
      who["reason"] = "disabled";
      if (auto ec = storage::audit(c, fresh->id, "auth.login_failed", target, who.dump(), now)) return ec;
      out.unknown_user = true;  // locks in memory like a name that does not exist: it may not sign in either
      return out;
    }
    if (fresh->password_hash != (*found)->password_hash) {
      // The password was changed (a reset) while this one was being checked: what was checked
      // is no longer the password, and the change ended every session; no new one either.
      who["reason"] = "password_changed";
      if (auto ec = storage::audit(c, fresh->id, "auth.login_failed", target, who.dump(), now)) return ec;
      return out;
    }
    if (fresh->locked_until > now) {
      out.status = 429;
      who["reason"] = "locked";
      if (auto ec = storage::audit(c, fresh->id, "auth.login_failed", target, who.dump(), now)) return ec;
      return out;
    }
    if (!verified) {
      if (auto ec = storage::record_login_failure(c, fresh->id, max_failures, lock_until)) return ec;
      auto after = storage::find_staff(c, fresh->id);
      if (!after) return after.error();
      bool locked_now = after->locked_until > now;
      who["reason"] = "password";
      if (auto ec = storage::audit(c, fresh->id, "auth.login_failed", target, who.dump(), now)) return ec;
      if (locked_now)
        if (auto ec = storage::audit(c, fresh->id, "auth.locked", target,
                                     json{{"until", after->locked_until}}.dump(), now))
          return ec;
      out.status = locked_now ? 429 : 401;
      return out;
    }
    if (auto ec = storage::record_login_success(c, fresh->id)) return ec;
    if (auto ec = storage::delete_expired_sessions(c, now)) return ec;
    if (auto ec = storage::insert_session(c, token_hash, fresh->id, now, expires)) return ec;
    if (auto ec = storage::audit(c, fresh->id, "auth.login", target, "{}", now)) return ec;
    out.status = 200;
    out.staff = *fresh;
    return out;
  });
  if (!r) co_return db_failed(ctx, r.error());
  // A name that does not exist locks as an account would, so that the answer does not tell.
  if (r->unknown_user && st.unknown_users.failed(username.substr(0, 64), max_failures, s.cfg.lockout_seconds, now))
    r->status = 429;
  if (r->status != 200) st.throttle.failed(limit_key(ctx.remote), now);
  if (r->status == 429)
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::locked,
                             "this account is locked after repeated failed sign-ins; try again later");
  if (r->status != 200)
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::unauthenticated,
                             "wrong username or password");
  json j{{"token", token}, {"expires_at", expires}, {"staff", staff_brief(r->staff)}};
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), j.dump());
}

net::awaitable<response> logout(const services& s, request_context& ctx) {
  auto a = co_await authenticate(s, ctx, sl::agent);
  if (!a.staff) co_return std::move(a.error);
  auto now = unix_now();
  const auto& me = *a.staff;
  const auto& hash = a.token_hash;
  auto r = co_await db_write<int>(s.db, [&me, &hash, now](storage::connection& c) -> storage::result<int> {
    if (auto ec = storage::delete_session(c, hash)) return ec;
    if (auto ec = storage::audit(c, me.id, "auth.logout", "staff:" + std::to_string(me.id), "{}", now)) return ec;
    return 1;
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"ok", true}}.dump());
}

/// POST /api/v1/me/password {"current_password", "new_password"}: a staff member changes their
/// own password (the one an admin set is temporary). The current one is checked as a sign-in
/// is: scrypt on the pool, failures counted by the per-address throttle. Their other sessions
/// end; this one stays.
net::awaitable<response> change_password(const services& s, api_state& st, request_context& ctx) {
  auto a = co_await authenticate(s, ctx, sl::agent);
  if (!a.staff) co_return std::move(a.error);
  auto now = unix_now();
  if (st.throttle.blocked(limit_key(ctx.remote), now))
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::locked,
                             "too many failed sign-ins from this address; try again later");
  auto body = body_object(ctx, false);
  if (!body || !body->contains("current_password") || !(*body)["current_password"].is_string() ||
      !body->contains("new_password") || !(*body)["new_password"].is_string())
    co_return bad_request(ctx, "expected {\"current_password\": string, \"new_password\": string}");
  const auto current = (*body)["current_password"].get<std::string>();
  const auto fresh = (*body)["new_password"].get<std::string>();
  if (current.size() > 256) co_return bad_request(ctx, "current_password must be at most 256 bytes");
  if (sl::utf8_length(fresh) < 8 || fresh.size() > 256) co_return bad_request(ctx, "new_password must be 8-256 characters");
  if (fresh == current) co_return bad_request(ctx, "new_password must differ from the current one");
  if (st.logins_in_flight.fetch_add(1) >= api_state::max_logins_in_flight) {
    st.logins_in_flight.fetch_sub(1);
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::unavailable,
                             "too many sign-ins at once; try again in a moment");
  }
  const std::string checked = a.staff->password_hash;
  const bool ok = co_await off_io<bool>([&current, &checked] { return password::verify(current, checked); });
  std::string hashed;
  if (ok) hashed = co_await off_io<std::string>([&fresh] { return password::hash(fresh); });
  st.logins_in_flight.fetch_sub(1);
  const auto& me = *a.staff;
  const auto& token_hash = a.token_hash;
  auto r = co_await db_write<int>(s.db, [&](storage::connection& c) -> storage::result<int> {
    const auto target = "staff:" + std::to_string(me.id);
    if (!ok) {
      if (auto ec = storage::audit(c, me.id, "auth.password_change_failed", target, "{}", now)) return ec;
      return 403;
    }
    auto now_row = storage::find_staff(c, me.id);
    if (!now_row) return now_row.error();
    // Changed meanwhile (an admin's reset, another tab): what was checked is no longer it.
    if (now_row->password_hash != checked || now_row->disabled) return 409;
    if (auto ec = storage::update_staff(c, me.id, std::nullopt, std::nullopt, std::nullopt, hashed)) return ec;
    if (auto ec = storage::delete_other_sessions(c, me.id, token_hash)) return ec;
    if (auto ec = storage::audit(c, me.id, "auth.password_changed", target, "{}", now)) return ec;
    return 200;
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (*r == 403) {
    st.throttle.failed(limit_key(ctx.remote), now);
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::forbidden,
                             "the current password is wrong");
  }
  if (*r == 409)
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::conflict,
                             "the password was changed meanwhile; sign in again");
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"ok", true}}.dump());
}

// ---------------------------------------------------------------------------------------------
// conversations

net::awaitable<response> list_conversations(const services& s, request_context& ctx, const storage::staff_row& me) {
  std::string mode = ctx.query.count("mode") ? ctx.query.at("mode") : "all";
  if (mode != "waiting" && mode != "staff" && mode != "bot" && mode != "resolved" && mode != "all")
    co_return bad_request(ctx, "mode must be waiting, staff, bot, resolved or all");
  std::optional<std::int64_t> mine;
  if (ctx.query.count("mine") && (ctx.query.at("mine") == "1" || ctx.query.at("mine") == "true")) mine = me.id;
  int limit = 200;
  if (ctx.query.count("limit")) {
    // All of it a decimal number: stoi would take "5abc" as 5 and "1e3" as 1.
    const auto& v = ctx.query.at("limit");
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), limit);
    if (ec != std::errc() || end != v.data() + v.size() || limit < 1 || limit > 1000)
      co_return bad_request(ctx, "limit must be 1-1000");
  }
  auto now = unix_now();
  auto r = co_await db_read<json>(s.db, [&s, &mode, &mine, limit, now](storage::connection& c) -> storage::result<json> {
    auto list = storage::list_conversations(c, mode, mine, limit);
    if (!list) return list.error();
    json out = json::array();
    for (auto& conv : *list) out.push_back(s.ops.conversation_json(c, conv, now));
    return out;
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"conversations", *r}}.dump());
}

/// Whether `me` opened `target` (action `action`) within the last hour: one audit row per staff
/// member and thing per hour, since the console reads a page again as it changes.
storage::result<bool> viewed_lately(storage::connection& c, const storage::staff_row& me, std::string_view action,
                                    const std::string& target, std::int64_t now) {
  auto seen = c.prepare("SELECT 1 FROM audit_log WHERE at > ?1 AND staff_id = ?2 AND action = ?3 AND target = ?4");
  if (!seen) return storage::result<bool>(boost::system::in_place_error, seen.error());
  return seen->bind(1, now - view_audit_seconds).bind(2, me.id).bind(3, action).bind(4, target).step();
}

net::awaitable<response> get_conversation(const services& s, request_context& ctx, bool messages,
                                          const storage::staff_row& me) {
  auto id = id_param(ctx);
  if (!id) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such conversation");
  auto now = unix_now();
  const std::int64_t cid = *id;
  struct read {
    outcome o;
    bool audit = false;  // a transcript this member has not opened within the hour
  };
  auto r = co_await db_read<read>(s.db, [&s, &me, cid, now, messages](storage::connection& c) -> storage::result<read> {
    read out;
    auto conv = storage::find_conversation(c, cid);
    if (!conv) {
      if (conv.error() != storage::errc::not_found) return conv.error();
      out.o = fail(api_error::not_found, "no such conversation");
      return out;
    }
    if (!messages) {
      out.o = ok(s.ops.conversation_json(c, *conv, now));
      return out;
    }
    auto list = storage::list_messages(c, cid, 1000);
    if (!list) return list.error();
    json j = json::array();
    for (auto& m : *list) j.push_back(conversation_ops::message_json(m));
    auto seen = viewed_lately(c, me, "conversation.view", conv_target(cid), now);
    if (!seen) return seen.error();
    out.audit = !*seen;
    out.o = ok(json{{"messages", j}});
    return out;
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (r->audit) {
    // A transcript holds what the person wrote (an ID, what happened to them): who read it is
    // audited, before it is answered (no row, no transcript). Read on a reader, written apart:
    // the writer is not held while a thousand messages are read.
    auto w = co_await db_write<int>(s.db, [&me, cid, now](storage::connection& c) -> storage::result<int> {
      if (auto ec = audit(c, me, "conversation.view", conv_target(cid), json::object(), now)) return ec;
      return 1;
    });
    if (!w) co_return db_failed(ctx, w.error());
  }
  co_return respond(ctx, r->o);
}

/// Runs one write job for a conversation action and publishes what it collected.
template <class Job>
net::awaitable<response> conversation_job(const services& s, request_context& ctx, Job& job) {
  auto id = id_param(ctx);
  if (!id) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such conversation");
  after_commit fx;
  auto now = unix_now();
  const std::int64_t cid = *id;
  auto r = co_await db_write<outcome>(s.db, [&job, &fx, cid, now](storage::connection& c) -> storage::result<outcome> {
    auto conv = storage::find_conversation(c, cid);
    if (!conv) {
      if (conv.error() == storage::errc::not_found) return fail(api_error::not_found, "no such conversation");
      return conv.error();
    }
    return job(c, *conv, now, fx);
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (r->status < 300) s.after(fx);
  co_return respond(ctx, *r);
}

void end_staff_episode(storage::conversation_row& conv) {
  conv.assigned_staff_id.reset();
  conv.priority = 0;
  conv.queue_reason.clear();
}

net::awaitable<response> takeover(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto body = body_object(ctx, true);
  if (!body) co_return bad_request(ctx, "expected an empty body or {\"override\": true}");
  const bool has_override = body->contains("override") && !(*body)["override"].is_null();
  if (has_override && !(*body)["override"].is_boolean()) co_return bad_request(ctx, "override must be a boolean");
  const bool override_ = has_override && (*body)["override"].get<bool>();
  auto job = [&s, &me, override_](storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                                   after_commit& fx) -> storage::result<outcome> {
    if (holds(conv, me)) return ok(s.ops.conversation_json(c, conv, now));  // already yours
    std::optional<std::int64_t> previous;
    if (conv.mode == "staff" && conv.assigned_staff_id) {
      std::string holder = "another staff member";
      if (auto h = storage::find_staff(c, *conv.assigned_staff_id)) holder = h->display_name;
      if (!override_)
        return fail(api_error::conflict, holder + " holds this conversation",
                    json{{"held_by", {{"id", *conv.assigned_staff_id}, {"display_name", holder}}}});
      if (sl::role_rank(me.role) < sl::supervisor)
        return fail(api_error::forbidden, "only supervisors and admins may take over a colleague's conversation");
      previous = conv.assigned_staff_id;
    }
    std::string previous_mode = conv.mode;
    // A new episode for the time-to-first-response figure unless it was queued (or held) already.
    if (conv.mode != "waiting" && conv.mode != "staff") conv.queued_at = now;
    conv.mode = "staff";
    conv.assigned_staff_id = me.id;
    conv.updated_at = now;
    auto first = sl::first_name(me.display_name);
    if (first.empty()) first = me.username;
    // Outside WhatsApp's 24-hour window a free-form notice would fail (131047): nothing is
    // sent; staff are offered the template for their first words.
    if (conversation_ops::window_open(conv, now)) {
      if (auto ec = s.ops.notify(c, conv, "staff_joined", {{"name", first}}, now, fx)) return ec;
      // Their blue ticks: someone reads them now (after the notice, which it must not hold up).
      if (auto ec = s.ops.mark_read(c, conv, now, fx)) return ec;
    }
    if (auto ec = storage::save_conversation(c, conv)) return ec;
    json detail{{"previous_mode", previous_mode}};
    if (previous) detail["previous_staff_id"] = *previous;
    if (auto ec = audit(c, me, previous ? "conversation.override" : "conversation.takeover", conv_target(conv.id),
                        detail, now))
      return ec;
    s.ops.conversation_event(c, conv, now, fx);
    return ok(s.ops.conversation_json(c, conv, now));
  };
  co_return co_await conversation_job(s, ctx, job);
}

net::awaitable<response> release(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto job = [&s, &me](storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                       after_commit& fx) -> storage::result<outcome> {
    if (conv.mode != "staff" && conv.mode != "waiting")
      return fail(api_error::conflict, "the conversation is not with staff (mode " + conv.mode + ")");
    if (!may_act(conv, me))
      return fail(api_error::forbidden, "only the staff member holding the conversation, or a supervisor, may release it");
    bool was_staff = conv.mode == "staff";
    auto holder = conv.assigned_staff_id;
    // Outside WhatsApp's 24-hour window nothing free-form can reach them: the dialog starts
    // over without a word, and goes on when they write.
    const bool open = conversation_ops::window_open(conv, now);
    if (was_staff && open)
      if (auto ec = s.ops.notify(c, conv, "staff_left", {}, now, fx)) return ec;
    conv.mode = "bot";
    end_staff_episode(conv);
    conv.updated_at = now;
    if (auto ec = s.ops.back_to_bot(c, conv, now, fx, !open)) return ec;
    if (auto ec = storage::save_conversation(c, conv)) return ec;
    json detail{{"previous_mode", was_staff ? "staff" : "waiting"}};
    if (holder) detail["holder_staff_id"] = *holder;
    if (auto ec = audit(c, me, "conversation.release", conv_target(conv.id), detail, now)) return ec;
    s.ops.conversation_event(c, conv, now, fx);
    return ok(s.ops.conversation_json(c, conv, now));
  };
  co_return co_await conversation_job(s, ctx, job);
}

net::awaitable<response> resolve(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto job = [&s, &me](storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                       after_commit& fx) -> storage::result<outcome> {
    if (conv.mode != "staff" && conv.mode != "waiting")
      return fail(api_error::conflict, "the conversation is not with staff (mode " + conv.mode + ")");
    if (!may_act(conv, me))
      return fail(api_error::forbidden, "only the staff member holding the conversation, or a supervisor, may resolve it");
    bool was_staff = conv.mode == "staff";
    // Resolved from the queue, nobody spoke with the person: the survey is credited to no one.
    std::optional<std::int64_t> holder = was_staff ? conv.assigned_staff_id : std::nullopt;
    // Outside WhatsApp's 24-hour window neither the notice nor the survey could reach them
    // (131047), and a survey waiting for an answer would take their next message, perhaps a
    // new incident, for a score: neither is sent.
    const bool open = conversation_ops::window_open(conv, now);
    if (was_staff && open)
      if (auto ec = s.ops.notify(c, conv, "staff_left", {}, now, fx)) return ec;
    conv.mode = "resolved";
    conv.resolved_at = now;
    end_staff_episode(conv);
    conv.updated_at = now;
    // The survey counts for the person who held the conversation, and for the service of its
    // latest case when there is one.
    std::optional<std::string> service;
    std::optional<std::int64_t> case_id;
    if (auto ks = storage::cases_of_conversation(c, conv.id); ks && !ks->empty()) {
      service = ks->back().service_type;
      case_id = ks->back().id;
    }
    if (open)
      if (auto ec = s.ops.start_survey(c, conv, "conversation_resolved", case_id, holder, service, now, fx)) return ec;
    if (auto ec = storage::save_conversation(c, conv)) return ec;
    if (auto ec = audit(c, me, "conversation.resolve", conv_target(conv.id), json{{"holder_staff_id", holder ? json(*holder) : json(nullptr)}}, now))
      return ec;
    s.ops.conversation_event(c, conv, now, fx);
    return ok(s.ops.conversation_json(c, conv, now));
  };
  co_return co_await conversation_job(s, ctx, job);
}

json window_closed_extra(const services& s) { return json{{"template", s.cfg.whatsapp_template}}; }

/// Why nothing can be sent in this conversation ("" when something can): an SMS beneficiary who
/// texted STOP, or a Telegram group.
storage::result<std::string> unreachable(storage::connection& c, const storage::conversation_row& conv) {
  if (conv.channel == "telegram" && conversation_ops::telegram_group(conv.address))
    return std::string("this is a Telegram group or channel: the bot does not write to groups");
  if (conversation_ops::retired_address(conv.address))
    return std::string("this number now belongs to someone else: nothing can be sent to this beneficiary there");
  if (conversation_ops::opted_out_reason(conv.channel).empty()) return std::string();
  auto out = storage::opted_out(c, conv.channel, conv.address);
  if (!out) return out.error();
  if (!*out) return std::string();
  return std::string(conv.channel == "sms"
                         ? "the beneficiary texted STOP: nothing can be sent by SMS until they text START"
                         : "the beneficiary blocked the bot on Telegram: nothing can be sent until they write to it again");
}

net::awaitable<response> post_message(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto body = body_object(ctx, false);
  if (!body || !body->contains("text") || !(*body)["text"].is_string())
    co_return bad_request(ctx, "expected {\"text\": string}");
  auto text = (*body)["text"].get<std::string>();
  auto len = sl::utf8_length(text);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos || len > max_text)
    co_return bad_request(ctx, "text must be 1-4096 characters");
  auto job = [&s, &me, &text](storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                              after_commit& fx) -> storage::result<outcome> {
    if (conv.mode != "staff") return fail(api_error::conflict, "take over the conversation before replying");
    if (!may_act(conv, me))
      return fail(api_error::forbidden, "only the staff member holding the conversation, or a supervisor, may reply");
    // Twilio takes at most 1,600 characters: a longer reply would reach the person cut, its end
    // (often what to do next) lost, while the transcript shows it whole.
    if (conv.channel == "sms" && sl::utf8_length(text) > channels::sms::max_body_code_points)
      return fail(api_error::malformed, "an SMS reply takes at most 1600 characters: split it into several");
    if (auto why = unreachable(c, conv); !why) return why.error();
    else if (!why->empty()) return fail(api_error::conflict, *why);
    if (!conversation_ops::window_open(conv, now))
      return fail(api_error::conflict,
                  "WhatsApp's 24-hour window is closed (no message from the beneficiary in the last 24 hours): "
                  "use the approved template '" + s.cfg.whatsapp_template + "'",
                  window_closed_extra(s));
    channels::outgoing o;
    o.channel = channel_kind(conv);
    o.to = conv.address;
    o.text = text;
    if (!conv.first_staff_reply_at || (conv.queued_at && *conv.first_staff_reply_at < *conv.queued_at))
      conv.first_staff_reply_at = now;
    conv.updated_at = now;
    auto mid = s.ops.send(c, conv, o, "staff", me.id, now, fx);
    if (!mid) return mid.error();
    if (auto ec = s.ops.mark_read(c, conv, now, fx)) return ec;  // behind the reply: never holds it
    auto m = storage::find_message(c, *mid);
    if (!m) return m.error();
    if (auto ec = audit(c, me, "conversation.message", conv_target(conv.id),
                        json{{"message_id", *mid}, {"length", text.size()}}, now))
      return ec;
    s.ops.conversation_event(c, conv, now, fx);
    return ok(conversation_ops::message_json(*m));
  };
  co_return co_await conversation_job(s, ctx, job);
}

net::awaitable<response> post_template(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto body = body_object(ctx, false);
  if (!body || !body->contains("name") || !(*body)["name"].is_string())
    co_return bad_request(ctx, "expected {\"name\": string, \"params\": [string...]}");
  auto name = (*body)["name"].get<std::string>();
  if (name != s.cfg.whatsapp_template)
    co_return bad_request(ctx, "'" + std::string(channels::crypto::truncate_code_points(name, 64)) +
                                   "' is not an approved template; use '" +
                                   s.cfg.whatsapp_template + "'");
  std::vector<std::string> params;
  if (body->contains("params") && !(*body)["params"].is_null()) {
    const auto& p = (*body)["params"];
    if (!p.is_array() || p.size() > 10) co_return bad_request(ctx, "params must be an array of at most 10 strings");
    for (auto& v : p) {
      if (!v.is_string() || sl::utf8_length(v.get<std::string>()) > 1024)
        co_return bad_request(ctx, "params must be strings of at most 1024 characters");
      // Meta refuses a body parameter with a line break, a tab or more than four spaces in a
      // row (132018), after it was queued: refused here, in words, before anything is sent.
      const auto& t = v.get_ref<const std::string&>();
      if (t.find_first_of("\n\r\t") != std::string::npos || t.find("     ") != std::string::npos || t.empty())
        co_return bad_request(ctx, "a template parameter must be non-empty, on one line, without tabs or more than four spaces in a row");
      params.push_back(t);
    }
  }
  auto job = [&s, &me, &name, &params](storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                                       after_commit& fx) -> storage::result<outcome> {
    if (conv.channel != "whatsapp")
      return fail(api_error::conflict, "templates are for WhatsApp only; other channels have no 24-hour window");
    if (conv.mode == "staff" && !may_act(conv, me))
      return fail(api_error::forbidden, "another staff member holds this conversation");
    if (auto why = unreachable(c, conv); !why) return why.error();
    else if (!why->empty()) return fail(api_error::conflict, *why);
    channels::outgoing o;
    o.channel = channels::kind::whatsapp;
    o.to = conv.address;
    o.template_name = name;
    o.template_lang = conv.lang == "en" ? "en" : "ar";
    o.template_params = params;
    o.text = s.ops.engine()->text(conv.lang, "outside_window_notice");  // our copy for the transcript
    if (conv.mode == "staff" &&
        (!conv.first_staff_reply_at || (conv.queued_at && *conv.first_staff_reply_at < *conv.queued_at)))
      conv.first_staff_reply_at = now;
    conv.updated_at = now;
    auto mid = s.ops.send(c, conv, o, "staff", me.id, now, fx);
    if (!mid) return mid.error();
    auto m = storage::find_message(c, *mid);
    if (!m) return m.error();
    if (auto ec = audit(c, me, "conversation.template", conv_target(conv.id),
                        json{{"message_id", *mid}, {"template", name}}, now))
      return ec;
    s.ops.conversation_event(c, conv, now, fx);
    return ok(conversation_ops::message_json(*m));
  };
  co_return co_await conversation_job(s, ctx, job);
}

net::awaitable<response> request_documents(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto body = body_object(ctx, false);
  if (!body || !body->contains("reference") || !(*body)["reference"].is_string() ||
      (*body)["reference"].get<std::string>().empty() || (*body)["reference"].get<std::string>().size() > 64)
    co_return bad_request(ctx, "expected {\"reference\": \"AWN-...\"}");
  auto reference = (*body)["reference"].get<std::string>();
  auto job = [&s, &me, &reference](storage::connection& c, storage::conversation_row& conv, std::int64_t now,
                                   after_commit& fx) -> storage::result<outcome> {
    // The conversation goes back to the bot: from a colleague's hands, or out of the queue (a
    // supervisor's call, as release and resolve: danger cases wait there too).
    if (conv.mode == "staff" && !may_act(conv, me))
      return fail(api_error::forbidden, "another staff member holds this conversation");
    if (conv.mode == "waiting" && !may_act(conv, me))
      return fail(api_error::forbidden, "the conversation is waiting in the queue: take it over first");
    auto k = storage::find_case_by_reference(c, reference);
    if (!k) {
      if (k.error() == storage::errc::not_found) return fail(api_error::not_found, "no such case");
      return k.error();
    }
    if (k->beneficiary_id != conv.beneficiary_id)
      return fail(api_error::conflict, "the case belongs to another beneficiary");
    if (!conversation_ops::window_open(conv, now))
      return fail(api_error::conflict,
                  "WhatsApp's 24-hour window is closed: send the approved template '" + s.cfg.whatsapp_template +
                      "' first and ask again once the beneficiary answers",
                  window_closed_extra(s));
    if (auto why = unreachable(c, conv); !why) return why.error();
    else if (!why->empty()) return fail(api_error::conflict, *why);
    // Asking wipes what the person is in the middle of answering (a new request, say, or
    // the one paused while staff talk with them): that is theirs to finish or cancel first.
    if (s.ops.engine()->busy(dialogs::state::parse(conv.dialog_state)))
      return fail(api_error::conflict,
                  "the beneficiary is in the middle of a form with the bot (a new request, say); asking for "
                  "documents now would erase their answers: ask again once they have finished");
    // The bot collects the documents (it attaches each one to the case), so the conversation
    // goes back to the bot; the staff member can take it again at any time.
    std::string previous_mode = conv.mode;
    const auto holder = conv.assigned_staff_id;
    if (conv.mode != "bot") {
      conv.mode = "bot";
      end_staff_episode(conv);
    }
    conv.updated_at = now;
    if (auto ec = s.ops.request_documents(c, conv, k->reference, now, fx)) return ec;
    if (auto ec = storage::save_conversation(c, conv)) return ec;
    if (auto ec = audit(c, me, "conversation.request_documents", conv_target(conv.id),
                        json{{"reference", k->reference}, {"previous_mode", previous_mode},
                             {"holder_staff_id", previous_mode == "staff" && holder ? json(*holder) : json(nullptr)}},
                        now))
      return ec;
    s.ops.conversation_event(c, conv, now, fx);
    return ok(s.ops.conversation_json(c, conv, now));
  };
  co_return co_await conversation_job(s, ctx, job);
}

// ---------------------------------------------------------------------------------------------
// cases

storage::result<json> case_detail(storage::connection& c, const storage::case_row& k) {
  auto j = case_out(k);
  auto events = storage::list_case_events(c, k.id);
  if (!events) return events.error();
  json ev = json::array();
  for (auto& e : *events)
    ev.push_back({{"from", e.from ? json(*e.from) : json(nullptr)},
                  {"to", e.to},
                  {"staff_name", e.staff_id ? json(e.staff_name) : json(nullptr)},
                  {"note", e.note},
                  {"at", e.at}});
  j["events"] = ev;
  auto docs = storage::list_case_documents(c, k.id);
  if (!docs) return docs.error();
  json dj = json::array();
  for (auto& d : *docs)
    dj.push_back({{"id", d.id},
                  {"message_id", d.message_id ? json(*d.message_id) : json(nullptr)},
                  {"media_kind", d.media_kind},
                  {"media_id", d.media_id},
                  {"mime", d.mime},
                  {"filename", d.filename},
                  {"at", d.at}});
  j["documents"] = dj;
  j["allowed_transitions"] = sl::allowed_transitions(k.step);
  return j;
}

net::awaitable<response> list_cases(const services& s, request_context& ctx) {
  std::string step = ctx.query.count("step") ? ctx.query.at("step") : "";
  if (!step.empty() && !sl::is_step(step))
    co_return bad_request(ctx, "step must be submitted, collecting_info, evaluating, approved, rejected or closed");
  auto r = co_await db_read<json>(s.db, [&step](storage::connection& c) -> storage::result<json> {
    auto list = storage::list_cases(c, step, 1000);
    if (!list) return list.error();
    json out = json::array();
    // Not the national IDs, mobiles and descriptions of every case: a case's own page has them.
    for (auto& k : *list) out.push_back(conversation_ops::case_listed_json(k));
    return out;
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"cases", *r}}.dump());
}

net::awaitable<response> get_case(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto ref = percent_decode(ctx.params["ref"]);
  const auto now = unix_now();
  // A write: the page carries the national ID, the mobile and the person's own account, so
  // who opened it is audited in the same transaction (no row, no page). One row per staff
  // member and case per hour: the console reads a case again each time it changes.
  auto r = co_await db_write<outcome>(s.db, [&ref, &me, now](storage::connection& c) -> storage::result<outcome> {
    auto k = storage::find_case_by_reference(c, ref);
    if (!k) {
      if (k.error() == storage::errc::not_found) return fail(api_error::not_found, "no such case");
      return k.error();
    }
    auto d = case_detail(c, *k);
    if (!d) return d.error();
    const std::string target = "case:" + k->reference;
    auto row = viewed_lately(c, me, "case.view", target, now);
    if (!row) return row.error();
    if (!*row)
      if (auto ec = audit(c, me, "case.view", target, json::object(), now)) return ec;
    return ok(std::move(*d));
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return respond(ctx, *r);
}

net::awaitable<response> transition(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto ref = percent_decode(ctx.params["ref"]);
  auto body = body_object(ctx, false);
  if (!body || !body->contains("to") || !(*body)["to"].is_string())
    co_return bad_request(ctx, "expected {\"to\": step, \"note\"?: string, \"verification_method\"?: string, "
                               "\"appointment\"?: ISO 8601}");
  auto to = (*body)["to"].get<std::string>();
  if (!sl::is_step(to))
    co_return bad_request(ctx, "to must be submitted, collecting_info, evaluating, approved, rejected or closed");
  bool bad = false;
  auto note = opt_string(*body, "note", bad).value_or("");
  auto method = opt_string(*body, "verification_method", bad);
  auto appointment = opt_string(*body, "appointment", bad);
  if (bad) co_return bad_request(ctx, "note, verification_method and appointment must be strings");
  if (sl::utf8_length(note) > max_note) co_return bad_request(ctx, "note must be at most 2000 characters");
  if (method && method->empty()) method.reset();
  if (appointment && appointment->empty()) appointment.reset();
  if (to == "collecting_info") {
    if (!method || !sl::is_verification_method(*method))
      co_return bad_request(ctx, "verification_method (document_check, interview or field_visit) is required to "
                                 "start collecting information");
    if (appointment && !sl::valid_iso8601(*appointment))
      co_return bad_request(ctx, "appointment must be an ISO 8601 date or date-time, e.g. 2026-05-03T10:00");
  } else if (method || appointment) {
    co_return bad_request(ctx, "verification_method and appointment are set only with to = collecting_info");
  }

  after_commit fx;
  auto now = unix_now();
  auto r = co_await db_write<outcome>(s.db, [&](storage::connection& c) -> storage::result<outcome> {
    auto k = storage::find_case_by_reference(c, ref);
    if (!k) {
      if (k.error() == storage::errc::not_found) return fail(api_error::not_found, "no such case");
      return k.error();
    }
    auto allowed = sl::allowed_transitions(k->step);
    if (std::find(allowed.begin(), allowed.end(), to) == allowed.end()) {
      std::string list;
      for (auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return fail(api_error::conflict,
                  "a case at '" + k->step + "' cannot move to '" + to + "'" +
                      (list.empty() ? std::string(" (it is closed)") : "; allowed: " + list),
                  json{{"allowed_transitions", allowed}, {"step", k->step}});
    }
    const std::string from = k->step;
    if (auto ec = storage::set_case_step(c, k->id, from, to, method, appointment, now)) {
      if (ec == storage::errc::not_found) return fail(api_error::conflict, "the case changed meanwhile; reload it");
      return ec;
    }
    if (auto ec = storage::insert_case_event(c, k->id, from, to, me.id, note, now)) return ec;
    json detail{{"from", from}, {"to", to}};
    if (method) detail["verification_method"] = *method;
    if (appointment) detail["appointment"] = *appointment;
    if (auto ec = audit(c, me, "case.transition", "case:" + k->reference, detail, now)) return ec;
    auto fresh = storage::find_case_by_reference(c, ref);
    if (!fresh) return fresh.error();

    // Tell the beneficiary, in their language and channel.
    if (fresh->conversation_id) {
      auto conv = storage::find_conversation(c, *fresh->conversation_id);
      if (!conv) return conv.error();
      auto eng = s.ops.engine();
      std::map<std::string, std::string> vars{{"reference", fresh->reference}, {"method", ""}, {"appointment", ""}};
      if (fresh->verification_method) vars["method"] = eng->text(conv->lang, "method." + *fresh->verification_method);
      if (fresh->appointment) vars["appointment"] = sl::appointment_display(*fresh->appointment);
      bool open = conversation_ops::window_open(*conv, now);
      if (open) {
        if (auto ec = s.ops.notify(c, *conv, "case_step." + to, vars, now, fx)) return ec;
      } else {
        // Outside WhatsApp's 24-hour window only an approved template may be sent: it asks the
        // beneficiary to reply, and the update can follow once they do.
        channels::outgoing o;
        o.channel = channels::kind::whatsapp;
        o.to = conv->address;
        o.template_name = s.cfg.whatsapp_template;
        o.template_lang = conv->lang == "en" ? "en" : "ar";
        o.text = eng->text(conv->lang, "outside_window_notice");
        if (auto id = s.ops.send(c, *conv, o, "system", std::nullopt, now, fx); !id) return id.error();
      }
      // A closed case invites the beneficiary to rate the service while the bot is talking
      // with them: not while a person is (their resolve sends the survey), nor while
      // they wait for one (a survey would answer someone who asked for help, danger words
      // perhaps, with "rate us"); not with the window closed; not in the middle of answering
      // the bot (a new request, say: the survey would wipe their answers), nor of a survey
      // already (a second one would orphan the first). Attributed to no staff member: the
      // one who closed the case need not be the one who spoke with the person.
      const auto dialog = dialogs::state::parse(conv->dialog_state);
      if (to == "closed" && conv->mode != "staff" && conv->mode != "waiting" && open && !eng->busy(dialog) && dialog.flow != "survey")
        if (auto ec = s.ops.start_survey(c, *conv, "case_closed", fresh->id, std::nullopt, fresh->service_type, now, fx))
          return ec;
      if (auto ec = storage::save_conversation(c, *conv)) return ec;
      s.ops.conversation_event(c, *conv, now, fx);
    }
    fx.events.push_back({"staff", json{{"type", "case.updated"}, {"case", conversation_ops::case_listed_json(*fresh)}}.dump()});
    auto d = case_detail(c, *fresh);
    if (!d) return d.error();
    return ok(std::move(*d));
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (r->status < 300) s.after(fx);
  co_return respond(ctx, *r);
}

// ---------------------------------------------------------------------------------------------
// staff accounts

net::awaitable<response> list_staff(const services& s, request_context& ctx) {
  auto now = unix_now();
  auto r = co_await db_read<json>(s.db, [now](storage::connection& c) -> storage::result<json> {
    auto list = storage::list_staff(c);
    if (!list) return list.error();
    json out = json::array();
    for (auto& m : *list) out.push_back(staff_json(m, now));
    return out;
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"staff", *r}}.dump());
}

net::awaitable<response> create_staff(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto body = body_object(ctx, false);
  bool bad = !body;
  std::optional<std::string> username, pw, role, display;
  if (body) {
    username = opt_string(*body, "username", bad);
    pw = opt_string(*body, "password", bad);
    role = opt_string(*body, "role", bad);
    display = opt_string(*body, "display_name", bad);
  }
  if (bad || !username || !pw || !role)
    co_return bad_request(ctx, "expected {\"username\", \"password\", \"role\", \"display_name\"} (strings)");
  if (!sl::valid_username(*username))
    co_return bad_request(ctx, "username must be 3-64 characters of a-z, 0-9, '.', '_' or '-'");
  if (sl::utf8_length(*pw) < 8 || pw->size() > 256) co_return bad_request(ctx, "password must be 8-256 characters");
  if (sl::role_rank(*role) < 0) co_return bad_request(ctx, "role must be agent, supervisor or admin");
  std::string name = display ? *display : *username;
  if (name.find_first_not_of(" \t") == std::string::npos || sl::utf8_length(name) > 100)
    co_return bad_request(ctx, "display_name must be 1-100 characters");
  const std::string& plain = *pw;
  auto hashed = co_await off_io<std::string>([&plain] { return password::hash(plain); });
  auto now = unix_now();
  auto r = co_await db_write<outcome>(s.db, [&](storage::connection& c) -> storage::result<outcome> {
    storage::staff_row row;
    row.username = *username;
    row.display_name = name;
    row.role = *role;
    row.password_hash = hashed;
    row.created_at = now;
    auto id = storage::insert_staff(c, row);
    if (!id) {
      if (id.error() == storage::errc::constraint) return fail(api_error::conflict, "this username is taken");
      return id.error();
    }
    row.id = *id;
    if (auto ec = audit(c, me, "staff.create", "staff:" + std::to_string(*id),
                        json{{"username", row.username}, {"role", row.role}}, now))
      return ec;
    return ok(staff_json(row, now), 201);
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return respond(ctx, *r);
}

net::awaitable<response> update_staff(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto id = id_param(ctx);
  if (!id) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such staff member");
  auto body = body_object(ctx, false);
  if (!body) co_return bad_request(ctx, "expected a JSON object");
  bool bad = false;
  auto role = opt_string(*body, "role", bad);
  auto display = opt_string(*body, "display_name", bad);
  auto pw = opt_string(*body, "password", bad);
  std::optional<bool> disabled;
  if (body->contains("disabled") && !(*body)["disabled"].is_null()) {
    if (!(*body)["disabled"].is_boolean()) bad = true;
    else disabled = (*body)["disabled"].get<bool>();
  }
  if (bad) co_return bad_request(ctx, "role, display_name, password are strings; disabled is a boolean");
  // A body naming none of them (a typo such as "rol") would otherwise answer 200 and audit a
  // change that did not happen.
  if (!role && !display && !pw && !disabled)
    co_return bad_request(ctx, "nothing to change: give role, display_name, password or disabled");
  if (role && sl::role_rank(*role) < 0) co_return bad_request(ctx, "role must be agent, supervisor or admin");
  if (display && (display->find_first_not_of(" \t") == std::string::npos || sl::utf8_length(*display) > 100))
    co_return bad_request(ctx, "display_name must be 1-100 characters");
  if (pw && (sl::utf8_length(*pw) < 8 || pw->size() > 256)) co_return bad_request(ctx, "password must be 8-256 characters");
  if (*id == me.id && ((disabled && *disabled) || (role && *role != "admin")))
    co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::conflict,
                             "you cannot disable or demote your own account");
  std::optional<std::string> hashed;
  if (pw) {
    const std::string& plain = *pw;
    hashed = co_await off_io<std::string>([&plain] { return password::hash(plain); });
  }
  auto now = unix_now();
  const std::int64_t sid = *id;
  after_commit fx;
  auto r = co_await db_write<outcome>(s.db, [&](storage::connection& c) -> storage::result<outcome> {
    fx = {};
    if (auto ec = storage::update_staff(c, sid, role, display, disabled, hashed)) {
      if (ec == storage::errc::not_found) return fail(api_error::not_found, "no such staff member");
      return ec;
    }
    if ((disabled && *disabled) || hashed)
      if (auto ec = storage::delete_sessions_of(c, sid)) return ec;
    if (disabled && *disabled) {
      // What they held goes back to the queue, in its place (its queue time and priority
      // kept): no one else may write in a held conversation, and the bot stays silent in it,
      // so the person would wait for someone who can no longer sign in.
      auto held = storage::list_conversations(c, "staff", sid, std::numeric_limits<int>::max());
      if (!held) return held.error();
      for (auto& conv : *held) {
        conv.mode = "waiting";
        conv.assigned_staff_id.reset();
        if (!conv.queued_at) conv.queued_at = now;
        if (conv.queue_reason.empty()) conv.queue_reason = "holder_disabled";
        conv.updated_at = now;
        if (auto ec = storage::save_conversation(c, conv)) return ec;
        if (auto ec = audit(c, me, "conversation.requeue", conv_target(conv.id),
                            json{{"holder_staff_id", sid}, {"reason", "holder_disabled"}}, now))
          return ec;
        s.ops.conversation_event(c, conv, now, fx, "conversation.waiting");
      }
    }
    json detail = json::object();
    if (role) detail["role"] = *role;
    if (display) detail["display_name"] = *display;
    if (disabled) detail["disabled"] = *disabled;
    if (hashed) detail["password_changed"] = true;
    if (auto ec = audit(c, me, "staff.update", "staff:" + std::to_string(sid), detail, now)) return ec;
    auto row = storage::find_staff(c, sid);
    if (!row) return row.error();
    return ok(staff_json(*row, now));
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (r->status < 300) s.after(fx);
  co_return respond(ctx, *r);
}

// ---------------------------------------------------------------------------------------------
// reports, canned answers, outbox

net::awaitable<response> satisfaction(const services& s, request_context& ctx, const storage::staff_row& me) {
  std::int64_t from = 0, to = std::numeric_limits<std::int64_t>::max();
  if (ctx.query.count("from") && !ctx.query.at("from").empty()) {
    auto d = sl::riyadh_day_start(ctx.query.at("from"));
    if (!d) co_return bad_request(ctx, "from must be a date YYYY-MM-DD");
    from = *d;
  }
  if (ctx.query.count("to") && !ctx.query.at("to").empty()) {
    auto d = sl::riyadh_day_start(ctx.query.at("to"));
    if (!d) co_return bad_request(ctx, "to must be a date YYYY-MM-DD");
    to = *d + 86400;  // the whole day, inclusive
  }
  if (from >= to) co_return bad_request(ctx, "from must not be after to");
  auto r = co_await db_read<std::vector<storage::survey_sample>>(
      s.db, [from, to](storage::connection& c) { return storage::survey_samples(c, from, to); });
  if (!r) co_return db_failed(ctx, r.error());
  auto j = sl::satisfaction_report(*r, sl::role_rank(me.role) >= sl::supervisor, s.cfg.survey_min_responses_per_staff);
  j["from"] = ctx.query.count("from") ? json(ctx.query.at("from")) : json(nullptr);
  j["to"] = ctx.query.count("to") ? json(ctx.query.at("to")) : json(nullptr);
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), j.dump());
}

net::awaitable<response> case_report(const services& s, request_context& ctx) {
  auto r = co_await db_read<json>(s.db, [](storage::connection& c) -> storage::result<json> {
    auto steps = storage::case_counts_by_step(c);
    if (!steps) return steps.error();
    auto times = storage::first_response_seconds(c);
    if (!times) return times.error();
    json by_step = json::object();
    for (const char* st : {"submitted", "collecting_info", "evaluating", "approved", "rejected", "closed"})
      by_step[st] = steps->count(st) ? steps->at(st) : 0;
    auto med = sl::median(*times);
    return json{{"by_step", by_step},
                {"median_first_response_seconds", med ? json(*med) : json(nullptr)},
                {"first_responses", times->size()}};
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), r->dump());
}

net::awaitable<response> canned_answers(const services& s, const api_state& st, request_context& ctx) {
  // The FAQ answers come from the running engine, so a reloaded locale shows here at once.
  auto eng = s.ops.engine();
  json out = json::array();
  for (const char* lang : {"ar", "en"})
    for (const char* topic : {"services", "eligibility", "verification", "documents", "channels", "hours", "contact"}) {
      auto key = std::string("faq.") + topic;
      auto text = eng->text(lang, key);
      if (text == key) continue;
      auto title = eng->text(lang, std::string("topic.") + topic);
      out.push_back({{"id", key}, {"title", title}, {"text", text}, {"lang", lang}});
    }
  for (auto& a : st.canned) out.push_back(a);
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"answers", out}}.dump());
}

net::awaitable<response> list_outbox(const services& s, request_context& ctx) {
  std::string state = ctx.query.count("state") ? ctx.query.at("state") : "dead";
  if (state != "dead" && state != "pending" && state != "sending" && state != "sent" && state != "uncertain" &&
      state != "all")
    co_return bad_request(ctx, "state must be dead, pending, sending, sent, uncertain or all");
  auto r = co_await db_read<json>(s.db, [&state](storage::connection& c) -> storage::result<json> {
    auto list = storage::outbox_list(c, state, 500);
    if (!list) return list.error();
    json out = json::array();
    for (auto& o : *list) {
      auto p = json::parse(o.payload, nullptr, false);
      std::string text = !p.is_discarded() && p.is_object() && p.contains("text") && p["text"].is_string()
                             ? p["text"].get<std::string>()
                             : std::string();
      out.push_back({{"id", o.id},
                     {"message_id", o.message_id ? json(*o.message_id) : json(nullptr)},
                     {"conversation_id", o.conversation_id ? json(*o.conversation_id) : json(nullptr)},
                     {"channel", o.channel},
                     {"state", o.state},
                     {"attempts", o.attempts},
                     {"last_error", o.last_error},
                     {"uncertain", o.uncertain},
                     {"text", text},
                     {"created_at", o.created_at}});
    }
    return out;
  });
  if (!r) co_return db_failed(ctx, r.error());
  co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"outbox", *r}}.dump());
}

net::awaitable<response> retry_outbox(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto id = id_param(ctx);
  if (!id) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such message");
  auto now = unix_now();
  const std::int64_t oid = *id;
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  auto r = co_await db_write<outcome>(s.db, [&me, oid, now, now_ms](storage::connection& c) -> storage::result<outcome> {
    if (auto ec = storage::outbox_revive(c, oid, now_ms)) {
      if (ec == storage::errc::not_found) return fail(api_error::not_found, "no dead-lettered message with this id");
      if (ec == storage::errc::invalid)
        return fail(api_error::conflict,
                    "this message was erased with the beneficiary's data, the beneficiary texted STOP or blocked the "
                    "bot on Telegram, it is for a Telegram group, or its WhatsApp number now belongs to someone "
                    "else; it cannot be sent again");
      return ec;
    }
    if (auto ec = audit(c, me, "outbox.retry", "outbox:" + std::to_string(oid), json::object(), now)) return ec;
    return ok(json{{"id", oid}, {"state", "pending"}});
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (r->status < 300) s.outbox.wake();
  co_return respond(ctx, *r);
}

// ---------------------------------------------------------------------------------------------
// media: what a beneficiary sent, fetched from the provider for the signed-in staff member

/// One attachment to fetch: the channel it came in on and what its webhook said about it.
struct media_ref {
  bool found = false;
  std::string missing;  // the 404 message when !found
  std::string channel, kind, media_id, mime, filename;
  std::int64_t message_id = 0;  // names the file when the beneficiary's app gave no name
  std::string target;           // the audit log's target
  json detail = json::object();
};

/// Reads the stored media descriptor ({"kind","id","mime","filename"}) of a message payload.
bool read_media(const std::string& payload, media_ref& ref) {
  auto p = json::parse(payload, nullptr, false);
  if (p.is_discarded() || !p.is_object() || !p.contains("media") || !p["media"].is_object()) return false;
  const auto& m = p["media"];
  auto str = [&m](const char* k) { return m.contains(k) && m[k].is_string() ? m[k].get<std::string>() : std::string(); };
  ref.kind = str("kind");
  ref.media_id = str("id");
  ref.mime = str("mime");
  ref.filename = str("filename");
  return !ref.media_id.empty();
}

/// Writes the media.download audit row for `ref` (the detail gains the channel and `result`).
/// Takes no arguments that would be temporaries at the call: GCC 12 mishandles temporaries in a
/// co_await operand (seen as a double free of a std::string).
net::awaitable<storage::result<int>> audit_download(const services& s, const storage::staff_row& me,
                                                    const media_ref& ref, std::string_view result,
                                                    const json& extra) {
  json detail = extra;
  detail["channel"] = ref.channel;
  detail["result"] = result;
  const auto now = unix_now();
  co_return co_await db_write<int>(s.db, [&me, &ref, &detail, now](storage::connection& c) -> storage::result<int> {
    if (auto ec = audit(c, me, "media.download", ref.target, detail, now)) return ec;
    return 1;
  });
}

/// A beneficiary's file as a download: never a page of this origin, never cached.
response file_response(unsigned version, bool keep_alive, const std::string& type, const std::string& name,
                       std::string body) {
  response res{http::status::ok, version};
  res.set(http::field::content_type, type);
  res.set(http::field::content_disposition, media_http::content_disposition(name));
  res.set(http::field::cache_control, "private, no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Content-Security-Policy", "sandbox; default-src 'none'");
  res.set("Cross-Origin-Resource-Policy", "same-origin");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

/// A file a web-chat visitor sent: kept in the database (storage/uploads.hpp), not at a provider.
net::awaitable<response> serve_upload(const services& s, request_context& ctx, const storage::staff_row& me,
                                      const media_ref& ref) {
  const auto v = ctx.req.version();
  const bool ka = ctx.req.keep_alive();
  std::int64_t id = 0;
  const auto* end = ref.media_id.data() + ref.media_id.size();
  if (std::from_chars(ref.media_id.data(), end, id).ptr != end) id = 0;
  // The file is read into memory whole: it takes a download slot like a provider's file.
  auto held = s.media.try_acquire();
  if (!held) {
    auto w = co_await audit_download(s, me, ref, "busy", ref.detail);
    if (!w) co_return db_failed(ctx, w.error());
    co_return error_response(v, ka, api_error::unavailable, "too many downloads in progress; try again in a moment");
  }
  auto got = co_await db_read<storage::upload_row>(s.db, [id](storage::connection& c) { return storage::find_upload(c, id); });
  if (!got && got.error() != storage::errc::not_found) co_return db_failed(ctx, got.error());
  json detail = ref.detail;
  detail["bytes"] = got ? got->bytes.size() : 0;
  auto w = co_await audit_download(s, me, ref, got ? "ok" : "not_found", detail);
  if (!w) co_return db_failed(ctx, w.error());
  if (!got) co_return error_response(v, ka, api_error::not_found, "this file is no longer kept");
  const auto type = media_http::content_type("", got->mime, ref.mime);
  auto res = file_response(v, ka, type, media_http::file_name(got->filename, "", got->kind, type, ref.message_id),
                           std::move(got->bytes));
  ctx.keep_until_written = std::make_shared<media_downloader::slot>(std::move(*held));
  co_return res;
}

net::awaitable<response> serve_media(const services& s, request_context& ctx, const storage::staff_row& me,
                                     const media_ref& ref) {
  const auto v = ctx.req.version();
  const bool ka = ctx.req.keep_alive();
  // Refusals about an existing attachment are audited like downloads: who tried to open what.
  auto ch = channels::kind_from_string(ref.channel);
  if (ch == channels::kind::webchat) co_return co_await serve_upload(s, ctx, me, ref);
  auto held = s.media.try_acquire();
  if (!held) {
    auto w = co_await audit_download(s, me, ref, "busy", ref.detail);
    if (!w) co_return db_failed(ctx, w.error());
    co_return error_response(v, ka, api_error::unavailable, "too many downloads in progress; try again in a moment");
  }
  // The copy kept when the file came (bot/media_archive.hpp) outlives the provider's.
  auto copy = co_await db_read<std::optional<storage::media_copy>>(
      s.db, [&ref](storage::connection& c) { return storage::find_media_copy(c, ref.channel, ref.media_id); });
  if (!copy) co_return db_failed(ctx, copy.error());
  if (*copy) {
    json detail = ref.detail;
    detail["bytes"] = (*copy)->bytes.size();
    detail["kept_copy"] = true;
    auto w = co_await audit_download(s, me, ref, "ok", detail);
    if (!w) co_return db_failed(ctx, w.error());
    const auto type = media_http::content_type((*copy)->mime, "", ref.mime);
    auto res = file_response(v, ka, type,
                             media_http::file_name(ref.filename, (*copy)->file_path, ref.kind, type, ref.message_id),
                             std::move((*copy)->bytes));
    ctx.keep_until_written = std::make_shared<media_downloader::slot>(std::move(*held));
    co_return res;
  }
  if (!ch || !s.media.enabled(*ch)) {
    auto w = co_await audit_download(s, me, ref, "channel_off", ref.detail);
    if (!w) co_return db_failed(ctx, w.error());
    co_return error_response(v, ka, api_error::conflict,
                             "the " + ref.channel + " channel is not configured on this server, so its files cannot be fetched");
  }

  const auto started = std::chrono::steady_clock::now();
  auto got = co_await s.media.fetch(*ch, ref.media_id);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  using channels::media::failure;
  const std::string result(got.error == failure::none ? "ok" : channels::media::to_string(got.error));
  log::info("media_download", {{"rid", ctx.request_id},
                               {"channel", ref.channel},
                               {"result", result},
                               {"provider_status", static_cast<std::int64_t>(got.provider_status)},
                               {"bytes", static_cast<std::int64_t>(got.body.size())},
                               {"ms", static_cast<std::int64_t>(ms.count())}});

  // Who looked at which document is recorded, whether or not the provider delivered it; a file
  // is never handed out without its audit row (if that cannot be written, the answer is 503).
  // A fetch cut short by the shutdown is audited as "stopped".
  const bool cut_by_shutdown = got.error == failure::network && s.stopping.load();
  json detail = ref.detail;
  detail["bytes"] = got.body.size();
  if (got.provider_status) detail["provider_status"] = got.provider_status;
  const std::string_view audited = cut_by_shutdown ? std::string_view("stopped") : std::string_view(result);
  auto w = co_await audit_download(s, me, ref, audited, detail);
  if (!w) co_return db_failed(ctx, w.error());
  if (cut_by_shutdown)
    co_return error_response(v, false, api_error::unavailable, "the server is restarting; try again in a moment");

  auto gateway = [&](std::string message) {
    json j{{"error", code_of(api_error::bad_gateway)}, {"message", std::move(message)}, {"reason", result}};
    if (got.provider_status) j["provider_status"] = got.provider_status;
    return json_response(v, ka, j.dump(), status_of(api_error::bad_gateway));
  };
  switch (got.error) {
    case failure::none: break;
    case failure::too_large:
      co_return too_large_response(v, ka, "the file is larger than this server's download limit (AOUN_MEDIA_MAX_BYTES)",
                                   s.cfg.media.max_bytes);
    case failure::bad_id: co_return gateway("the stored media id is not one the " + ref.channel + " provider issues");
    case failure::refused_url:
      co_return gateway("refused: the media URL is not on the configured provider's origin, or is not https");
    case failure::provider_error:
      co_return gateway("the " + ref.channel + " provider answered HTTP " + std::to_string(got.provider_status) +
                        " (the file may have expired there)");
    case failure::bad_answer: co_return gateway("the " + ref.channel + " provider's answer could not be read");
    case failure::network: co_return gateway("the " + ref.channel + " provider could not be reached in time");
  }

  if (s.cfg.media.keep_copies) {
    // A copy still wanted, or given up (the provider out of reach for the two days of retries,
    // say), is kept from this download: the provider will not hold the file for ever. Its
    // failure costs the staff member nothing: the file is served all the same.
    const auto mime = media_http::content_type(got.content_type, got.mime, "");
    auto kept = co_await db_write<int>(s.db, storage::rerun::safe, [&ref, &mime, &got](storage::connection& c) -> storage::result<int> {
      if (auto ec = storage::keep_live_copy(c, ref.channel, ref.media_id, mime, got.file_path, got.body)) return ec;
      return c.changes();
    });
    if (!kept) log::warn("media_copy_not_kept", {{"rid", ctx.request_id}, {"error", kept.error().message()}});
    else if (*kept > 0) s.stats.count("media_copies_kept");
  }
  const auto type = media_http::content_type(got.content_type, got.mime, ref.mime);
  auto res = file_response(v, ka, type, media_http::file_name(ref.filename, got.file_path, ref.kind, type, ref.message_id),
                           std::move(got.body));
  // The bytes stay in memory until the client has read them: so does the slot, or slow readers
  // would each hold a file while new downloads start.
  ctx.keep_until_written = std::make_shared<media_downloader::slot>(std::move(*held));
  co_return res;
}

net::awaitable<response> message_media(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto id = id_param(ctx);
  if (!id) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such message");
  const std::int64_t mid = *id;
  auto r = co_await db_read<media_ref>(s.db, [mid](storage::connection& c) -> storage::result<media_ref> {
    media_ref ref;
    auto m = storage::find_message(c, mid);
    if (!m) {
      if (m.error() != storage::errc::not_found) return m.error();
      ref.missing = "no such message";
      return ref;
    }
    if (m->direction != "in" || !read_media(m->payload, ref)) {
      ref.missing = "this message has no media";
      return ref;
    }
    auto conv = storage::find_conversation(c, m->conversation_id);
    if (!conv) return conv.error();
    ref.found = true;
    ref.channel = conv->channel;
    ref.message_id = m->id;
    ref.target = "message:" + std::to_string(m->id);
    ref.detail = json{{"conversation_id", m->conversation_id}};
    return ref;
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (!r->found) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, r->missing);
  co_return co_await serve_media(s, ctx, me, *r);
}

net::awaitable<response> case_document_media(const services& s, request_context& ctx, const storage::staff_row& me) {
  auto ref_text = percent_decode(ctx.params["ref"]);
  auto id = id_param(ctx);
  if (!id) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, "no such document");
  const std::int64_t did = *id;
  auto r = co_await db_read<media_ref>(s.db, [&ref_text, did](storage::connection& c) -> storage::result<media_ref> {
    media_ref ref;
    auto k = storage::find_case_by_reference(c, ref_text);
    if (!k) {
      if (k.error() != storage::errc::not_found) return k.error();
      ref.missing = "no such case";
      return ref;
    }
    auto docs = storage::list_case_documents(c, k->id);
    if (!docs) return docs.error();
    auto d = std::find_if(docs->begin(), docs->end(), [did](const auto& x) { return x.id == did; });
    if (d == docs->end() || d->media_id.empty()) {
      ref.missing = "no such document";
      return ref;
    }
    ref.found = true;
    ref.channel = k->channel;
    ref.kind = d->media_kind;
    ref.media_id = d->media_id;
    ref.mime = d->mime;
    ref.filename = d->filename;
    ref.message_id = d->message_id.value_or(d->id);
    ref.target = "case:" + k->reference;
    ref.detail = json{{"document_id", d->id}};
    return ref;
  });
  if (!r) co_return db_failed(ctx, r.error());
  if (!r->found) co_return error_response(ctx.req.version(), ctx.req.keep_alive(), api_error::not_found, r->missing);
  co_return co_await serve_media(s, ctx, me, *r);
}

}  // namespace

void add_staff_routes(router& r, const services& s) {
  auto st = std::make_shared<api_state>();
  st->dummy_hash = password::hash(password::random_token(16));
  st->canned = load_canned(s.cfg.source_dir + "/locales/canned.json");
  using v = http::verb;
  constexpr int agent = sl::agent, supervisor = sl::supervisor, admin = sl::admin;

  r.add(v::post, "/api/v1/auth/login", [&s, st](request_context& ctx) { return login(s, *st, ctx); });
  r.add(v::post, "/api/v1/auth/logout", [&s](request_context& ctx) { return logout(s, ctx); });
  r.add(v::post, "/api/v1/me/password", [&s, st](request_context& ctx) { return change_password(s, *st, ctx); });
  r.add(v::get, "/api/v1/me", guarded(s, agent, [](request_context& ctx, const storage::staff_row& me) -> net::awaitable<response> {
          co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"staff", staff_brief(me)}}.dump());
        }));

  r.add(v::get, "/api/v1/conversations", guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) {
          return list_conversations(s, ctx, me);
        }));
  r.add(v::get, "/api/v1/conversations/{id}", guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) {
          return get_conversation(s, ctx, false, me);
        }));
  r.add(v::get, "/api/v1/conversations/{id}/messages",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return get_conversation(s, ctx, true, me); }));
  r.add(v::post, "/api/v1/conversations/{id}/messages",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return post_message(s, ctx, me); }));
  r.add(v::post, "/api/v1/conversations/{id}/takeover",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return takeover(s, ctx, me); }));
  r.add(v::post, "/api/v1/conversations/{id}/release",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return release(s, ctx, me); }));
  r.add(v::post, "/api/v1/conversations/{id}/resolve",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return resolve(s, ctx, me); }));
  r.add(v::post, "/api/v1/conversations/{id}/template",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return post_template(s, ctx, me); }));
  r.add(v::post, "/api/v1/conversations/{id}/request-documents",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return request_documents(s, ctx, me); }));

  r.add(v::get, "/api/v1/messages/{id}/media",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return message_media(s, ctx, me); }));
  r.add(v::get, "/api/v1/cases/{ref}/documents/{id}/media",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return case_document_media(s, ctx, me); }));

  r.add(v::get, "/api/v1/cases", guarded(s, agent, [&s](request_context& ctx, const storage::staff_row&) { return list_cases(s, ctx); }));
  r.add(v::get, "/api/v1/cases/{ref}",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return get_case(s, ctx, me); }));
  r.add(v::post, "/api/v1/cases/{ref}/transition",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return transition(s, ctx, me); }));

  r.add(v::get, "/api/v1/staff", guarded(s, admin, [&s](request_context& ctx, const storage::staff_row&) { return list_staff(s, ctx); }));
  r.add(v::post, "/api/v1/staff",
        guarded(s, admin, [&s](request_context& ctx, const storage::staff_row& me) { return create_staff(s, ctx, me); }));
  r.add(v::patch, "/api/v1/staff/{id}",
        guarded(s, admin, [&s](request_context& ctx, const storage::staff_row& me) { return update_staff(s, ctx, me); }));

  r.add(v::get, "/api/v1/reports/satisfaction",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row& me) { return satisfaction(s, ctx, me); }));
  r.add(v::get, "/api/v1/reports/cases",
        guarded(s, agent, [&s](request_context& ctx, const storage::staff_row&) { return case_report(s, ctx); }));
  r.add(v::get, "/api/v1/canned-answers", guarded(s, agent, [&s, st](request_context& ctx, const storage::staff_row&) {
          return canned_answers(s, *st, ctx);
        }));
  // Channels whose provider refuses our credentials: every agent sees why replies are held.
  r.add(v::get, "/api/v1/channels/faults", guarded(s, agent, [&s](request_context& ctx, const storage::staff_row&) -> net::awaitable<response> {
          json faults = json::array();
          for (const auto& f : s.outbox.channel_faults())
            faults.push_back({{"channel", f.channel}, {"state", "credentials_refused"}, {"since", f.since}, {"error", f.error}});
          co_return json_response(ctx.req.version(), ctx.req.keep_alive(), json{{"faults", faults}}.dump());
        }));
  r.add(v::get, "/api/v1/outbox",
        guarded(s, supervisor, [&s](request_context& ctx, const storage::staff_row&) { return list_outbox(s, ctx); }));
  r.add(v::post, "/api/v1/outbox/{id}/retry",
        guarded(s, supervisor, [&s](request_context& ctx, const storage::staff_row& me) { return retry_outbox(s, ctx, me); }));

  add_stream_route(r, s);
}

}  // namespace aoun::bot
