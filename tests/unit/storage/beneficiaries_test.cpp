#include <doctest/doctest.h>

#include "storage/conversations.hpp"
#include "storage/media_copies.hpp"
#include "storage/outbox.hpp"
#include "storage/schema.hpp"
#include "tests/unit/storage/support.hpp"

using namespace aoun::storage;
using aoun::storage::testing::fresh_connection;

TEST_CASE("upsert_beneficiary creates once, then refreshes the name and the last inbound time") {
  auto c = fresh_connection();
  auto a = upsert_beneficiary(*c, "whatsapp", "966500000001", "Ahmed", 100, true);
  REQUIRE(a.has_value());
  CHECK(a->channel == "whatsapp");
  CHECK(a->address == "966500000001");
  CHECK(a->display_name == "Ahmed");
  CHECK(a->lang == "ar");
  CHECK(a->created_at == 100);
  CHECK(a->last_inbound_at == 100);

  auto b = upsert_beneficiary(*c, "whatsapp", "966500000001", "Ahmed A.", 200, true);
  REQUIRE(b.has_value());
  CHECK(b->id == a->id);
  CHECK(b->display_name == "Ahmed A.");
  CHECK(b->last_inbound_at == 200);
  CHECK(b->created_at == 100);

  // No name in this message (an SMS, say): the one we have stays.
  auto n = upsert_beneficiary(*c, "whatsapp", "966500000001", "", 300, true);
  REQUIRE(n.has_value());
  CHECK(n->display_name == "Ahmed A.");
  CHECK(n->last_inbound_at == 300);

  // Not an inbound message (staff open the record, an outbound notice): last_inbound_at stays.
  auto o = upsert_beneficiary(*c, "whatsapp", "966500000001", "Other", 400, false);
  REQUIRE(o.has_value());
  CHECK(o->last_inbound_at == 300);

  // The same address on another channel is another beneficiary.
  auto t = upsert_beneficiary(*c, "telegram", "966500000001", "", 500, false);
  REQUIRE(t.has_value());
  CHECK(t->id != a->id);
  CHECK(t->display_name.empty());
  CHECK_FALSE(t->last_inbound_at.has_value());
}

namespace {

std::int64_t total_changes(connection& c) {
  auto q = c.prepare("SELECT total_changes()");
  REQUIRE(q.has_value());
  REQUIRE(q->step().value());
  return q->int64(0);
}

}  // namespace

TEST_CASE("upsert_beneficiary writes only what changed; last_inbound_at lags by under a minute") {
  auto c = fresh_connection();
  REQUIRE(upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda", 1000, true).has_value());
  const auto before = total_changes(*c);

  // The next message 30 s later, same name: nothing is written, the row is as it was.
  auto a = upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda", 1030, true);
  REQUIRE(a.has_value());
  CHECK(a->last_inbound_at == 1000);
  CHECK(total_changes(*c) == before);

  // A new name is written at once; the inbound time still waits for its minute.
  auto b = upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda S.", 1059, true);
  REQUIRE(b.has_value());
  CHECK(b->display_name == "Huda S.");
  CHECK(b->last_inbound_at == 1000);
  CHECK(total_changes(*c) == before + 1);

  // A minute after the stored time it is refreshed, and what is returned is what is stored.
  auto d = upsert_beneficiary(*c, "whatsapp", "966500000003", "Huda S.", 1060, true);
  REQUIRE(d.has_value());
  CHECK(d->last_inbound_at == 1060);
  auto e = upsert_beneficiary(*c, "whatsapp", "966500000003", "", 1061, false);
  REQUIRE(e.has_value());
  CHECK(e->last_inbound_at == 1060);
  CHECK(e->display_name == "Huda S.");

  // A clock that went back is believed (the stored time is never in the future).
  auto f = upsert_beneficiary(*c, "whatsapp", "966500000003", "", 900, true);
  REQUIRE(f.has_value());
  CHECK(f->last_inbound_at == 900);
}

TEST_CASE("upsert_beneficiary: the 24-hour window runs from when the person wrote, not from a late delivery") {
  auto c = fresh_connection();
  const std::int64_t day = 86400;
  // Written two days ago, delivered now (Meta retried it after an outage): no window opens now.
  auto a = upsert_beneficiary(*c, "whatsapp", "966500000004", "", 10 * day, true, 8 * day);
  REQUIRE(a.has_value());
  CHECK(a->last_inbound_at == 8 * day);
  // A newer message moves it forward; an older one delivered after it does not move it back.
  auto b = upsert_beneficiary(*c, "whatsapp", "966500000004", "", 10 * day + 5, true, 10 * day);
  REQUIRE(b.has_value());
  CHECK(b->last_inbound_at == 10 * day);
  auto d = upsert_beneficiary(*c, "whatsapp", "966500000004", "", 10 * day + 100, true, 9 * day);
  REQUIRE(d.has_value());
  CHECK(d->last_inbound_at == 10 * day);
  // A time in the future (a sender's clock ahead of ours) counts as now.
  auto e = upsert_beneficiary(*c, "whatsapp", "966500000004", "", 10 * day + 200, true, 11 * day);
  REQUIRE(e.has_value());
  CHECK(e->last_inbound_at == 10 * day + 200);
}

TEST_CASE("upsert_beneficiary never writes a name back onto an erased beneficiary") {
  auto c = fresh_connection();
  auto a = upsert_beneficiary(*c, "sms", "+966500000002", "Sara", 100, true);
  REQUIRE(a.has_value());
  REQUIRE(!c->exec_script("UPDATE beneficiaries SET display_name = '', erased_at = 150"));
  auto b = upsert_beneficiary(*c, "sms", "+966500000002", "Sara", 200, true);
  REQUIRE(b.has_value());
  CHECK(b->id == a->id);
  CHECK(b->display_name.empty());
  CHECK(b->erased_at == 150);
  CHECK(b->last_inbound_at == 200);
}

namespace {

std::int64_t value(connection& c, const std::string& sql) {
  auto q = c.prepare(sql);
  REQUIRE(q.has_value());
  REQUIRE(q->step().value());
  return q->int64(0);
}

/// A change WhatsApp reported without its time (the window then decides), seen at `now`.
address_change change(std::int64_t now, std::int64_t at = 0, bool same_person = false) {
  address_change ch;
  ch.now = now;
  ch.at = at;
  ch.same_person = same_person;
  return ch;
}

/// A beneficiary at `address` with its conversation, one inbound message and one reply in the
/// outbox in `state`; returns the conversation id.
std::int64_t person(connection& c, const std::string& address, std::int64_t now, const std::string& state) {
  auto b = upsert_beneficiary(c, "whatsapp", address, "", now, true);
  REQUIRE(b.has_value());
  auto conv = conversation_for(c, b->id, now);
  REQUIRE(conv.has_value());
  message_row m;
  m.conversation_id = conv->id;
  m.direction = "in";
  m.sender = "beneficiary";
  m.text = "from " + address;
  m.created_at = now;
  auto mid = insert_message(c, m);
  REQUIRE(mid.has_value());
  outbox_row o;
  o.conversation_id = conv->id;
  o.channel = "whatsapp";
  o.recipient = address;
  o.payload = "{}";
  o.state = state;
  o.created_at = now;
  auto oid = outbox_enqueue(c, o);  // pending, or sending
  REQUIRE(oid.has_value());
  if (state != "pending" && state != "sending")
    REQUIRE(c.prepare("UPDATE outbox SET state = '" + state + "' WHERE id = " + std::to_string(*oid))->exec() ==
            boost::system::error_code());
  return conv->id;
}

}  // namespace

TEST_CASE("move_address: the old number's beneficiary and pending replies move to the new number") {
  auto c = fresh_connection();
  const auto conv = person(*c, "966500000101", 100, "pending");
  person(*c, "966500000999", 100, "pending");  // someone else, untouched
  const auto id = value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000101'");

  auto r = move_address(*c, "whatsapp", "966500000101", "966500000202", change(300));
  REQUIRE(r.has_value());
  CHECK(r->what == address_move::moved);
  CHECK(r->beneficiary_id == id);
  CHECK_FALSE(r->folded_conversation.has_value());
  CHECK(value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000202'") == id);
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries WHERE address = '966500000101'") == 0);
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE recipient = '966500000202' AND conversation_id = " +
                      std::to_string(conv)) == 1);
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE recipient = '966500000999'") == 1);

  // Nobody at the old address, the same address, or another channel: nothing moves.
  CHECK(move_address(*c, "whatsapp", "966500000101", "966500000303", change(300))->what == address_move::none);
  CHECK(move_address(*c, "whatsapp", "966500000202", "966500000202", change(300))->what == address_move::none);
  CHECK(move_address(*c, "telegram", "966500000202", "966500000303", change(300))->what == address_move::none);
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries WHERE address = '966500000202'") == 1);
}

TEST_CASE("move_address: replies in flight, retried later or dead are addressed to the new number") {
  auto c = fresh_connection();
  person(*c, "966500000101", 100, "sending");  // its retry, after a 5xx, reads the row again
  const auto conv = value(*c, "SELECT id FROM conversations");
  outbox_row dead;
  dead.conversation_id = conv;
  dead.channel = "whatsapp";
  dead.recipient = "966500000101";
  dead.payload = "{}";
  dead.state = "dead";
  dead.created_at = 100;
  REQUIRE(outbox_enqueue(*c, dead).has_value());
  REQUIRE(c->prepare("UPDATE outbox SET state = 'dead' WHERE id = 2")->exec() == boost::system::error_code());
  REQUIRE(c->prepare("UPDATE outbox SET state = 'sent' WHERE id = 1")->exec() == boost::system::error_code());
  outbox_row sending = dead;
  sending.state = "sending";
  REQUIRE(outbox_enqueue(*c, sending).has_value());
  // The intake's mobile, taken from the channel: the old number.
  REQUIRE(c->prepare("INSERT INTO cases (reference, beneficiary_id, conversation_id, channel, full_name, national_id, "
                     "mobile, city, service_type, description, created_at, updated_at) SELECT 'AWN-1', beneficiary_id, id, "
                     "'whatsapp', 'n', '1', '+966500000101', 'c', 'legal', 'd', 1, 1 FROM conversations")
              ->exec() == boost::system::error_code());
  REQUIRE(move_address(*c, "whatsapp", "966500000101", "966500000202", change(300))->what == address_move::moved);
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE recipient = '966500000202' AND state IN ('dead', 'sending')") == 2);
  // What was sent stays a record of where it went.
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE recipient = '966500000101' AND state = 'sent'") == 1);
  CHECK(value(*c, "SELECT count(*) FROM cases WHERE mobile = '+966500000202'") == 1);
}

TEST_CASE("move_address: the number's previous holder is set aside, not merged into the person") {
  auto c = fresh_connection();
  const auto now = 1'800'000'000;
  // Someone held 966500000202 before: they wrote weeks ago and left a case.
  person(*c, "966500000202", now - 40 * 86400, "pending");
  REQUIRE(c->prepare("INSERT INTO cases (reference, beneficiary_id, channel, full_name, national_id, mobile, city, "
                     "service_type, description, created_at, updated_at) SELECT 'AWN-2', id, 'whatsapp', 'other', '2', "
                     "'+966500000202', 'c', 'legal', 'd', 1, 1 FROM beneficiaries")
              ->exec() == boost::system::error_code());
  const auto stranger = value(*c, "SELECT id FROM beneficiaries");
  person(*c, "966500000101", now - 3600, "sent");
  const auto person_id = value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000101'");

  auto r = move_address(*c, "whatsapp", "966500000101", "966500000202", change(now));
  REQUIRE(r.has_value());
  CHECK(r->what == address_move::moved);
  CHECK(r->retired_beneficiary == stranger);
  CHECK(value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000202'") == person_id);
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries WHERE address = 'retired:" + std::to_string(stranger) +
                      ":966500000202'") == 1);
  CHECK(value(*c, "SELECT count(*) FROM conversations") == 2);
  CHECK(value(*c, "SELECT count(*) FROM cases WHERE beneficiary_id = " + std::to_string(stranger)) == 1);
  // Their reply that had not gone will not go to the new holder of the number.
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE state = 'dead' AND last_error LIKE 'number_reassigned%' AND "
                  "recipient LIKE 'retired:%'") == 1);
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE recipient = '966500000202'") == 0);
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE recipient = '966500000101' AND state = 'sent'") == 1);

  // A record at the new number begun before the person last wrote from the old one is not
  // theirs either, even a recent one without a case.
  auto d = fresh_connection();
  person(*d, "966500000202", now - 86400, "sent");
  person(*d, "966500000101", now - 7 * 86400, "sent");
  REQUIRE(d->prepare("UPDATE beneficiaries SET last_inbound_at = " + std::to_string(now - 3600) +
                     " WHERE address = '966500000101'")
              ->exec() == boost::system::error_code());
  auto r2 = move_address(*d, "whatsapp", "966500000101", "966500000202", change(now));
  REQUIRE(r2.has_value());
  CHECK(r2->retired_beneficiary.has_value());
  CHECK(value(*d, "SELECT count(*) FROM beneficiaries") == 2);
}

TEST_CASE("move_address: both with the bot, the person keeps their consent and the dialog they were in") {
  auto c = fresh_connection();
  const auto old_conv = person(*c, "966500000101", 100, "sent");
  REQUIRE(c->prepare("UPDATE beneficiaries SET consented_at = 100 WHERE address = '966500000101'")->exec() ==
          boost::system::error_code());
  REQUIRE(c->prepare("UPDATE conversations SET dialog_state = '{\"consented\":true,\"flow\":\"intake\",\"step\":\"city\"}' "
                     "WHERE id = " + std::to_string(old_conv))
              ->exec() == boost::system::error_code());
  // From the new number: a greeting, and the consent question the bot asked a stranger.
  const auto new_conv = person(*c, "966500000202", 200, "sent");
  REQUIRE(c->prepare("UPDATE conversations SET dialog_state = '{\"consented\":false,\"flow\":\"welcome\",\"step\":\"consent\"}' "
                     "WHERE id = " + std::to_string(new_conv))
              ->exec() == boost::system::error_code());
  REQUIRE(move_address(*c, "whatsapp", "966500000101", "966500000202", change(300))->what == address_move::merged);
  CHECK(value(*c, "SELECT count(*) FROM conversations WHERE json_extract(dialog_state, '$.flow') = 'intake' AND "
                  "json_extract(dialog_state, '$.consented') = 1") == 1);

  // Past consent on the new number (consented there, into the menu): that dialog carries on,
  // and says consented.
  auto d = fresh_connection();
  person(*d, "966500000101", 100, "sent");
  const auto n2 = person(*d, "966500000202", 200, "sent");
  REQUIRE(d->prepare("UPDATE conversations SET dialog_state = '{\"consented\":true,\"flow\":\"volunteer\"}' WHERE id = " +
                     std::to_string(n2))
              ->exec() == boost::system::error_code());
  REQUIRE(move_address(*d, "whatsapp", "966500000101", "966500000202", change(300))->what == address_move::merged);
  CHECK(value(*d, "SELECT count(*) FROM conversations WHERE json_extract(dialog_state, '$.flow') = 'volunteer'") == 1);
}

TEST_CASE("move_address: an agent holding the newer conversation keeps it over the older one's place in the queue") {
  auto c = fresh_connection();
  REQUIRE(c->prepare("INSERT INTO staff (username, display_name, role, password_hash, created_at) VALUES "
                     "('huda', 'Huda', 'agent', 'x', 1)")
              ->exec() == boost::system::error_code());
  const auto old_conv = person(*c, "966500000101", 100, "sent");
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'waiting', queued_at = 150 WHERE id = " + std::to_string(old_conv))
              ->exec() == boost::system::error_code());
  const auto new_conv = person(*c, "966500000202", 200, "sent");
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'staff', assigned_staff_id = 1, first_staff_reply_at = 250 WHERE id = " +
                     std::to_string(new_conv))
              ->exec() == boost::system::error_code());
  REQUIRE(move_address(*c, "whatsapp", "966500000101", "966500000202", change(300))->what == address_move::merged);
  CHECK(value(*c, "SELECT count(*) FROM conversations WHERE id = " + std::to_string(old_conv) +
                  " AND mode = 'staff' AND assigned_staff_id = 1 AND first_staff_reply_at = 250") == 1);
}

TEST_CASE("move_address: someone who already wrote from the new number is folded into the older record") {
  auto c = fresh_connection();
  const auto old_conv = person(*c, "966500000101", 100, "sent");
  REQUIRE(c->prepare("UPDATE beneficiaries SET consented_at = NULL, display_name = 'Huda' WHERE address = '966500000101'")->exec() ==
          boost::system::error_code());
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'staff', assigned_staff_id = NULL, priority = 0 WHERE id = " +
                     std::to_string(old_conv))
              ->exec() == boost::system::error_code());
  const auto new_conv = person(*c, "966500000202", 200, "pending");
  REQUIRE(c->prepare("UPDATE beneficiaries SET consented_at = 150, display_name = 'Huda N.' WHERE address = '966500000202'")->exec() ==
          boost::system::error_code());
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'waiting', priority = 1, dialog_state = '{\"flow\":\"x\"}' WHERE id = " +
                     std::to_string(new_conv))
              ->exec() == boost::system::error_code());
  const auto keep = value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000101'");

  auto r = move_address(*c, "whatsapp", "966500000101", "966500000202", change(300));
  REQUIRE(r.has_value());
  CHECK(r->what == address_move::merged);
  CHECK(r->beneficiary_id == keep);
  CHECK(r->folded_conversation == new_conv);
  CHECK(r->into_conversation == old_conv);
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000202'") == keep);
  CHECK(value(*c, "SELECT consented_at FROM beneficiaries") == 150);
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries WHERE display_name = 'Huda N.'") == 1);
  CHECK(value(*c, "SELECT count(*) FROM conversations") == 1);
  CHECK(value(*c, "SELECT count(*) FROM messages WHERE conversation_id = " + std::to_string(old_conv)) == 2);
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE conversation_id = " + std::to_string(old_conv)) == 2);
  // Staff held the older conversation: it stays theirs, and the danger raised from the new
  // number raises its priority.
  CHECK(value(*c, "SELECT count(*) FROM conversations WHERE mode = 'staff' AND priority = 1") == 1);
}

TEST_CASE("move_address: a handoff asked for from the new number carries on when the bot held the older one") {
  auto c = fresh_connection();
  const auto old_conv = person(*c, "966500000101", 100, "sent");
  const auto new_conv = person(*c, "966500000202", 200, "sent");
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'waiting', queue_reason = 'asked', queued_at = 210, "
                     "dialog_state = '{\"flow\":\"handoff\"}' WHERE id = " + std::to_string(new_conv))
              ->exec() == boost::system::error_code());
  REQUIRE(move_address(*c, "whatsapp", "966500000101", "966500000202", change(300))->what == address_move::merged);
  CHECK(value(*c, "SELECT count(*) FROM conversations WHERE id = " + std::to_string(old_conv) +
                      " AND mode = 'waiting' AND queue_reason = 'asked' AND queued_at = 210 AND "
                      "dialog_state = '{\"flow\":\"handoff\"}'") == 1);
}

TEST_CASE("move_address: danger raised from the old number stays when staff hold the newer conversation") {
  auto c = fresh_connection();
  REQUIRE(c->prepare("INSERT INTO staff (username, display_name, role, password_hash, created_at) VALUES "
                     "('huda', 'Huda', 'agent', 'x', 1)")
              ->exec() == boost::system::error_code());
  const auto old_conv = person(*c, "966500000101", 100, "sent");
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'waiting', priority = 1, queue_reason = 'danger', queued_at = 150 "
                     "WHERE id = " + std::to_string(old_conv))
              ->exec() == boost::system::error_code());
  const auto new_conv = person(*c, "966500000202", 200, "sent");
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'staff', assigned_staff_id = 1 WHERE id = " + std::to_string(new_conv))
              ->exec() == boost::system::error_code());
  REQUIRE(move_address(*c, "whatsapp", "966500000101", "966500000202", change(300))->what == address_move::merged);
  CHECK(value(*c, "SELECT count(*) FROM conversations WHERE mode = 'staff' AND assigned_staff_id = 1 AND priority = 1 "
                  "AND queue_reason = 'danger'") == 1);
}

TEST_CASE("move_address: with the change's time, a record begun before it is the previous holder's, one after it the person's") {
  const std::int64_t now = 1'800'000'000, at = now - 60;
  {
    // Begun a day before the change, no case: not theirs.
    auto c = fresh_connection();
    person(*c, "966500000101", now - 30 * 86400, "sent");
    person(*c, "966500000202", at - 86400, "sent");
    auto r = move_address(*c, "whatsapp", "966500000101", "966500000202", change(now, at));
    REQUIRE(r.has_value());
    CHECK(r->what == address_move::moved);
    CHECK(r->retired_beneficiary.has_value());
  }
  {
    // Begun just after the change, and already with a case (a whole intake before the notice
    // came): theirs.
    auto c = fresh_connection();
    person(*c, "966500000101", now - 30 * 86400, "sent");
    person(*c, "966500000202", at + 5, "sent");
    REQUIRE(c->prepare("INSERT INTO cases (reference, beneficiary_id, channel, full_name, national_id, mobile, city, "
                       "service_type, description, created_at, updated_at) SELECT 'AWN-3', id, 'whatsapp', 'n', '3', "
                       "'+966500000202', 'c', 'legal', 'd', 1, 1 FROM beneficiaries WHERE address = '966500000202'")
                ->exec() == boost::system::error_code());
    auto r = move_address(*c, "whatsapp", "966500000101", "966500000202", change(now, at));
    REQUIRE(r.has_value());
    CHECK(r->what == address_move::merged);
    CHECK(value(*c, "SELECT count(*) FROM cases WHERE beneficiary_id = " + std::to_string(r->beneficiary_id)) == 1);
  }
}

TEST_CASE("move_address: a user id is never handed on, so the record at the new address is the person's whatever its age") {
  auto c = fresh_connection();
  const std::int64_t now = 1'800'000'000;
  person(*c, "SA.OLD.1", now - 86400, "sent");
  person(*c, "966500000202", now - 300 * 86400, "sent");  // the same person, under their phone number
  auto r = move_address(*c, "whatsapp", "SA.OLD.1", "966500000202", change(now, now - 60, true));
  REQUIRE(r.has_value());
  CHECK(r->what == address_move::merged);
  CHECK_FALSE(r->retired_beneficiary.has_value());
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries") == 1);
}

TEST_CASE("move_address: the previous holder is set aside even when the person was never filed under the old number") {
  auto c = fresh_connection();
  const std::int64_t now = 1'800'000'000;
  const auto conv = person(*c, "966500000202", now - 90 * 86400, "pending");
  REQUIRE(c->prepare("UPDATE conversations SET mode = 'waiting', queued_at = 1, priority = 1 WHERE id = " +
                     std::to_string(conv))
              ->exec() == boost::system::error_code());
  REQUIRE(c->prepare("INSERT INTO cases (reference, beneficiary_id, conversation_id, channel, full_name, national_id, mobile, "
                     "city, service_type, description, created_at, updated_at) SELECT 'AWN-4', beneficiary_id, id, "
                     "'whatsapp', 'n', '4', '+966500000202', 'c', 'legal', 'd', 1, 1 FROM conversations")
              ->exec() == boost::system::error_code());
  auto r = move_address(*c, "whatsapp", "966500000101", "966500000202", change(now, now - 60));
  REQUIRE(r.has_value());
  CHECK(r->what == address_move::none);
  REQUIRE(r->retired_beneficiary.has_value());
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries WHERE address = '966500000202'") == 0);
  // Out of the queue, and no number on their case that now reaches someone else.
  CHECK(value(*c, "SELECT count(*) FROM conversations WHERE mode = 'resolved' AND queued_at IS NULL AND priority = 0") == 1);
  CHECK(value(*c, "SELECT count(*) FROM cases WHERE mobile = ''") == 1);
  // Their reply that was waiting is dead, and a staff retry cannot send it.
  const auto dead = value(*c, "SELECT id FROM outbox WHERE state = 'dead' AND last_error LIKE 'number_reassigned%'");
  CHECK(outbox_revive(*c, dead, 1) == boost::system::error_code(errc::invalid));
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE state = 'pending'") == 0);
}

TEST_CASE("user ids: one beneficiary per WhatsApp user id, found again by it") {
  auto c = fresh_connection();
  auto a = upsert_beneficiary(*c, "whatsapp", "966500000101", "", 100, true);
  auto b = upsert_beneficiary(*c, "whatsapp", "966500000202", "", 100, true);
  REQUIRE(a.has_value());
  REQUIRE(b.has_value());
  CHECK_FALSE(a->user_id.has_value());
  CHECK_FALSE(address_for_user_id(*c, "whatsapp", "SA.1")->has_value());
  REQUIRE_FALSE(set_user_id(*c, a->id, "whatsapp", "SA.1"));
  CHECK(address_for_user_id(*c, "whatsapp", "SA.1")->value_or("") == "966500000101");
  CHECK(upsert_beneficiary(*c, "whatsapp", "966500000101", "", 100, true)->user_id == std::optional<std::string>("SA.1"));
  CHECK_FALSE(address_for_user_id(*c, "telegram", "SA.1")->has_value());
  // Named for someone else later (WhatsApp gives user ids to one person only): it moves.
  REQUIRE_FALSE(set_user_id(*c, b->id, "whatsapp", "SA.1"));
  CHECK(address_for_user_id(*c, "whatsapp", "SA.1")->value_or("") == "966500000202");
  CHECK_FALSE(upsert_beneficiary(*c, "whatsapp", "966500000101", "", 100, true)->user_id.has_value());
}

TEST_CASE("move_address: a record known only by a user id joins the long-standing record of the number") {
  auto c = fresh_connection();
  const auto phone_conv = person(*c, "966500000202", 100, "sent");  // known by the number for long
  const auto phone_id = value(*c, "SELECT id FROM beneficiaries");
  REQUIRE(c->prepare("UPDATE beneficiaries SET lang = 'en' WHERE id = " + std::to_string(phone_id))->exec() ==
          boost::system::error_code());
  person(*c, "SA.9", 200, "pending");  // a message with the user id alone came first, its reply waits
  // Then one names both: bot/ folds the user id's record into the number's, and records the id.
  address_change ch = change(300, 0, true);
  ch.keep_to = true;
  auto r = move_address(*c, "whatsapp", "SA.9", "966500000202", ch);
  REQUIRE(r.has_value());
  CHECK(r->what == address_move::merged);
  CHECK(r->beneficiary_id == phone_id);
  CHECK(r->into_conversation == phone_conv);
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries WHERE id = " + std::to_string(phone_id) +
                  " AND address = '966500000202' AND lang = 'en'") == 1);
  CHECK(value(*c, "SELECT count(*) FROM beneficiaries") == 1);
  CHECK(value(*c, "SELECT count(*) FROM conversations WHERE id = " + std::to_string(phone_conv)) == 1);
  CHECK(value(*c, "SELECT count(*) FROM messages WHERE conversation_id = " + std::to_string(phone_conv)) == 2);
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE recipient = 'SA.9'") == 0);  // it goes to the number
}

TEST_CASE("retire_address: a previous holder's user id no longer finds them") {
  auto c = fresh_connection();
  person(*c, "966500000202", 100, "pending");
  const auto id = value(*c, "SELECT id FROM beneficiaries");
  REQUIRE_FALSE(set_user_id(*c, id, "whatsapp", "SA.8"));
  auto r = retire_address(*c, "whatsapp", "966500000202", 300);
  REQUIRE(r.has_value());
  CHECK(*r == std::optional<std::int64_t>(id));
  CHECK_FALSE(address_for_user_id(*c, "whatsapp", "SA.8")->has_value());
  CHECK(value(*c, "SELECT count(*) FROM outbox WHERE state = 'dead' AND recipient LIKE 'retired:%'") == 1);
  CHECK_FALSE(retire_address(*c, "whatsapp", "966500000202", 300)->has_value());  // nobody there now
}

namespace {
/// Someone known at 966500000101 under the user id SA.1 moved to 966500000202 at `at`; their id.
std::int64_t moved_at(connection& c, std::int64_t at) {
  person(c, "966500000101", at - 86400, "sent");
  const auto id = value(c, "SELECT id FROM beneficiaries");
  REQUIRE_FALSE(set_user_id(c, id, "whatsapp", "SA.1"));
  REQUIRE(move_address(c, "whatsapp", "966500000101", "966500000202", change(at + 5, at)).has_value());
  return id;
}
}  // namespace

TEST_CASE("moved_address_for: a message written from the old number before the change finds the person") {
  auto c = fresh_connection();
  const std::int64_t at = 1'800'000'000;
  moved_at(*c, at);
  // Written before the change, or at its second: theirs, at the new number.
  CHECK(moved_address_for(*c, "whatsapp", "966500000101", at - 30, "")->value_or("") == "966500000202");
  CHECK(moved_address_for(*c, "whatsapp", "966500000101", at, "")->value_or("") == "966500000202");
  // Written after it: the number's next holder.
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000101", at + 1, "")->has_value());
  // No time known: only the user id the old number had can tell.
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000101", 0, "")->has_value());
  CHECK(moved_address_for(*c, "whatsapp", "966500000101", at + 99, "SA.1")->value_or("") == "966500000202");
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000101", at + 99, "SA.2")->has_value());
  // Another number, another channel: nothing.
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000303", at - 30, "")->has_value());
  CHECK_FALSE(moved_address_for(*c, "telegram", "966500000101", at - 30, "")->has_value());

  // They move again: the old number's late message follows them to where they are now.
  REQUIRE(move_address(*c, "whatsapp", "966500000202", "966500000404", change(at + 100, at + 90)).has_value());
  CHECK(moved_address_for(*c, "whatsapp", "966500000101", at - 30, "")->value_or("") == "966500000404");
  CHECK(moved_address_for(*c, "whatsapp", "966500000202", at + 50, "")->value_or("") == "966500000404");
}

TEST_CASE("moved_address_for: a number's previous holder keeps what they wrote, set aside") {
  auto c = fresh_connection();
  const std::int64_t now = 1'800'000'000;
  person(*c, "966500000202", now - 90 * 86400, "sent");
  const auto old_holder = value(*c, "SELECT id FROM beneficiaries");
  REQUIRE_FALSE(set_user_id(*c, old_holder, "whatsapp", "SA.7"));
  // Someone else's number change lands on it (the change at `now - 60`).
  person(*c, "966500000101", now - 86400, "sent");
  REQUIRE(move_address(*c, "whatsapp", "966500000101", "966500000202", change(now, now - 60))->retired_beneficiary ==
          std::optional<std::int64_t>(old_holder));
  const std::string set_aside = "retired:" + std::to_string(old_holder) + ":966500000202";
  CHECK(moved_address_for(*c, "whatsapp", "966500000202", now - 61, "")->value_or("") == set_aside);
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000202", now - 60, "")->has_value());  // the new holder's
  CHECK(moved_address_for(*c, "whatsapp", "966500000202", now + 600, "SA.7")->value_or("") == set_aside);

  // Set aside because a new user id wrote from their number (no time known): by user id only.
  person(*c, "966500000505", now - 90 * 86400, "sent");
  const auto other = value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000505'");
  REQUIRE_FALSE(set_user_id(*c, other, "whatsapp", "SA.5"));
  REQUIRE(retire_address(*c, "whatsapp", "966500000505", now).has_value());
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000505", now - 3600, "")->has_value());
  CHECK(moved_address_for(*c, "whatsapp", "966500000505", now - 3600, "SA.5")->value_or("") ==
        "retired:" + std::to_string(other) + ":966500000505");
  // Someone set aside with neither a time nor a user id leaves nothing to route by.
  person(*c, "966500000606", now - 90 * 86400, "sent");
  const auto before = value(*c, "SELECT count(*) FROM address_moves");
  REQUIRE(retire_address(*c, "whatsapp", "966500000606", now).has_value());
  CHECK(value(*c, "SELECT count(*) FROM address_moves") == before);
}

TEST_CASE("address_moves: a merge keeps them with the person, an erasure keeps them, a week's age removes them") {
  auto c = fresh_connection();
  const std::int64_t at = 1'800'000'000;
  person(*c, "SA.3", at - 2 * 86400, "sent");  // a record begun by the user id alone
  person(*c, "966500000101", at - 86400, "sent");
  const auto id = value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000101'");
  REQUIRE(move_address(*c, "whatsapp", "966500000101", "966500000202", change(at + 5, at)).has_value());
  // A file the number's record sent, kept here (storage/media_copies.hpp): it goes with the person.
  REQUIRE_FALSE(want_media_copy(*c, "whatsapp", "media.9", id, at));
  // The user id's older record and the number's join: the late-message route stays valid.
  address_change ch = change(at + 10, 0, true);
  ch.keep_to = true;
  auto joined = move_address(*c, "whatsapp", "SA.3", "966500000202", ch);
  REQUIRE(joined.has_value());
  REQUIRE(joined->what == address_move::merged);
  CHECK(joined->beneficiary_id != id);  // the older record, the user id's, is kept
  CHECK(value(*c, "SELECT count(*) FROM address_moves WHERE beneficiary_id = " + std::to_string(joined->beneficiary_id)) == 1);
  CHECK(moved_address_for(*c, "whatsapp", "966500000101", at - 30, "")->value_or("") == "966500000202");
  CHECK(value(*c, "SELECT beneficiary_id FROM media_copies") == joined->beneficiary_id);

  // Erased, the record keeps its address, and its late messages still find it (not a stranger
  // who has the old number now).
  REQUIRE_FALSE(erase_beneficiary(*c, joined->beneficiary_id, at + 20));
  CHECK(moved_address_for(*c, "whatsapp", "966500000101", at - 30, "")->value_or("") == "966500000202");
  CHECK(value(*c, "SELECT count(*) FROM media_copies") == 0);  // the copy is not
  REQUIRE(c->prepare("DELETE FROM address_moves")->exec() == boost::system::error_code());

  person(*c, "966500000303", at - 86400, "sent");
  REQUIRE(move_address(*c, "whatsapp", "966500000303", "966500000404", change(at + 5, at)).has_value());
  CHECK(prune_address_moves(*c, at + 5).value() == 0);  // recorded at the change's arrival
  CHECK(prune_address_moves(*c, at + 6).value() == 1);
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000303", at - 30, "")->has_value());
}

TEST_CASE("moved_address_for: the record that holds a user id now wins; another user id is not the writer") {
  auto c = fresh_connection();
  const std::int64_t at = 1'800'000'000;
  const auto id = moved_at(*c, at);
  // Written before the change, but under a user id that is not the one they had there: not theirs.
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000101", at - 30, "SA.9")->has_value());
  // Their old user id, from another address than the one they left: not this row's.
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000303", at + 99, "SA.1")->has_value());
  // By the user id alone (a message without the number): theirs.
  CHECK(moved_address_for(*c, "whatsapp", "SA.1", at + 99, "SA.1")->value_or("") == "966500000202");

  // A record set aside at the new number was in fact the person's (they wrote from it under
  // their new id, then a late message from the old number made it look older): once their
  // record holds that id, their messages are theirs, not the set-aside record's.
  person(*c, "966500000404", at - 86400, "sent");
  const auto set_aside = value(*c, "SELECT id FROM beneficiaries WHERE address = '966500000404'");
  REQUIRE_FALSE(set_user_id(*c, set_aside, "whatsapp", "SA.4"));
  REQUIRE(retire_address(*c, "whatsapp", "966500000404", at).has_value());
  CHECK(moved_address_for(*c, "whatsapp", "966500000404", at + 99, "SA.4")->value_or("").rfind("retired:", 0) == 0);
  REQUIRE_FALSE(set_user_id(*c, id, "whatsapp", "SA.4"));
  CHECK_FALSE(moved_address_for(*c, "whatsapp", "966500000404", at + 99, "SA.4")->has_value());
}
