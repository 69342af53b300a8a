// Cases through the staff API: a help request made on WhatsApp, every workflow transition with
// the beneficiary's notification at the fake Graph API, invalid transitions, documents asked
// for through the bot, and WhatsApp's 24-hour rule for staff replies.
#include <doctest/doctest.h>

#include "staff_helpers.hpp"

using namespace aoun::test;
using nlohmann::json;

namespace {

/// The whole intake of tests/transcripts/01 over WhatsApp; returns the case reference.
std::string submit_help_request(staff_env& e, wa_user& b, const std::string& admin) {
  walk_intake(b);
  auto cases = as_json(api(e.port(), "GET", "/api/v1/cases", admin));
  REQUIRE_MESSAGE(cases["cases"].size() == 1, cases.dump());
  return cases["cases"][0]["reference"].get<std::string>();
}

http_result transition(staff_env& e, const std::string& token, const std::string& ref, const json& body) {
  return api(e.port(), "POST", "/api/v1/cases/" + ref + "/transition", token, body);
}

/// A WhatsApp beneficiary who agreed to the privacy notice and asked for staff (three
/// messages, the last "wamid.<from>.3"); returns their conversation's API path.
std::string asks_for_staff(staff_env& e, wa_user& b) {
  b.text("السلام عليكم");
  b.button("consent.yes", "أوافق");
  b.text("موظف");
  return "/api/v1/conversations/" + std::to_string(conversation_of(e.db, b.from));
}

/// The beneficiary last wrote `hours` ago (WhatsApp's 24-hour window).
void last_wrote_hours_ago(staff_env& e, const wa_user& b, int hours) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  db_exec(e.db, "UPDATE beneficiaries SET last_inbound_at = " + std::to_string(now - hours * 3600) + " WHERE address = '" +
                    b.from + "'");
}

/// Posts a WhatsApp webhook (built by wa_text or wa_button) as if its message had been written
/// `hours` ago and reached us only now: Meta retries a webhook for up to a week.
void post_late(staff_env& e, const std::string& body, int hours) {
  auto j = json::parse(body);
  j["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = std::to_string(std::time(nullptr) - hours * 3600);
  auto r = post_wa(e.port(), j.dump());
  REQUIRE_MESSAGE(r.status == 200, r.body);
}

std::string queue_of(staff_env& e, long long conversation) {
  return db_text(e.db, "SELECT mode || ':' || coalesce(queue_reason, '') || ':' || priority FROM conversations WHERE id = " +
                           std::to_string(conversation));
}

long long outbox_to(staff_env& e, const wa_user& b) {
  return db_value(e.db, "SELECT count(*) FROM outbox WHERE recipient = '" + b.from + "'");
}

}  // namespace

TEST_CASE("cases: every transition is recorded, audited and told to the beneficiary; invalid ones are 409") {
  staff_env e;
  auto admin = login(e.port());
  auto agent = add_staff(e.port(), admin, "noura", "agent", "نورة العتيبي");
  wa_user b{e.port(), "966501234567"};
  auto ref = submit_help_request(e, b, admin);

  // The list carries no national ID, mobile or description: a case's own page does.
  auto listed = as_json(api(e.port(), "GET", "/api/v1/cases", agent))["cases"];
  REQUIRE(listed.size() == 1);
  CHECK(listed[0]["reference"] == ref);
  for (const char* personal : {"national_id", "mobile", "description"}) CHECK_FALSE(listed[0].contains(personal));
  auto k = as_json(api(e.port(), "GET", "/api/v1/cases/" + ref, agent));
  CHECK(k["reference"] == ref);
  CHECK(k["step"] == "submitted");
  CHECK(k["national_id"] == "1757491186");  // ASCII digits
  CHECK(k["full_name"] == "نورة محمد السبيعي");
  CHECK(k["service_type"] == "legal");
  CHECK(k["channel"] == "whatsapp");
  CHECK(k["allowed_transitions"] == json::array({"collecting_info"}));
  // Opening a case's page is audited: who saw whose ID. Once an hour per staff member and case
  // (the console reads it again as it changes); the list, which has no ID, is not.
  const std::string viewed = "SELECT count(*) FROM audit_log WHERE action = 'case.view' AND target = 'case:" + ref + "'";
  CHECK(db_value(e.db, viewed + " AND staff_id = (SELECT id FROM staff WHERE username = 'noura')") == 1);
  CHECK(api(e.port(), "GET", "/api/v1/cases/" + ref, agent).status == 200);
  CHECK(db_value(e.db, viewed) == 1);
  CHECK(api(e.port(), "GET", "/api/v1/cases/" + ref, admin).status == 200);
  CHECK(db_value(e.db, viewed) == 2);
  CHECK(api(e.port(), "GET", "/api/v1/cases/AWN-1999-000000", agent).status == 404);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'case.view'") == 2);
  // So is opening a transcript (it holds the ID as typed), likewise once an hour; the
  // conversation's summary, without messages, is not.
  {
    const auto conv = std::to_string(conversation_of(e.db, b.from));
    const std::string read = "SELECT count(*) FROM audit_log WHERE action = 'conversation.view' AND target = 'conversation:" + conv + "'";
    CHECK(api(e.port(), "GET", "/api/v1/conversations/" + conv, agent).status == 200);
    CHECK(db_value(e.db, read) == 0);
    auto t = api(e.port(), "GET", "/api/v1/conversations/" + conv + "/messages", agent);
    REQUIRE(t.status == 200);
    CHECK(as_json(t)["messages"].size() > 10);
    CHECK(db_value(e.db, read + " AND staff_id = (SELECT id FROM staff WHERE username = 'noura')") == 1);
    CHECK(api(e.port(), "GET", "/api/v1/conversations/" + conv + "/messages", agent).status == 200);
    CHECK(api(e.port(), "GET", "/api/v1/conversations/" + conv + "/messages", admin).status == 200);
    CHECK(db_value(e.db, read) == 2);
    CHECK(api(e.port(), "GET", "/api/v1/conversations/999999/messages", agent).status == 404);
    CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'conversation.view'") == 2);
  }
  REQUIRE(k["events"].size() == 1);
  CHECK(k["events"][0]["to"] == "submitted");
  CHECK(k["events"][0]["staff_name"].is_null());
  CHECK(as_json(api(e.port(), "GET", "/api/v1/cases?step=submitted", agent))["cases"].size() == 1);
  CHECK(as_json(api(e.port(), "GET", "/api/v1/cases?step=closed", agent))["cases"].empty());
  CHECK(api(e.port(), "GET", "/api/v1/cases?step=nope", agent).status == 400);
  CHECK(api(e.port(), "GET", "/api/v1/cases/AWN-1999-000000", agent).status == 404);

  // Invalid: skipping a step, a bad body, a bad method or appointment.
  auto skip = transition(e, agent, ref, {{"to", "evaluating"}, {"note", "x"}});
  CHECK(skip.status == 409);
  CHECK(as_json(skip)["allowed_transitions"] == json::array({"collecting_info"}));
  CHECK(transition(e, agent, ref, {{"to", "approved"}}).status == 409);
  CHECK(transition(e, agent, ref, {{"to", "collecting_info"}}).status == 400);  // method required
  CHECK(transition(e, agent, ref, {{"to", "collecting_info"}, {"verification_method", "phone"}}).status == 400);
  CHECK(transition(e, agent, ref, {{"to", "collecting_info"}, {"verification_method", "interview"},
                                   {"appointment", "next Tuesday"}}).status == 400);
  CHECK(transition(e, agent, ref, {{"to", "somewhere"}}).status == 400);
  CHECK(transition(e, agent, ref, {{"note", "no target"}}).status == 400);
  CHECK(api(e.port(), "POST", "/api/v1/cases/" + ref + "/transition", agent, std::string("{not json")).status == 400);
  CHECK(transition(e, agent, "AWN-1999-000000", {{"to", "collecting_info"}, {"verification_method", "interview"}}).status == 404);
  CHECK(db_value(e.db, "SELECT count(*) FROM case_events") == 1);

  // submitted → collecting_info (field visit with an appointment).
  auto t1 = transition(e, agent, ref, {{"to", "collecting_info"}, {"note", "نحتاج زيارة"},
                                       {"verification_method", "field_visit"}, {"appointment", "2026-05-03T10:00:00+03:00"}});
  REQUIRE_MESSAGE(t1.status == 200, t1.body);
  CHECK(as_json(t1)["step"] == "collecting_info");
  CHECK(as_json(t1)["verification_method"] == "field_visit");
  CHECK(as_json(t1)["allowed_transitions"] == json::array({"evaluating"}));
  // One notification names the method and the appointment (Riyadh time). The intake's own
  // confirmation already mentions "زيارة ميدانية" among the workflow steps, so wait for the
  // notification's line itself, not the bare words (that raced with the notification's send).
  REQUIRE(eventually([&] {
    for (auto& s : wa_sends(e.graph, b.from)) {
      auto body = wa_body(s);
      if (body.find("طريقة التحقق: زيارة ميدانية") != std::string::npos &&
          body.find("2026-05-03 10:00") != std::string::npos)
        return true;
    }
    return false;
  }));

  // Documents asked for through the bot are attached to the case.
  auto cid = conversation_of(e.db, b.from);
  auto rd = api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/request-documents", agent,
                json{{"reference", ref}});
  REQUIRE_MESSAGE(rd.status == 200, rd.body);
  CHECK(api(e.port(), "POST", "/api/v1/conversations/" + std::to_string(cid) + "/request-documents", agent,
            json{{"reference", "AWN-1999-000000"}}).status == 404);
  b.image();
  auto withdoc = as_json(api(e.port(), "GET", "/api/v1/cases/" + ref, agent));
  REQUIRE(withdoc["documents"].size() == 1);
  CHECK(withdoc["documents"][0]["media_kind"] == "image");
  b.button("docs.done", "انتهيت");

  // collecting_info → evaluating → approved → closed, each told to the beneficiary.
  REQUIRE(transition(e, agent, ref, {{"to", "evaluating"}}).status == 200);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("ar", "case_step.evaluating", {{"reference", ref}})); }));
  REQUIRE(transition(e, agent, ref, {{"to", "approved"}, {"note", "مستوفٍ للشروط"}}).status == 200);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("ar", "case_step.approved", {{"reference", ref}})); }));
  CHECK(transition(e, agent, ref, {{"to", "rejected"}}).status == 409);
  auto closed = transition(e, agent, ref, {{"to", "closed"}});
  REQUIRE_MESSAGE(closed.status == 200, closed.body);
  CHECK(as_json(closed)["allowed_transitions"].empty());
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("ar", "case_step.closed", {{"reference", ref}})); }));
  // A closed case starts the satisfaction survey.
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("ar", "survey.overall")); }));
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys WHERE trigger = 'case_closed' AND service_type = 'legal'") == 1);
  // Credited to no one: who closed the case need not be who spoke with the person.
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys WHERE trigger = 'case_closed' AND staff_id IS NULL") == 1);
  CHECK(transition(e, agent, ref, {{"to", "closed"}}).status == 409);

  auto hist = as_json(api(e.port(), "GET", "/api/v1/cases/" + ref, agent));
  REQUIRE(hist["events"].size() == 5);
  CHECK(hist["events"][1]["from"] == "submitted");
  CHECK(hist["events"][1]["to"] == "collecting_info");
  CHECK(hist["events"][1]["staff_name"] == "نورة العتيبي");
  CHECK(hist["events"][1]["note"] == "نحتاج زيارة");
  CHECK(hist["events"][3]["note"] == "مستوفٍ للشروط");
  CHECK(hist["events"][4]["to"] == "closed");
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'case.transition' AND target = 'case:" + ref + "'") == 4);
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'conversation.request_documents'") == 1);
  auto rep = as_json(api(e.port(), "GET", "/api/v1/reports/cases", agent));
  CHECK(rep["by_step"]["closed"] == 1);
  CHECK(rep["by_step"]["submitted"] == 0);
}

TEST_CASE("cases: the rejected branch, and the notification follows the beneficiary's language") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966501234568"};
  auto ref = submit_help_request(e, b, admin);
  db_exec(e.db, "UPDATE beneficiaries SET lang = 'en' WHERE address = '" + b.from + "'");
  REQUIRE(transition(e, admin, ref, {{"to", "collecting_info"}, {"verification_method", "document_check"}}).status == 200);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("en", "method.document_check")); }));
  REQUIRE(transition(e, admin, ref, {{"to", "evaluating"}}).status == 200);
  REQUIRE(transition(e, admin, ref, {{"to", "rejected"}, {"note", "outside the conditions"}}).status == 200);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("en", "case_step.rejected", {{"reference", ref}})); }));
  CHECK(transition(e, admin, ref, {{"to", "approved"}}).status == 409);
  CHECK(transition(e, admin, ref, {{"to", "closed"}}).status == 200);
}

TEST_CASE("tracking a request answers its own beneficiary only; anyone else holding the reference and the ID learns nothing") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966501234570"};
  auto ref = submit_help_request(e, b, admin);  // national ID 1757491186
  REQUIRE(transition(e, admin, ref, {{"to", "collecting_info"}, {"verification_method", "field_visit"},
                                     {"appointment", "2026-12-20T10:00"}}).status == 200);
  const auto found = locale_text("ar", "track.not_found");
  auto track = [&](wa_user& who) {
    who.text("القائمة");
    who.text("٣");
    who.text(ref);
    who.text("1757491186");
  };
  // Someone else (a relative who knows her ID, say) with her reference: as for no such request.
  wa_user other{e.port(), "966501234571"};
  other.text("السلام عليكم");
  other.button("consent.yes", "أوافق");
  track(other);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, other.from, found); }));
  for (auto& m : wa_sends(e.graph, other.from)) CHECK(wa_body(m).find(ref) == std::string::npos);
  // She gets her case's step.
  track(b);
  REQUIRE(eventually([&] {
    for (auto& m : wa_sends(e.graph, b.from))
      if (wa_body(m).find(ref) != std::string::npos && wa_body(m).find(locale_text("ar", "method.field_visit")) != std::string::npos)
        return true;
    return false;
  }));
}

TEST_CASE("cases: closing a case sends no survey while the person is in the middle of a new request") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966501234569"};
  auto ref = submit_help_request(e, b, admin);
  REQUIRE(transition(e, admin, ref, {{"to", "collecting_info"}, {"verification_method", "document_check"}}).status == 200);
  REQUIRE(transition(e, admin, ref, {{"to", "evaluating"}}).status == 200);
  REQUIRE(transition(e, admin, ref, {{"to", "rejected"}, {"note", "outside the conditions"}}).status == 200);
  // A new request, half answered.
  b.text("القائمة");
  b.text("١");
  b.text("نورة سعد القحطاني");
  const auto cid = std::to_string(conversation_of(e.db, b.from));
  const auto state = db_text(e.db, "SELECT dialog_state FROM conversations WHERE id = " + cid);
  REQUIRE(state.find("نورة سعد القحطاني") != std::string::npos);
  // Asking for documents would wipe them too: refused, nothing changes.
  auto ask = api(e.port(), "POST", "/api/v1/conversations/" + cid + "/request-documents", admin, json{{"reference", ref}});
  CHECK(ask.status == 409);
  CHECK(ask.body.find("middle of a form") != std::string::npos);
  CHECK(db_text(e.db, "SELECT dialog_state FROM conversations WHERE id = " + cid) == state);
  REQUIRE(transition(e, admin, ref, {{"to", "closed"}}).status == 200);
  // The survey would have wiped the answers: none is started, and the answers are kept.
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys") == 0);
  CHECK(db_text(e.db, "SELECT dialog_state FROM conversations WHERE id = " + cid) == state);
  // ... and the request goes on where it was.
  b.text("1757491186");
  const auto next = db_text(e.db, "SELECT dialog_state FROM conversations WHERE id = " + cid);
  CHECK(next.find("نورة سعد القحطاني") != std::string::npos);
  CHECK(next.find("1757491186") != std::string::npos);
}

TEST_CASE("cases: closing a case sends no survey to someone waiting for staff, nor over a survey in progress") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966501234570"};
  auto ref = submit_help_request(e, b, admin);
  const auto to_approved = [&](const std::string& r) {
    REQUIRE(transition(e, admin, r, {{"to", "collecting_info"}, {"verification_method", "document_check"}}).status == 200);
    REQUIRE(transition(e, admin, r, {{"to", "evaluating"}}).status == 200);
    REQUIRE(transition(e, admin, r, {{"to", "approved"}}).status == 200);
  };
  to_approved(ref);
  const auto cid = conversation_of(e.db, b.from);
  // Waiting for a person after danger words: "rate us" is no answer to that.
  b.text("أبي أنتحر");
  REQUIRE(queue_of(e, cid).rfind("waiting:", 0) == 0);
  REQUIRE(transition(e, admin, ref, {{"to", "closed"}}).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys") == 0);
  CHECK(queue_of(e, cid).rfind("waiting:", 0) == 0);

  // A survey in progress (after a resolve) is not replaced by a second one.
  wa_user c{e.port(), "966501234571"};
  walk_intake(c);
  const auto ref2 = db_text(e.db, "SELECT k.reference FROM cases k JOIN beneficiaries b ON b.id = k.beneficiary_id "
                                  "WHERE b.address = '" + c.from + "'");
  to_approved(ref2);
  const auto c2 = std::to_string(conversation_of(e.db, c.from));
  c.text("موظف");
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + c2 + "/takeover", admin).status == 200);
  REQUIRE(api(e.port(), "POST", "/api/v1/conversations/" + c2 + "/resolve", admin).status == 200);
  REQUIRE(db_value(e.db, "SELECT count(*) FROM surveys WHERE conversation_id = " + c2) == 1);
  REQUIRE(transition(e, admin, ref2, {{"to", "closed"}}).status == 200);
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys WHERE conversation_id = " + c2) == 1);
  // Their answer goes to the survey they were asked.
  c.text("5");
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys WHERE conversation_id = " + c2 +
                       " AND trigger = 'conversation_resolved' AND overall = 5") == 1);
}

TEST_CASE("WhatsApp: the person's last message is marked read when staff take it over and when they answer") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966500000503"};
  const auto conv = asks_for_staff(e, b);  // the last message: wamid.966500000503.3
  auto read_receipts = [&](const std::string& wamid) {
    int n = 0;
    for (auto& r : e.graph.requests()) {
      auto j = json::parse(r.body, nullptr, false);
      if (j.is_object() && j.value("status", "") == "read" && j.value("message_id", "") == wamid) ++n;
    }
    return n;
  };
  // The bot answering marks nothing: the person sees their ticks turn blue when a person reads.
  // (Once every reply of the bot has gone: a receipt would have gone with them.)
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  CHECK(read_receipts("wamid.966500000503.3") == 0);
  CHECK(read_receipts("wamid.966500000503.1") == 0);
  REQUIRE(api(e.port(), "POST", conv + "/takeover", admin).status == 200);
  CHECK(eventually([&] { return read_receipts("wamid.966500000503.3") == 1; }));
  b.text("هل أنتم هناك؟");  // wamid.966500000503.4
  REQUIRE(api(e.port(), "POST", conv + "/messages", admin, json{{"text", "نعم، معك هدى"}}).status == 200);
  CHECK(eventually([&] { return read_receipts("wamid.966500000503.4") == 1; }));
  // Another reply to the same message does not mark it again.
  REQUIRE(api(e.port(), "POST", conv + "/messages", admin, json{{"text", "سأتصل بك الآن"}}).status == 200);
  REQUIRE(eventually([&] { return wa_sent_containing(e.graph, b.from, "سأتصل بك الآن"); }));
  CHECK(read_receipts("wamid.966500000503.4") == 1);
  // Nothing of it in the transcript: receipts are not messages.
  CHECK(db_value(e.db, "SELECT count(*) FROM messages WHERE payload LIKE '%mark_read%'") == 0);
}

TEST_CASE("WhatsApp: a message written over a day before it came is put before staff, not answered by the bot") {
  staff_env e;
  auto admin = login(e.port());

  // Someone's first message, kept by Meta through an outage of ours: no reply could reach them
  // (Meta refuses one outside the 24-hour window), so none is queued; staff are.
  wa_user a{e.port(), "966500000511"};
  post_late(e, wa_text(a.from, a.next_id(), "أحتاج مساعدة بخصوص قضيتي"), 30);
  const auto ca = conversation_of(e.db, a.from);
  CHECK(outbox_to(e, a) == 0);
  CHECK(queue_of(e, ca) == "waiting:late_message:0");
  const auto conv = "/api/v1/conversations/" + std::to_string(ca);
  CHECK(as_json(api(e.port(), "GET", conv, admin))["window_open"] == false);
  auto msgs = as_json(api(e.port(), "GET", conv + "/messages", admin));
  REQUIRE(msgs["messages"].size() == 1);
  // Staff see when it was written, not only when it came.
  CHECK(msgs["messages"][0]["written_at"].get<long long>() <= std::time(nullptr) - 30 * 3600 + 5);

  // Someone who has written since: an old answer is not taken for today's question. Asked for
  // consent just now, a consent pressed 26 hours ago consents to nothing.
  wa_user b{e.port(), "966500000512"};
  b.text("السلام عليكم");
  const auto cb = conversation_of(e.db, b.from);
  const auto state = db_text(e.db, "SELECT dialog_state FROM conversations WHERE id = " + std::to_string(cb));
  const auto to_b = outbox_to(e, b);
  post_late(e, wa_button(b.from, b.next_id(), "consent.yes", "أوافق"), 26);
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + b.from + "' AND consented_at IS NOT NULL") == 0);
  CHECK(db_text(e.db, "SELECT dialog_state FROM conversations WHERE id = " + std::to_string(cb)) == state);
  CHECK(outbox_to(e, b) == to_b);
  CHECK(queue_of(e, cb) == "waiting:late_message:0");
  // A message written 20 minutes ago (a shorter outage of ours) is still answered.
  wa_user c{e.port(), "966500000513"};
  auto recent = json::parse(wa_text(c.from, c.next_id(), "السلام عليكم"));
  recent["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = std::to_string(std::time(nullptr) - 20 * 60);
  REQUIRE(post_wa(e.port(), recent.dump()).status == 200);
  CHECK(outbox_to(e, c) > 0);
  CHECK(queue_of(e, conversation_of(e.db, c.from)) == "bot::0");

  // Danger words in a late message: first in the queue. The emergency numbers go only where a
  // message can still reach the person: not to a, whose window is closed; to b, who just wrote.
  post_late(e, wa_text(a.from, a.next_id(), "أبي أنتحر"), 28);
  CHECK(queue_of(e, ca) == "waiting:danger:1");
  CHECK(outbox_to(e, a) == 0);
  post_late(e, wa_text(b.from, b.next_id(), "أبي أنتحر"), 28);
  CHECK(queue_of(e, cb) == "waiting:danger:1");
  CHECK(outbox_to(e, b) == to_b + 1);
  REQUIRE(eventually([&] {
    for (auto& s : wa_sends(e.graph, b.from))
      if (s.value("type", "") == "text" && s["text"]["body"].get<std::string>().find("911") != std::string::npos) return true;
    return false;
  }));
}

TEST_CASE("after danger words the conversation keeps its place in the queue, whatever the person asks of the bot") {
  staff_env e;
  wa_user b{e.port(), "966500000521"};
  b.text("السلام عليكم");
  b.button("consent.yes", "أوافق");
  b.text("موظف");  // waiting for staff ...
  b.text("أبي أنتحر");  // ... and then danger words
  const auto cid = conversation_of(e.db, b.from);
  REQUIRE(queue_of(e, cid) == "waiting:danger:1");
  // "Menu" while waiting: the bot answers with the menu, and staff must still look; the person
  // is told so, not that they left the queue.
  b.text("القائمة");
  CHECK(queue_of(e, cid) == "waiting:danger:1");
  CHECK(eventually([&] { return wa_sent_containing(e.graph, b.from, locale_text("ar", "handoff.kept")); }));
  CHECK_FALSE(wa_sent_containing(e.graph, b.from, locale_text("ar", "handoff.left")));
  // An erasure the person confirms takes it out all the same.
  b.text("احذف بياناتي");
  b.button("erase.yes", "نعم، احذفها");
  CHECK(db_value(e.db, "SELECT count(*) FROM beneficiaries WHERE address = '" + b.from + "' AND erased_at IS NOT NULL") == 1);
  CHECK(queue_of(e, cid).rfind("waiting:", 0) != 0);
  // Without danger words, "menu" while waiting leaves the queue, as the person asked.
  wa_user c{e.port(), "966500000522"};
  c.text("السلام عليكم");
  c.button("consent.yes", "أوافق");
  c.text("موظف");
  const auto other = conversation_of(e.db, c.from);
  REQUIRE(queue_of(e, other).rfind("waiting:", 0) == 0);
  c.text("القائمة");
  CHECK(queue_of(e, other) == "bot::0");
}

TEST_CASE("WhatsApp 24-hour rule: taking over, releasing and resolving outside the window send nothing that would fail") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966500000502"};
  const auto conv = asks_for_staff(e, b);
  const auto cid = conversation_of(e.db, b.from);
  last_wrote_hours_ago(e, b, 60);  // waited in the queue over a weekend
  const auto rows = db_value(e.db, "SELECT count(*) FROM outbox");
  REQUIRE(api(e.port(), "POST", conv + "/takeover", admin).status == 200);
  REQUIRE(api(e.port(), "POST", conv + "/release", admin).status == 200);
  REQUIRE(api(e.port(), "POST", conv + "/takeover", admin).status == 200);
  REQUIRE(api(e.port(), "POST", conv + "/resolve", admin).status == 200);
  // No "staff joined/left" notice, no menu, no survey: Meta would refuse each (131047).
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == rows);
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys") == 0);
  // Their next message (a new incident, say) is a turn of the dialog, not taken for a score.
  b.text("حدث لي شيء جديد");
  CHECK(db_value(e.db, "SELECT count(*) FROM surveys") == 0);
  CHECK(db_text(e.db, "SELECT coalesce(json_extract(dialog_state, '$.flow'), '') FROM conversations WHERE id = " +
                          std::to_string(cid)) != "survey");
}

TEST_CASE("WhatsApp 24-hour rule: a reply outside the window is refused with the template; the template goes out") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966500000501"};
  const auto conv = asks_for_staff(e, b);
  REQUIRE(api(e.port(), "POST", conv + "/takeover", admin).status == 200);
  REQUIRE(api(e.port(), "POST", conv + "/messages", admin, json{{"text", "inside the window"}}).status == 200);

  last_wrote_hours_ago(e, b, 25);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(as_json(api(e.port(), "GET", conv, admin))["window_open"] == false);
  auto outbox_before = db_value(e.db, "SELECT count(*) FROM outbox");
  auto r = api(e.port(), "POST", conv + "/messages", admin, json{{"text", "are you there?"}});
  CHECK(r.status == 409);
  CHECK(as_json(r)["error"] == "conflict");
  CHECK(as_json(r)["template"] == "aoun_followup");
  CHECK(as_json(r)["message"].get<std::string>().find("24-hour") != std::string::npos);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == outbox_before);  // nothing sent

  CHECK(api(e.port(), "POST", conv + "/template", admin, json{{"name", "not_approved"}}).status == 400);
  // Parameters Meta would refuse after queueing (132018: a line break, a tab, five spaces; or
  // an empty one) are refused here, and nothing is queued.
  for (const char* bad : {"line one\nline two", "a\tb", "a     b", ""})
    CHECK_MESSAGE(api(e.port(), "POST", conv + "/template", admin, json{{"name", "aoun_followup"}, {"params", {bad}}}).status == 400,
                  bad);
  CHECK(db_value(e.db, "SELECT count(*) FROM outbox") == outbox_before);
  auto t = api(e.port(), "POST", conv + "/template", admin, json{{"name", "aoun_followup"}, {"params", json::array()}});
  REQUIRE_MESSAGE(t.status == 200, t.body);
  CHECK(as_json(t)["kind"] == "template");
  REQUIRE(eventually([&] {
    for (auto& s : wa_sends(e.graph, b.from))
      if (s.value("type", "") == "template" && s["template"]["name"] == "aoun_followup") return true;
    return false;
  }));
  CHECK(db_value(e.db, "SELECT count(*) FROM audit_log WHERE action = 'conversation.template'") == 1);

  // A message written 30 hours ago that reaches us only now (Meta retries for days after an
  // outage) opens nothing: WhatsApp's window runs from when it was written.
  auto late = json::parse(wa_text(b.from, "wamid.late-1", "هل وصلت رسالتي؟"));
  late["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = std::to_string(now - 30 * 3600);
  REQUIRE(post_wa(e.port(), late.dump()).status == 200);
  CHECK(as_json(api(e.port(), "GET", conv, admin))["window_open"] == false);
  CHECK(api(e.port(), "POST", conv + "/messages", admin, json{{"text", "are you there?"}}).status == 409);

  // Once the beneficiary answers, the window is open again.
  b.text("نعم أنا هنا");
  CHECK(api(e.port(), "POST", conv + "/messages", admin, json{{"text", "thanks for answering"}}).status == 200);
}

TEST_CASE("WhatsApp 24-hour rule: a send Meta refuses with 131047 closes the window here too") {
  staff_env e;
  auto admin = login(e.port());
  wa_user b{e.port(), "966500000502"};
  const auto conv = asks_for_staff(e, b);
  REQUIRE(api(e.port(), "POST", conv + "/takeover", admin).status == 200);
  REQUIRE(eventually([&] { return db_value(e.db, "SELECT count(*) FROM outbox WHERE state IN ('pending', 'sending')") == 0; }));
  // Meta's window has closed where ours is open (the person changed number, say): it refuses
  // the next send at once, not later as a status.
  e.graph.set_default([](const recorded_request&) {
    return scripted_response{400, R"({"error":{"message":"Re-engagement message","type":"OAuthException","code":131047,)"
                                  R"("error_data":{"messaging_product":"whatsapp","details":"more than 24 hours"}}})"};
  });
  CHECK(as_json(api(e.port(), "GET", conv, admin))["window_open"] == true);
  REQUIRE(api(e.port(), "POST", conv + "/messages", admin, json{{"text", "are you there?"}}).status == 200);
  REQUIRE(eventually([&] {
    return db_value(e.db, "SELECT count(*) FROM outbox WHERE state = 'dead' AND last_error LIKE 'outside_24h_window:%'") == 1;
  }));
  // Closed here too: staff are offered the template, and the next reply is not sent to fail alike.
  CHECK(as_json(api(e.port(), "GET", conv, admin))["window_open"] == false);
  auto r = api(e.port(), "POST", conv + "/messages", admin, json{{"text", "hello?"}});
  CHECK(r.status == 409);
  CHECK(as_json(r)["template"] == "aoun_followup");
  // Their next message opens it again.
  b.text("نعم أنا هنا");
  CHECK(as_json(api(e.port(), "GET", conv, admin))["window_open"] == true);
}
