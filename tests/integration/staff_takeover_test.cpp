// The staff takeover story over a real WhatsApp webhook channel against the fake Graph API:
// queue → takeover → live messages → reply → release → takeover → resolve → survey → report.
#include <doctest/doctest.h>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {

long long count(const std::string& db, const std::string& where) {
  return db_value(db, "SELECT count(*) FROM " + where);
}

}  // namespace

TEST_CASE("staff takeover: queue, take over, talk, release, take again, resolve, survey, report") {
  staff_env e(env_vars{{"AOUN_REPORT_MIN_RESPONSES", "1"}});
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");
  auto other = add_staff(e.port(), admin, "khalid", "agent", "خالد الشهري");
  wa_user b{e.port(), "966500000101"};

  // The beneficiary consents and asks for a person.
  b.text("السلام عليكم");
  b.button("consent.yes", "أوافق");
  b.text("موظف");
  auto cid = conversation_of(e.db, b.from);
  REQUIRE(cid > 0);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("ar", "handoff.queued").substr(0, 40)); }));
  auto waiting = as_json(api(e.port(), "GET", "/api/v1/conversations?mode=waiting", agent));
  auto c = find_conversation(waiting, cid);
  REQUIRE(c.is_object());
  CHECK(c["mode"] == "waiting");
  CHECK(c["channel"] == "whatsapp");
  CHECK(c["address"] == b.from);
  CHECK(c["queue_reason"] == "requested");

  // Live stream for the agent, opened before anything else happens.
  stream_client live(e.port(), "/api/v1/stream?token=" + agent);
  REQUIRE(live.status == 101);

  // Take over: the beneficiary hears the first name only.
  auto t = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", agent);
  REQUIRE_MESSAGE(t.status == 200, t.body);
  CHECK(as_json(t)["mode"] == "staff");
  CHECK(as_json(t)["assigned_staff"]["display_name"] == "نورة العتيبي");
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, "انضم إليكم نورة من فريق الجمعية"); }));
  CHECK_FALSE(wa_sent_containing(e.graph, b.from, "العتيبي"));
  CHECK(live.wait_for([&](const json& ev) {
    return ev["type"] == "conversation.updated" && ev["conversation"]["id"] == cid && ev["conversation"]["mode"] == "staff";
  }));
  // Someone else cannot take it, and an agent cannot override.
  auto clash = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", other);
  CHECK(clash.status == 409);
  CHECK(as_json(clash)["held_by"]["display_name"] == "نورة العتيبي");
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", other,
            json{{"override", true}}).status == 403);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", other,
            json{{"text", "hello"}}).status == 403);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/release", other).status == 403);

  // The beneficiary writes: staff see it (list and stream), the bot stays silent.
  auto bot_before = count(e.db, "messages WHERE conversation_id = " + std::to_string(cid) + " AND sender = 'bot'");
  b.text("عندي سؤال عن طلبي لو سمحتم");
  auto msgs = as_json(api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent));
  REQUIRE(msgs["messages"].is_array());
  CHECK(msgs["messages"].back()["text"] == "عندي سؤال عن طلبي لو سمحتم");
  CHECK(msgs["messages"].back()["sender"] == "beneficiary");
  CHECK(live.wait_for([&](const json& ev) {
    return ev["type"] == "message.new" && ev["message"]["text"] == "عندي سؤال عن طلبي لو سمحتم";
  }, std::chrono::seconds(1)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(count(e.db, "messages WHERE conversation_id = " + std::to_string(cid) + " AND sender = 'bot'") == bot_before);

  // The staff reply goes out on WhatsApp, with the staff member's name in the transcript.
  auto bad = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent, json{{"text", ""}});
  CHECK(bad.status == 400);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent,
            json{{"text", std::string(4097, 'a')}}).status == 400);
  auto reply = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent,
                   json{{"text", "أهلًا بكم، أنا معكم. ما رقم طلبكم؟"}});
  REQUIRE_MESSAGE(reply.status == 200, reply.body);
  CHECK(as_json(reply)["sender"] == "staff");
  CHECK(as_json(reply)["staff_name"] == "نورة العتيبي");
  CHECK(as_json(reply)["direction"] == "out");
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, "أهلًا بكم، أنا معكم. ما رقم طلبكم؟"); }));
  CHECK(db_value(e.db, "SELECT first_staff_reply_at IS NOT NULL FROM conversations WHERE id = " + std::to_string(cid)) == 1);

  // Release: the beneficiary is told, gets the menu, and the bot answers again.
  auto rel = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/release", agent);
  REQUIRE_MESSAGE(rel.status == 200, rel.body);
  CHECK(as_json(rel)["mode"] == "bot");
  CHECK(as_json(rel)["assigned_staff"].is_null());
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("ar", "staff_left")); }));
  auto bot_after_release = count(e.db, "messages WHERE conversation_id = " + std::to_string(cid) + " AND sender = 'bot'");
  CHECK(bot_after_release > bot_before);  // the main menu
  b.text("قائمة");
  CHECK(count(e.db, "messages WHERE conversation_id = " + std::to_string(cid) + " AND sender = 'bot'") > bot_after_release);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent,
            json{{"text", "still there?"}}).status == 409);  // not held any more

  // Asked again, taken again, resolved: the survey's first question reaches the beneficiary.
  b.text("موظف");
  CHECK(as_json(api(e.port(), "GET", "/api/v1/conversations/" + std::to_string(cid), agent))["mode"] == "waiting");
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", agent).status == 200);
  auto mine = as_json(api(e.port(), "GET", "/api/v1/conversations?mode=staff&mine=1", agent));
  CHECK(find_conversation(mine, cid).is_object());
  CHECK(find_conversation(as_json(api(e.port(), "GET", "/api/v1/conversations?mode=staff&mine=1", other)), cid).is_null());
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent,
              json{{"text", "تم، طلبكم قيد المتابعة."}}).status == 200);
  auto res = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/resolve", agent);
  REQUIRE_MESSAGE(res.status == 200, res.body);
  CHECK(as_json(res)["mode"] == "resolved");
  auto overall_q = locale_text("ar", "survey.overall");
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, overall_q); }));
  CHECK(count(e.db, "surveys WHERE trigger = 'conversation_resolved' AND conversation_id = " + std::to_string(cid)) == 1);

  b.text("5");
  b.text("4");
  b.text("٥");
  b.text("شكرًا لكم على سرعة التجاوب");
  CHECK(db_value(e.db, "SELECT overall * 100 + speed * 10 + courtesy FROM surveys WHERE conversation_id = " +
                           std::to_string(cid)) == 545);
  CHECK(db_value(e.db, "SELECT completed_at IS NOT NULL FROM surveys WHERE conversation_id = " + std::to_string(cid)) == 1);

  auto rep = api(e.port(), "GET", "/api/v1/reports/satisfaction", admin);
  REQUIRE_MESSAGE(rep.status == 200, rep.body);
  auto r = as_json(rep);
  CHECK(r["invited"] == 1);
  CHECK(r["responses"] == 1);
  CHECK(r["response_rate"] == 1.0);
  CHECK(r["averages"]["overall"] == 5.0);
  CHECK(r["averages"]["speed"] == 4.0);
  CHECK(r["averages"]["courtesy"] == 5.0);
  CHECK(r["distribution"]["speed"]["4"] == 1);
  CHECK(r["by_channel"]["whatsapp"]["responses"] == 1);
  REQUIRE(r["by_staff"].size() == 1);
  CHECK(r["by_staff"][0]["display_name"] == "نورة العتيبي");
  CHECK(rep.body.find("شكرًا لكم على سرعة التجاوب") == std::string::npos);  // no comments, no beneficiary
  CHECK(rep.body.find(b.from) == std::string::npos);
  auto agent_rep = as_json(api(e.port(), "GET", "/api/v1/reports/satisfaction", agent));
  CHECK_FALSE(agent_rep.contains("by_staff"));
  CHECK(agent_rep["responses"] == 1);
  // A date range that excludes today has no surveys.
  auto old = as_json(api(e.port(), "GET", "/api/v1/reports/satisfaction?from=2020-01-01&to=2020-01-31", admin));
  CHECK(old["invited"] == 0);
  CHECK(api(e.port(), "GET", "/api/v1/reports/satisfaction?from=2020-13-01", admin).status == 400);

  auto cases = as_json(api(e.port(), "GET", "/api/v1/reports/cases", agent));
  CHECK(cases["median_first_response_seconds"].is_number());
  CHECK(cases["by_step"]["submitted"] == 0);

  // Every staff action is in the audit log.
  auto audited = [&](const std::string& action) {
    return count(e.db, "audit_log WHERE action = '" + action + "' AND target = 'conversation:" + std::to_string(cid) + "'");
  };
  CHECK(audited("conversation.takeover") == 2);
  CHECK(audited("conversation.message") == 2);
  CHECK(audited("conversation.release") == 1);
  CHECK(audited("conversation.resolve") == 1);
}

TEST_CASE("staff takeover: a supervisor may override; queue order puts danger first") {
  staff_env e;
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");
  auto sup = add_staff(e.port(), admin, "sara", "supervisor", "Sara Alqahtani");
  wa_user a{e.port(), "966500000201"}, d{e.port(), "966500000202"};
  a.text("السلام عليكم");
  a.button("consent.yes", "أوافق");
  a.text("موظف");
  d.text("السلام عليكم");
  d.button("consent.yes", "أوافق");
  d.text("أبي أنتحر");  // danger words: head of the queue
  auto q = as_json(api(e.port(), "GET", "/api/v1/conversations?mode=waiting", agent))["conversations"];
  REQUIRE(q.size() == 2);
  CHECK(q[0]["address"] == d.from);
  CHECK(q[0]["priority"] == 1);
  CHECK(q[1]["address"] == a.from);

  auto cid = conversation_of(e.db, a.from);
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", agent).status == 200);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", sup).status == 409);
  auto o = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", sup, json{{"override", true}});
  REQUIRE_MESSAGE(o.status == 200, o.body);
  CHECK(as_json(o)["assigned_staff"]["display_name"] == "Sara Alqahtani");
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, a.from, "انضم إليكم Sara من فريق الجمعية"); }));
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'conversation.override'") == 1);
  // The former holder can no longer reply; the supervisor can.
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", agent,
            json{{"text", "hi"}}).status == 403);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/messages", sup,
            json{{"text", "hi"}}).status == 200);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/999999/takeover", agent).status == 404);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/abc/takeover", agent).status == 404);
}

TEST_CASE("staff: disabling a staff member puts what they held back in the queue, in its place") {
  staff_env e;
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");
  auto other = add_staff(e.port(), admin, "huda", "agent", "هدى الشمري");
  wa_user d{e.port(), "966500000203"}, a{e.port(), "966500000204"};
  d.text("السلام عليكم");
  d.button("consent.yes", "أوافق");
  d.text("أبي أنتحر");  // danger words: first in the queue
  a.text("السلام عليكم");
  a.button("consent.yes", "أوافق");
  a.text("موظف");
  const auto cd = std::to_string(conversation_of(e.db, d.from)), ca = std::to_string(conversation_of(e.db, a.from));
  const auto queued_at = db_value(e.db, "SELECT queued_at FROM conversations WHERE id = " + cd);
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + cd + "/takeover", agent).status == 200);
  // Held: a colleague cannot take it, and the bot stays silent in it.
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + cd + "/takeover", other).status == 409);

  auto staff_id = db_value(e.db, "SELECT id FROM staff WHERE username = 'noura'");
  auto r = api(e.port(), "PATCH", "/api/v1/staff/" + std::to_string(staff_id), admin, json{{"disabled", true}});
  REQUIRE_MESSAGE(r.status == 200, r.body);
  // Back in the queue, first as before (danger), with its queue time and reason.
  CHECK(db_text(e.db, "SELECT mode || ':' || coalesce(assigned_staff_id, '-') || ':' || priority || ':' || queue_reason "
                      "FROM conversations WHERE id = " + cd) == "waiting:-:1:danger");
  CHECK(db_value(e.db, "SELECT queued_at FROM conversations WHERE id = " + cd) == queued_at);
  auto q = as_json(api(e.port(), "GET", "/api/v1/conversations?mode=waiting", other))["conversations"];
  REQUIRE(q.size() == 2);
  CHECK(std::to_string(q[0]["id"].get<long long>()) == cd);
  CHECK(std::to_string(q[1]["id"].get<long long>()) == ca);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'conversation.requeue' AND target = 'conversation:" + cd +
                           "' AND detail LIKE '%\"holder_staff_id\":" + std::to_string(staff_id) + "%'") == 1);
  // A colleague takes it at once.
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + cd + "/takeover", other).status == 200);
  // Enabling the account again gives nothing back by itself.
  REQUIRE(api(e.port(), "PATCH", "/api/v1/staff/" + std::to_string(staff_id), admin, json{{"disabled", false}}).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'conversation.requeue'") == 1);
}

TEST_CASE("staff: outside working hours the queued beneficiary is told when staff return") {
  // Working days that exclude today (Asia/Riyadh).
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  int today = static_cast<int>(((now + 3 * 3600) / 86400 + 4) % 7);
  std::string days = today == 0 ? "1-6" : today == 6 ? "0-5" : "0-" + std::to_string(today - 1);
  staff_env e(env_vars{{"AOUN_WORKING_HOURS", days + " 08:00-16:00"}});
  wa_user b{e.port(), "966500000301"};
  b.text("السلام عليكم");
  b.button("consent.yes", "أوافق");
  b.text("موظف");
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, "خارج أوقات العمل"); }));
  // Taking over works the same outside working hours.
  auto admin = login(e.port());
  auto cid = conversation_of(e.db, b.from);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", admin).status == 200);
}

namespace {

/// The Graph API refuses everything (400, no retry): the welcome to `from` is dead-lettered.
void dead_letter_welcome(staff_env& e, const std::string& from) {
  e.graph.set_default([](const recorded_request&) {
    return scripted_response{400, R"({"error":{"message":"(#131000) Something went wrong","code":131000}})"};
  });
  wa_user b{e.port(), from};
  b.text("السلام عليكم");
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'dead'") >= 1; }));
}

}  // namespace

TEST_CASE("staff: dead-lettered outbox messages are listed and retried by a supervisor") {
  staff_env e(env_vars{{"AOUN_OUTBOX_MAX_ATTEMPTS", "1"}});
  dead_letter_welcome(e, "966500000401");
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");
  auto sup = add_staff(e.port(), admin, "sara", "supervisor", "Sara");
  CHECK(api(e.port(), "GET", "/api/v1/outbox?state=dead", agent).status == 403);
  auto list = as_json(api(e.port(), "GET", "/api/v1/outbox?state=dead", sup));
  REQUIRE(!list["outbox"].empty());
  auto id = list["outbox"][0]["id"].get<long long>();
  CHECK(list["outbox"][0]["state"] == "dead");
  e.graph.set_default([](const recorded_request&) {
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.RETRY"}]})"};
  });
  auto r = api(e.port(), "POST", "/api/v1/outbox/" + std::to_string(id) + "/retry", sup);
  REQUIRE_MESSAGE(r.status == 200, r.body);
  REQUIRE(eventually([&] { return db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(id)) == "sent"; }));
  CHECK(api(e.port(), "POST", "/api/v1/outbox/" + std::to_string(id) + "/retry", sup).status == 404);  // not dead now
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'outbox.retry'") == 1);
}

TEST_CASE("staff: a dead letter erased with its beneficiary's data is not sent again (409)") {
  staff_env e(env_vars{{"AOUN_OUTBOX_MAX_ATTEMPTS", "1"}});
  dead_letter_welcome(e, "966500000402");
  const auto id = db_value(e.db, "SELECT min(id) FROM outbox WHERE state = 'dead'");
  // What erase_beneficiary does to a row that is no longer waiting to go
  // (tests/unit/storage/retention_test.cpp checks that it does).
  db_exec(e.db, "UPDATE outbox SET payload = '{}' WHERE id = " + std::to_string(id));
  e.graph.set_default([](const recorded_request&) {
    return scripted_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.RETRY"}]})"};
  });
  auto admin = login(e.port());
  auto sup = add_staff(e.port(), admin, "sara", "supervisor", "Sara");
  const auto sends = e.graph.requests().size();
  auto r = api(e.port(), "POST", "/api/v1/outbox/" + std::to_string(id) + "/retry", sup);
  CHECK(r.status == 409);
  CHECK(r.body.find("erased") != std::string::npos);
  CHECK(db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(id)) == "dead");
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'outbox.retry'") == 0);
  CHECK(e.graph.requests().size() == sends);
  CHECK(api(e.port(), "POST", "/api/v1/outbox/999999/retry", sup).status == 404);
}

TEST_CASE("staff: a dead letter sent again waits for the recipient's message in flight, without busying the worker") {
  staff_env e(env_vars{{"AOUN_OUTBOX_MAX_ATTEMPTS", "1"}});
  auto admin = login(e.port());
  auto sup = add_staff(e.port(), admin, "sara", "supervisor", "Sara");
  dead_letter_welcome(e, "966500000403");
  const auto dead = db_value(e.db, "SELECT min(id) FROM outbox WHERE state = 'dead'");
  const auto dead_text = db_text(e.db, "SELECT json_extract(payload, '$.text') FROM outbox WHERE id = " + std::to_string(dead));
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  // Now the provider works but is slow: every send is answered `hold` after it arrives.
  const auto hold = std::chrono::milliseconds(1500);
  e.graph.set_default([hold](const recorded_request&) {
    scripted_response r{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.SLOW"}]})"};
    r.delay = hold;
    return r;
  });
  const auto before = e.graph.requests().size();
  wa_user b{e.port(), "966500000403", 10};
  b.text("1");  // consent: the menu goes out, and is held
  REQUIRE(eventually([&] { return e.graph.requests().size() > before; }));
  auto jobs = [&] {
    auto body = http_call(e.port(), "GET", "/metrics").body;
    auto at = body.find("\naoun_db_jobs_total ");
    REQUIRE(at != std::string::npos);
    return std::stoll(body.substr(at + 20));
  };
  REQUIRE(api(e.port(), "POST", "/api/v1/outbox/" + std::to_string(dead) + "/retry", sup).status == 200);
  // While it waits, no claim after claim against the database.
  const auto jobs_before = jobs();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(jobs() - jobs_before <= 3);
  // It goes once, and only after the message in flight was answered.
  REQUIRE(eventually([&] { return db_text(e.db, "SELECT state FROM outbox WHERE id = " + std::to_string(dead)) == "sent"; }));
  auto reqs = e.graph.requests();
  REQUIRE(reqs.size() > before);
  const auto held = reqs[before];
  CHECK(wa_body(json::parse(held.body)) != dead_text);
  int seen = 0;
  for (std::size_t i = before; i < reqs.size(); ++i)
    if (wa_body(json::parse(reqs[i].body)) == dead_text) {
      ++seen;
      CHECK(reqs[i].at >= held.at + hold);
    }
  CHECK(seen == 1);
}

TEST_CASE("staff mode: danger words in a photo's caption still get the emergency numbers") {
  staff_env e;
  wa_user b{e.port(), "966500000401"};
  b.text("السلام عليكم");
  const auto cid = conversation_of(e.db, b.from);
  const auto admin = login(e.port());
  const auto agent = add_staff(e.port(), admin, "huda", "agent", "Huda");
  b.text("موظف");
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/takeover", agent).status == 200);
  const auto danger_all = locale_text("ar", "danger");
  const auto danger = danger_all.substr(0, danger_all.find('\n'));  // the rest names the numbers
  const auto before = count(e.db, "messages WHERE conversation_id = " + std::to_string(cid) + " AND sender = 'bot'");
  // A photo with a plain caption: the bot stays silent, the person holding it answers.
  auto photo = [&](const std::string& caption) {
    auto j = nlohmann::json::parse(fixture("whatsapp_image.json"));
    auto& v = j["entry"][0]["changes"][0]["value"];
    v["contacts"][0]["wa_id"] = b.from;
    v["messages"][0]["from"] = b.from;
    v["messages"][0]["id"] = b.next_id();
    v["messages"][0]["image"]["caption"] = caption;
    REQUIRE(post_wa(e.port(), j.dump()).status == 200);
  };
  photo("صورة الإيصال");
  CHECK(count(e.db, "messages WHERE conversation_id = " + std::to_string(cid) + " AND sender = 'bot'") == before);
  photo("أبي أنتحر");
  CHECK(count(e.db, "messages WHERE conversation_id = " + std::to_string(cid) + " AND sender = 'bot'") == before + 1);
  CHECK(db_text(e.db, "SELECT text FROM messages WHERE conversation_id = " + std::to_string(cid) +
                          " AND sender = 'bot' ORDER BY id DESC LIMIT 1").rfind(danger, 0) == 0);
  CHECK(db_value(e.db, "SELECT priority FROM conversations WHERE id = " + std::to_string(cid)) == 1);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, danger); }));
}
