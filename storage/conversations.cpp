#include "storage/conversations.hpp"

namespace aoun::storage {
namespace {

using boost::system::error_code;

template <class T>
std::optional<T> opt_int(const statement& s, int col) {
  if (s.is_null(col)) return std::nullopt;
  return static_cast<T>(s.int64(col));
}
std::optional<std::string> opt_text(const statement& s, int col) {
  if (s.is_null(col)) return std::nullopt;
  return s.text(col);
}

constexpr const char* conversation_select =
    "SELECT c.id, c.beneficiary_id, c.mode, c.priority, COALESCE(c.queue_reason, ''), c.queued_at, "
    "c.assigned_staff_id, c.last_message_at, c.first_staff_reply_at, c.resolved_at, c.dialog_state, "
    "c.created_at, c.updated_at, b.channel, b.address, b.display_name, b.lang, b.last_inbound_at "
    "FROM conversations c JOIN beneficiaries b ON b.id = c.beneficiary_id ";

conversation_row read_conversation(const statement& s) {
  conversation_row r;
  r.id = s.int64(0);
  r.beneficiary_id = s.int64(1);
  r.mode = s.text(2);
  r.priority = static_cast<int>(s.int64(3));
  r.queue_reason = s.text(4);
  r.queued_at = opt_int<std::int64_t>(s, 5);
  r.assigned_staff_id = opt_int<std::int64_t>(s, 6);
  r.last_message_at = opt_int<std::int64_t>(s, 7);
  r.first_staff_reply_at = opt_int<std::int64_t>(s, 8);
  r.resolved_at = opt_int<std::int64_t>(s, 9);
  r.dialog_state = s.text(10);
  r.created_at = s.int64(11);
  r.updated_at = s.int64(12);
  r.channel = s.text(13);
  r.address = s.text(14);
  r.display_name = s.text(15);
  r.lang = s.text(16);
  r.last_inbound_at = opt_int<std::int64_t>(s, 17);
  return r;
}

constexpr const char* message_select =
    "SELECT m.id, m.conversation_id, m.direction, m.sender, m.staff_id, m.kind, m.text, m.payload, m.provider_id, "
    "m.created_at, COALESCE(s.display_name, ''), o.state, o.delivery_status, o.last_error FROM messages m "
    "LEFT JOIN staff s ON s.id = m.staff_id LEFT JOIN outbox o ON o.message_id = m.id ";

message_row read_message(const statement& s) {
  message_row m;
  m.id = s.int64(0);
  m.conversation_id = s.int64(1);
  m.direction = s.text(2);
  m.sender = s.text(3);
  m.staff_id = opt_int<std::int64_t>(s, 4);
  m.kind = s.text(5);
  m.text = s.text(6);
  m.payload = s.text(7);
  m.provider_id = opt_text(s, 8);
  m.created_at = s.int64(9);
  m.staff_name = s.text(10);
  m.outbox_state = opt_text(s, 11);
  m.delivery_status = opt_text(s, 12);
  m.outbox_error = opt_text(s, 13);
  return m;
}

constexpr const char* case_select =
    "SELECT id, reference, beneficiary_id, conversation_id, channel, step, verification_method, appointment, "
    "full_name, national_id, mobile, city, service_type, description, created_at, updated_at FROM cases ";

case_row read_case(const statement& s) {
  case_row k;
  k.id = s.int64(0);
  k.reference = s.text(1);
  k.beneficiary_id = s.int64(2);
  k.conversation_id = opt_int<std::int64_t>(s, 3);
  k.channel = s.text(4);
  k.step = s.text(5);
  k.verification_method = opt_text(s, 6);
  k.appointment = opt_text(s, 7);
  k.full_name = s.text(8);
  k.national_id = s.text(9);
  k.mobile = s.text(10);
  k.city = s.text(11);
  k.service_type = s.text(12);
  k.description = s.text(13);
  k.created_at = s.int64(14);
  k.updated_at = s.int64(15);
  return k;
}

// What retention decides on, for each beneficiary (conversations.hpp). Every lookup goes
// through an index: conversations_by_beneficiary, messages_by_conversation (the newest row of
// a transcript is the one with the highest id) and cases_by_beneficiary. The multi-argument
// max() is NULL when one argument is, hence the COALESCEs.
constexpr const char* retention_select =
    "SELECT b.id, b.erased_at, "
    "max(b.created_at, COALESCE(b.last_inbound_at, 0), "
    "COALESCE((SELECT max(max(c.created_at, c.updated_at, COALESCE(c.last_message_at, 0), COALESCE(c.resolved_at, 0), "
    "COALESCE((SELECT m.created_at FROM messages m WHERE m.conversation_id = c.id ORDER BY m.id DESC LIMIT 1), 0))) "
    "FROM conversations c WHERE c.beneficiary_id = b.id), 0), "
    "COALESCE((SELECT max(k.updated_at) FROM cases k WHERE k.beneficiary_id = b.id), 0)), "
    "EXISTS (SELECT 1 FROM cases k WHERE k.beneficiary_id = b.id AND k.step <> 'closed') "
    "OR EXISTS (SELECT 1 FROM conversations c WHERE c.beneficiary_id = b.id AND (c.mode = 'waiting' OR c.mode = 'staff')) "
    "FROM beneficiaries b ";

std::string retention_scan_sql() { return std::string(retention_select) + "WHERE b.id > ?1 ORDER BY b.id LIMIT ?2"; }

// Columns of retention_select: (id, erased_at, last activity, open case or with staff).
bool retention_due_row(const statement& s, std::int64_t before) {
  const std::int64_t last = s.int64(2);
  if (s.int64(3) != 0 || last > before) return false;
  return s.is_null(1) || s.int64(1) < last;
}

template <class Row, class Read>
result<Row> one(result<statement>& q, Read read) {
  if (!q) return q.error();
  auto r = q->step();
  if (!r) return r.error();
  if (!*r) return errc::not_found;
  return read(*q);
}

template <class Row, class Read>
result<std::vector<Row>> many(result<statement>& q, Read read) {
  if (!q) return q.error();
  std::vector<Row> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    out.push_back(read(*q));
  }
}

}  // namespace

boost::system::error_code set_opt_out(connection& c, std::string_view channel, std::string_view address,
                                      std::optional<std::int64_t> at) {
  // Only a change is written (and counted by changes()): a STOP again keeps the first time, and
  // a "yes" from someone who never opted out touches nothing.
  auto q = c.prepare(
      "UPDATE beneficiaries SET opted_out_at = ?1 WHERE channel = ?3 AND address = ?2 AND "
      "(opted_out_at IS NULL) = (?1 IS NOT NULL)");
  if (!q) return q.error();
  return q->bind(1, at).bind(2, address).bind(3, channel).exec();
}

result<std::optional<std::string>> address_for_user_id(connection& c, std::string_view channel, std::string_view user_id) {
  auto q = c.prepare("SELECT address FROM beneficiaries WHERE channel = ? AND user_id = ? AND address NOT LIKE 'retired:%'");
  if (!q) return q.error();
  q->bind(1, channel).bind(2, user_id);
  auto r = q->step();
  if (!r) return r.error();
  if (!*r) return std::optional<std::string>();
  return std::optional<std::string>(q->text(0));
}

result<std::optional<std::string>> moved_address_for(connection& c, std::string_view channel, std::string_view from,
                                                     std::int64_t written_at, std::string_view user_id) {
  // A user id is never handed on: it names the writer whenever it was written. Else the time:
  // the first change of that address after the message was written.
  // A record that holds the user id now wins over any move: whoever it names is that record's
  // (a record set aside by mistake must not swallow its owner's messages).
  if (!user_id.empty()) {
    auto q = c.prepare(
        "SELECT b.address FROM address_moves m JOIN beneficiaries b ON b.id = m.beneficiary_id "
        "WHERE m.channel = ?1 AND m.user_id = ?2 AND (m.from_address = ?3 OR ?3 = ?2) AND NOT EXISTS ("
        "SELECT 1 FROM beneficiaries x WHERE x.channel = ?1 AND x.user_id = ?2 AND x.address NOT LIKE 'retired:%') "
        "ORDER BY m.id DESC LIMIT 1");
    if (!q) return q.error();
    q->bind(1, channel).bind(2, user_id).bind(3, from);
    auto r = q->step();
    if (!r) return r.error();
    if (*r) return std::optional<std::string>(q->text(0));
  }
  if (written_at <= 0) return std::optional<std::string>();
  // By time, unless the message names another user id than the one the writer had there.
  auto q = c.prepare(
      "SELECT b.address FROM address_moves m JOIN beneficiaries b ON b.id = m.beneficiary_id "
      "WHERE m.channel = ?1 AND m.from_address = ?2 AND m.changed_at >= ?3 AND "
      "(m.user_id IS NULL OR ?4 = '' OR m.user_id = ?4) ORDER BY m.changed_at LIMIT 1");
  if (!q) return q.error();
  q->bind(1, channel).bind(2, from).bind(3, written_at).bind(4, user_id);
  auto r = q->step();
  if (!r) return r.error();
  if (!*r) return std::optional<std::string>();
  return std::optional<std::string>(q->text(0));
}

result<int> prune_address_moves(connection& c, std::int64_t before) {
  auto q = c.prepare("DELETE FROM address_moves WHERE recorded_at < ?");
  if (!q) return q.error();
  if (auto ec = q->bind(1, before).exec()) return result<int>(boost::system::in_place_error, ec);
  return c.changes();
}

result<bool> address_moves_exist(connection& c) {
  auto q = c.prepare("SELECT EXISTS (SELECT 1 FROM address_moves)");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  auto r = q->step();
  if (!r) return result<bool>(boost::system::in_place_error, r.error());
  return *r && q->int64(0) != 0;
}

boost::system::error_code set_user_id(connection& c, std::int64_t id, std::string_view channel, std::string_view user_id) {
  for (const char* sql : {"UPDATE beneficiaries SET user_id = NULL WHERE channel = ?2 AND user_id = ?3 AND id <> ?1",
                          "UPDATE beneficiaries SET user_id = ?3 WHERE id = ?1"}) {
    auto q = c.prepare(sql);
    if (!q) return q.error();
    if (auto ec = q->bind(1, id).bind(2, channel).bind(3, user_id).exec()) return ec;
  }
  return {};
}

namespace {
// Remembers that beneficiary `id` wrote from (channel, from) until `changed_at` (0: unknown),
// under the user id they had there, if any (moved_address_for).
boost::system::error_code record_move(connection& c, std::string_view channel, std::string_view from, std::int64_t id,
                                      std::int64_t changed_at, std::int64_t now) {
  auto q = c.prepare(
      "INSERT INTO address_moves (channel, from_address, beneficiary_id, changed_at, user_id, recorded_at) "
      "SELECT ?1, ?2, ?3, ?4, user_id, ?5 FROM beneficiaries WHERE id = ?3 AND (?4 > 0 OR user_id IS NOT NULL)");
  if (!q) return q.error();
  return q->bind(1, channel).bind(2, from).bind(3, id).bind(4, changed_at).bind(5, now).exec();
}

// Sets beneficiary `id`, the holder of `address` until now, aside (move_address, retire_address).
// `changed_at`: when the number stopped being theirs, if known (0: not known).
boost::system::error_code retire(connection& c, std::string_view channel, std::string_view address, std::int64_t id,
                                 std::int64_t changed_at, std::int64_t now) {
  const std::string retired = "retired:" + std::to_string(id) + ":" + std::string(address);
  // Their own late messages (written before the change, or under their user id) still reach
  // their record, not the new holder's (moved_address_for).
  if (auto ec = record_move(c, channel, address, id, changed_at, now)) return ec;
  // (A row of someone whose data was erased forgets its text as it dies, as in storage/outbox.cpp.)
  for (const char* sql : {"UPDATE outbox SET state = 'dead', payload = CASE WHEN erase_when_done THEN '{}' ELSE payload END, "
                          "last_error = 'number_reassigned: the number now belongs "
                          "to someone else' WHERE channel = ?2 AND recipient = ?3 AND state = 'pending'",
                          "UPDATE outbox SET recipient = ?1 WHERE channel = ?2 AND recipient = ?3 AND "
                          "state IN ('pending', 'sending')",
                          "UPDATE outbox SET recipient = ?1 WHERE channel = ?2 AND recipient = ?3 AND state = 'dead'",
                          // The number on their cases is no longer a way to reach them.
                          "UPDATE cases SET mobile = '' WHERE channel = ?2 AND mobile = '+' || ?3 AND "
                          "beneficiary_id = (SELECT id FROM beneficiaries WHERE channel = ?2 AND address = ?3)",
                          // Nor is their user id: whoever presents it now is not them.
                          "UPDATE beneficiaries SET address = ?1, user_id = NULL WHERE channel = ?2 AND address = ?3"}) {
    auto q = c.prepare(sql);
    if (!q) return q.error();
    if (auto ec = q->bind(1, retired).bind(2, channel).bind(3, address).exec()) return ec;
  }
  auto q = c.prepare(
      "UPDATE conversations SET mode = 'resolved', resolved_at = ?2, assigned_staff_id = NULL, queued_at = NULL, "
      "queue_reason = NULL, priority = 0 WHERE beneficiary_id = ?1 AND (mode = 'waiting' OR mode = 'staff')");
  if (!q) return q.error();
  return q->bind(1, id).bind(2, now).exec();
}
}  // namespace

result<std::optional<std::int64_t>> retire_address(connection& c, std::string_view channel, std::string_view address,
                                                   std::int64_t now) {
  auto q = c.prepare("SELECT id FROM beneficiaries WHERE channel = ? AND address = ?");
  if (!q) return q.error();
  q->bind(1, channel).bind(2, address);
  auto r = q->step();
  if (!r) return r.error();
  if (!*r) return std::optional<std::int64_t>();
  const std::int64_t id = q->int64(0);
  if (auto ec = retire(c, channel, address, id, 0, now)) return ec;
  return std::optional<std::int64_t>(id);
}

result<address_moved> move_address(connection& c, std::string_view channel, std::string_view from, std::string_view to,
                                   const address_change& change) {
  address_moved out;
  if (from == to || from.empty() || to.empty()) return out;
  struct found {
    std::int64_t id = 0, created_at = 0;
    std::optional<std::int64_t> last_inbound_at;
    bool has_records = false;  // a case or a volunteer record
  };
  const auto find = [&](std::string_view address) -> result<std::optional<found>> {
    auto q = c.prepare(
        "SELECT id, created_at, last_inbound_at, EXISTS (SELECT 1 FROM cases WHERE beneficiary_id = b.id) OR "
        "EXISTS (SELECT 1 FROM volunteers WHERE beneficiary_id = b.id) FROM beneficiaries b WHERE channel = ? AND address = ?");
    if (!q) return q.error();
    q->bind(1, channel).bind(2, address);
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return std::optional<found>();
    return std::optional<found>(found{q->int64(0), q->int64(1), opt_int<std::int64_t>(*q, 2), q->int64(3) != 0});
  };
  auto older = find(from);
  if (!older) return older.error();
  auto newer = find(to);
  if (!newer) return newer.error();
  const auto run = [&](const char* sql, std::int64_t a, std::int64_t b) -> boost::system::error_code {
    auto q = c.prepare(sql);
    if (!q) return q.error();
    return q->bind(1, a).bind(2, b).exec();
  };
  if (*newer && !change.same_person) {
    // The person, who wrote from the new number once it was theirs (WhatsApp does not order its
    // webhooks: before the notice came), or whoever had that number before them (operators hand
    // numbers on)? A record begun before the change (the notice's own time, give or take ten
    // minutes; without one, in the last 7 days and with no case or volunteer record), or before
    // the person last wrote from the old number, is the previous holder's. It is left to them,
    // under an address nothing can be sent to, so that neither their history nor their replies
    // reach the new holder; their conversation leaves the queue and staff's hands.
    const found& n = **newer;
    const bool after_change = change.at > 0 ? n.created_at >= change.at - change_slack_seconds
                                            : !n.has_records && n.created_at >= change.now - fold_window_seconds;
    const bool after_old = !*older || n.created_at + inbound_refresh_seconds * 2 >= (*older)->last_inbound_at.value_or(0);
    if (!after_change || !after_old) {
      // Their messages written before the change are theirs: not one second later.
      if (auto ec = retire(c, channel, to, n.id, change.at > 0 ? change.at - 1 : 0, change.now)) return ec;
      out.retired_beneficiary = n.id;
      newer->reset();
    }
  }
  if (!*older) return out;
  out.beneficiary_id = (*older)->id;
  // What they wrote from the old address before the change, delivered after this, is theirs
  // (moved_address_for). A user id joining its number needs no such record: the number's
  // record is known by that id from now on.
  if (!change.keep_to)
    if (auto ec = record_move(c, channel, from, (*older)->id, change.at, change.now)) return ec;
  std::optional<std::string> new_number_user_id;
  if (*newer) {
    const found& o = **older;
    const found& n = **newer;
    {
      std::int64_t keep = o.id, fold = n.id;
      if (change.keep_to && n.id < o.id) std::swap(keep, fold);  // ids grow with time
      out.beneficiary_id = keep;
      // Each has one conversation (conversation_for); the newer one's rows join the older one.
      std::optional<std::int64_t> keep_conv, fold_conv;
      for (auto [b, conv] : {std::pair{keep, &keep_conv}, std::pair{fold, &fold_conv}}) {
        auto q = c.prepare("SELECT id FROM conversations WHERE beneficiary_id = ? ORDER BY id DESC LIMIT 1");
        if (!q) return q.error();
        q->bind(1, b);
        auto r = q->step();
        if (!r) return r.error();
        if (*r) *conv = q->int64(0);
      }
      if (keep_conv && fold_conv) {
        out.folded_conversation = fold_conv;
        out.into_conversation = keep_conv;
        for (const char* sql : {
                 "UPDATE messages SET conversation_id = ?1 WHERE conversation_id = ?2",
                 // The one scan of a merge: the outbox has no index by conversation, which
                 // every reply would pay for (merges are rare; the DELETE below checks the
                 // foreign key the same way).
                 "UPDATE outbox SET conversation_id = ?1 WHERE conversation_id = ?2",
                 "UPDATE cases SET conversation_id = ?1 WHERE conversation_id = ?2",
                 "UPDATE surveys SET conversation_id = ?1 WHERE conversation_id = ?2",
                 "UPDATE conversations SET last_message_at = max(coalesce(last_message_at, 0), coalesce("
                 "(SELECT last_message_at FROM conversations WHERE id = ?2), 0)) WHERE id = ?1",
                 // Danger raised on either number stays (priority 1 is danger, head of the queue).
                 "UPDATE conversations SET priority = max(priority, (SELECT priority FROM conversations "
                 "WHERE id = ?2)) WHERE id = ?1",
                 // Where the person is now. Staff holding a conversation outrank one waiting for
                 // them, which outranks the bot: the newer conversation's mode, queue place,
                 // assignee and dialog carry on when they rank higher, or, both with the bot,
                 // when the newer dialog is past the consent question (else the person would be
                 // asked again, and an intake begun from the old number lost).
                 "UPDATE conversations SET (mode, queue_reason, queued_at, assigned_staff_id, dialog_state, "
                 "first_staff_reply_at, resolved_at) = (SELECT mode, queue_reason, queued_at, "
                 "assigned_staff_id, dialog_state, first_staff_reply_at, resolved_at FROM conversations WHERE id = ?2) "
                 "WHERE id = ?1 AND (SELECT CASE n.mode WHEN 'staff' THEN 3 WHEN 'waiting' THEN 2 ELSE 1 END > "
                 "CASE conversations.mode WHEN 'staff' THEN 3 WHEN 'waiting' THEN 2 ELSE 1 END OR "
                 "(n.mode IN ('bot', 'resolved') AND conversations.mode IN ('bot', 'resolved') AND "
                 "json_valid(n.dialog_state) AND json_extract(n.dialog_state, '$.consented') = 1) "
                 "FROM conversations n WHERE n.id = ?2)",
                 "UPDATE conversations SET queue_reason = 'danger' WHERE id = ?1 AND priority > 0 AND ?2 = ?2",
                 "DELETE FROM conversations WHERE id = ?2"})
          if (auto ec = run(sql, *keep_conv, *fold_conv)) return ec;
      }
      std::optional<std::string> fold_user_id;
      {
        auto q = c.prepare("SELECT user_id FROM beneficiaries WHERE id = ? AND user_id IS NOT NULL");
        if (!q) return q.error();
        q->bind(1, fold);
        auto r = q->step();
        if (!r) return r.error();
        if (*r) fold_user_id = q->text(0);
      }
      for (const char* sql : {"UPDATE conversations SET beneficiary_id = ?1 WHERE beneficiary_id = ?2",
                              "UPDATE address_moves SET beneficiary_id = ?1 WHERE beneficiary_id = ?2",
                              "UPDATE media_copies SET beneficiary_id = ?1 WHERE beneficiary_id = ?2",
                              "UPDATE cases SET beneficiary_id = ?1 WHERE beneficiary_id = ?2",
                              "UPDATE volunteers SET beneficiary_id = ?1 WHERE beneficiary_id = ?2",
                              "UPDATE beneficiaries SET "
                              "consented_at = coalesce(consented_at, (SELECT consented_at FROM beneficiaries WHERE id = ?2)), "
                              "last_inbound_at = max(coalesce(last_inbound_at, 0), coalesce((SELECT last_inbound_at FROM "
                              "beneficiaries WHERE id = ?2), 0)), "
                              "display_name = CASE WHEN erased_at IS NULL THEN coalesce((SELECT nullif(display_name, '') "
                              "FROM beneficiaries WHERE id = ?2), display_name) ELSE display_name END WHERE id = ?1",
                              // A dialog carried over from the newer conversation knows of the
                              // consent the person gave from the old number.
                              "UPDATE conversations SET dialog_state = json_set(dialog_state, '$.consented', json('true')) "
                              "WHERE beneficiary_id = ?1 AND json_valid(dialog_state) AND "
                              "(SELECT consented_at IS NOT NULL FROM beneficiaries WHERE id = ?1)",
                              "DELETE FROM beneficiaries WHERE id = ?2"})
        if (auto ec = run(sql, keep, fold)) return ec;
      if (fold_user_id && change.same_person) {  // the kept record is known by it too, unless it has its own
        auto q = c.prepare("UPDATE beneficiaries SET user_id = ? WHERE id = ? AND user_id IS NULL");
        if (!q) return q.error();
        if (auto ec = q->bind(1, *fold_user_id).bind(2, keep).exec()) return ec;
      }
      new_number_user_id = fold_user_id;
      out.what = address_move::merged;
    }
  }
  {
    auto q = c.prepare("UPDATE beneficiaries SET address = ?1 WHERE id = ?2");
    if (!q) return q.error();
    if (auto ec = q->bind(1, to).bind(2, out.beneficiary_id).exec()) return ec;
  }
  if (!change.same_person) {
    // WhatsApp makes a new user id with a new number: the one recorded is the old number's.
    // The record begun from the new number knows the new one; else the notice names it
    // (bot/ records it next), or the person's next message does.
    auto q = c.prepare("UPDATE beneficiaries SET user_id = ?1 WHERE id = ?2");
    if (!q) return q.error();
    if (auto ec = q->bind(1, new_number_user_id).bind(2, out.beneficiary_id).exec()) return ec;
  }
  // What is still to go to the old number goes to the new one: replies waiting or retried
  // later (pending, and sending: one already in flight finishes where it was going, and its
  // retry goes to the new number), and dead ones that staff may send again. The mobile number
  // the intake took from the channel is the new one too, so that staff do not call a stranger.
  for (const char* sql : {"UPDATE outbox SET recipient = ?1 WHERE channel = ?2 AND recipient = ?3 AND "
                          "state IN ('pending', 'sending')",
                          "UPDATE outbox SET recipient = ?1 WHERE channel = ?2 AND recipient = ?3 AND state = 'dead'",
                          // (A number only: a user id is no mobile.)
                          "UPDATE cases SET mobile = CASE WHEN ?1 GLOB '*[^0-9]*' THEN '' ELSE '+' || ?1 END "
                          "WHERE channel = ?2 AND mobile = '+' || ?3 AND beneficiary_id = ?4"}) {
    auto q = c.prepare(sql);
    if (!q) return q.error();
    q->bind(1, to).bind(2, channel).bind(3, from);
    if (std::string_view(sql).find("?4") != std::string_view::npos) q->bind(4, out.beneficiary_id);
    if (auto ec = q->exec()) return ec;
  }
  if (out.what == address_move::none) out.what = address_move::moved;
  return out;
}

result<bool> bot_said_since(connection& c, std::int64_t conversation_id, std::string_view text, std::int64_t since) {
  // Newest first through messages_by_conversation, the last 200 messages at most.
  auto q = c.prepare(
      "SELECT 1 FROM (SELECT sender, text, created_at FROM messages WHERE conversation_id = ? ORDER BY id DESC LIMIT 200) "
      "WHERE created_at >= ? AND sender = 'bot' AND text = ? LIMIT 1");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  return q->bind(1, conversation_id).bind(2, since).bind(3, text).step();
}

result<bool> inbound_update_after(connection& c, std::int64_t conversation_id, std::string_view update_id,
                                  std::int64_t since) {
  auto q = c.prepare(
      "SELECT 1 FROM (SELECT direction, provider_id, created_at FROM messages WHERE conversation_id = ? "
      "ORDER BY id DESC LIMIT 50) WHERE direction = 'in' AND created_at >= ? AND "
      "CAST(provider_id AS INTEGER) > CAST(? AS INTEGER) LIMIT 1");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  return q->bind(1, conversation_id).bind(2, since).bind(3, update_id).step();
}

result<bool> block_after(connection& c, std::int64_t conversation_id, std::string_view update_id, std::int64_t since) {
  auto q = c.prepare(
      "SELECT 1 FROM (SELECT direction, provider_id, payload, created_at FROM messages WHERE conversation_id = ? "
      "ORDER BY id DESC LIMIT 50) WHERE direction = 'in' AND created_at >= ? AND "
      "CAST(provider_id AS INTEGER) > CAST(? AS INTEGER) AND json_valid(payload) AND "
      "json_extract(payload, '$.raw_type') = 'my_chat_member:kicked' LIMIT 1");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  return q->bind(1, conversation_id).bind(2, since).bind(3, update_id).step();
}

result<bool> inbound_after(connection& c, std::int64_t conversation_id, std::int64_t message_id) {
  auto q = c.prepare("SELECT 1 FROM messages WHERE conversation_id = ? AND id > ? AND direction = 'in' LIMIT 1");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  return q->bind(1, conversation_id).bind(2, message_id).step();
}

result<bool> opted_out(connection& c, std::string_view channel, std::string_view address) {
  auto q = c.prepare("SELECT 1 FROM beneficiaries WHERE channel = ? AND address = ? AND opted_out_at IS NOT NULL");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  return q->bind(1, channel).bind(2, address).step();  // the statement is reset when it goes back to the cache
}

result<bool> mark_processed(connection& c, std::string_view channel, std::string_view provider_id, std::int64_t now) {
  auto q = c.prepare("INSERT OR IGNORE INTO processed_webhooks (channel, provider_id, received_at) VALUES (?, ?, ?)");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  if (auto ec = q->bind(1, channel).bind(2, provider_id).bind(3, now).exec())
    return result<bool>(boost::system::in_place_error, ec);
  return c.changes() == 1;
}

result<processed_scan> scan_processed(connection& c, std::string_view after_channel, std::string_view after_id,
                                      std::int64_t now, int limit) {
  auto q = c.prepare(
      "SELECT channel, provider_id, received_at FROM processed_webhooks "
      "WHERE (channel, provider_id) > (?1, ?2) ORDER BY channel, provider_id LIMIT ?3");
  if (!q) return q.error();
  q->bind(1, after_channel).bind(2, after_id).bind(3, limit);
  processed_scan out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) break;
    ++out.seen;
    out.last_channel = q->text(0);
    out.last_id = q->text(1);
    if (q->int64(2) < now - processed_keep_seconds_for(out.last_channel))
      out.old.emplace_back(out.last_channel, out.last_id);
  }
  return out;
}

result<int> delete_processed(connection& c, const std::vector<std::pair<std::string, std::string>>& keys) {
  auto q = c.prepare("DELETE FROM processed_webhooks WHERE channel = ? AND provider_id = ?");
  if (!q) return q.error();
  int n = 0;
  for (const auto& [channel, id] : keys) {
    if (auto ec = q->bind(1, channel).bind(2, id).exec()) return ec;
    n += c.changes();
  }
  return n;
}

result<beneficiary_row> upsert_beneficiary(connection& c, std::string_view channel, std::string_view address,
                                           std::string_view display_name, std::int64_t now, bool inbound,
                                           std::int64_t written_at) {
  const std::int64_t at = written_at > 0 && written_at < now ? written_at : now;
  // SELECT, then write only what changed: INSERT for a new beneficiary; UPDATE when the name
  // changes or last_inbound_at is inbound_refresh_seconds old. A beneficiary in a dialog writes
  // several messages a minute, and each UPDATE rewrote a page at a random place in the file
  // (one more WAL frame per webhook). One upsert with RETURNING was slower still: it opens an
  // ephemeral b-tree on every call. Only the writer thread writes, so nothing can come in
  // between the statements.
  const auto read = [&]() -> result<beneficiary_row> {
    auto q = c.prepare(
        "SELECT id, channel, address, display_name, lang, consented_at, last_inbound_at, erased_at, created_at, "
        "opted_out_at, user_id FROM beneficiaries WHERE channel = ? AND address = ?");
    if (q) q->bind(1, channel).bind(2, address);
    return one<beneficiary_row>(q, [](const statement& s) {
      beneficiary_row b;
      b.id = s.int64(0);
      b.channel = s.text(1);
      b.address = s.text(2);
      b.display_name = s.text(3);
      b.lang = s.text(4);
      b.consented_at = opt_int<std::int64_t>(s, 5);
      b.last_inbound_at = opt_int<std::int64_t>(s, 6);
      b.erased_at = opt_int<std::int64_t>(s, 7);
      b.created_at = s.int64(8);
      b.opted_out_at = opt_int<std::int64_t>(s, 9);
      if (!s.is_null(10)) b.user_id = s.text(10);
      return b;
    });
  };
  auto b = read();
  if (!b) {
    if (b.error() != errc::not_found) return b;
    auto i = c.prepare(
        "INSERT INTO beneficiaries (channel, address, display_name, created_at, last_inbound_at) "
        "VALUES (?1, ?2, ?3, ?4, CASE WHEN ?5 THEN ?6 END)");
    if (!i) return i.error();
    if (auto ec = i->bind(1, channel).bind(2, address).bind(3, display_name).bind(4, now).bind(5, inbound ? 1 : 0).bind(6, at).exec())
      return ec;
    return read();
  }
  const bool rename = !display_name.empty() && !b->erased_at && b->display_name != display_name;
  const bool refresh =
      inbound && (!b->last_inbound_at || now < *b->last_inbound_at || at - *b->last_inbound_at >= inbound_refresh_seconds);
  if (!rename && !refresh) return b;
  auto u = c.prepare(
      "UPDATE beneficiaries SET display_name = CASE WHEN ?1 THEN ?2 ELSE display_name END, "
      "last_inbound_at = CASE WHEN ?3 THEN ?4 ELSE last_inbound_at END WHERE id = ?5");
  if (!u) return u.error();
  if (auto ec = u->bind(1, rename ? 1 : 0).bind(2, display_name).bind(3, refresh ? 1 : 0).bind(4, at).bind(5, b->id).exec())
    return ec;
  if (rename) b->display_name = std::string(display_name);
  if (refresh) b->last_inbound_at = at;
  return b;
}

result<conversation_row> conversation_for(connection& c, std::int64_t beneficiary_id, std::int64_t now) {
  {
    auto q = c.prepare(std::string(conversation_select) + "WHERE c.beneficiary_id = ? ORDER BY c.id DESC LIMIT 1");
    if (q) q->bind(1, beneficiary_id);
    auto r = one<conversation_row>(q, read_conversation);
    if (r || r.error() != errc::not_found) return r;
  }
  auto ins = c.prepare("INSERT INTO conversations (beneficiary_id, created_at, updated_at) VALUES (?, ?, ?)");
  if (!ins) return ins.error();
  if (auto ec = ins->bind(1, beneficiary_id).bind(2, now).bind(3, now).exec()) return ec;
  return find_conversation(c, c.last_insert_rowid());
}

result<conversation_row> find_conversation(connection& c, std::int64_t id) {
  auto q = c.prepare(std::string(conversation_select) + "WHERE c.id = ?");
  if (q) q->bind(1, id);
  return one<conversation_row>(q, read_conversation);
}

result<std::vector<conversation_row>> list_conversations(connection& c, std::string_view mode,
                                                         std::optional<std::int64_t> assigned_to, int limit) {
  std::string sql = conversation_select;
  sql += "WHERE (?1 = 'all' OR c.mode = ?1) AND (?2 IS NULL OR c.assigned_staff_id = ?2) ";
  sql += mode == "waiting" ? "ORDER BY c.priority DESC, c.queued_at, c.id " : "ORDER BY COALESCE(c.last_message_at, c.created_at) DESC, c.id DESC ";
  sql += "LIMIT ?3";
  auto q = c.prepare(sql);
  if (q) q->bind(1, mode).bind(2, assigned_to).bind(3, limit);
  return many<conversation_row>(q, read_conversation);
}

error_code save_conversation(connection& c, const conversation_row& v) {
  auto q = c.prepare(
      "UPDATE conversations SET mode = ?, priority = ?, queue_reason = NULLIF(?, ''), queued_at = ?, "
      "assigned_staff_id = ?, dialog_state = ?, updated_at = ?, last_message_at = ?, first_staff_reply_at = ?, "
      "resolved_at = ? WHERE id = ?");
  if (!q) return q.error();
  return q->bind(1, v.mode)
      .bind(2, v.priority)
      .bind(3, v.queue_reason)
      .bind(4, v.queued_at)
      .bind(5, v.assigned_staff_id)
      .bind(6, v.dialog_state)
      .bind(7, v.updated_at)
      .bind(8, v.last_message_at)
      .bind(9, v.first_staff_reply_at)
      .bind(10, v.resolved_at)
      .bind(11, v.id)
      .exec();
}

error_code save_conversation(connection& c, const conversation_row& v, const conversation_row& before) {
  if (v.id != before.id || v.mode != before.mode || v.priority != before.priority ||
      v.queue_reason != before.queue_reason || v.queued_at != before.queued_at ||
      v.assigned_staff_id != before.assigned_staff_id || v.first_staff_reply_at != before.first_staff_reply_at ||
      v.resolved_at != before.resolved_at)
    return save_conversation(c, v);
  auto q = c.prepare("UPDATE conversations SET dialog_state = ?, updated_at = ?, last_message_at = ? WHERE id = ?");
  if (!q) return q.error();
  return q->bind(1, v.dialog_state).bind(2, v.updated_at).bind(3, v.last_message_at).bind(4, v.id).exec();
}

error_code set_beneficiary_lang(connection& c, std::int64_t id, std::string_view lang) {
  auto q = c.prepare("UPDATE beneficiaries SET lang = ? WHERE id = ?");
  if (!q) return q.error();
  return q->bind(1, lang).bind(2, id).exec();
}

error_code set_consented(connection& c, std::int64_t id, std::int64_t now) {
  auto q = c.prepare("UPDATE beneficiaries SET consented_at = COALESCE(consented_at, ?) WHERE id = ?");
  if (!q) return q.error();
  return q->bind(1, now).bind(2, id).exec();
}

result<std::int64_t> insert_message(connection& c, const message_row& m) {
  auto q = c.prepare(
      "INSERT INTO messages (conversation_id, direction, sender, staff_id, kind, text, payload, provider_id, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  if (auto ec = q->bind(1, m.conversation_id)
                    .bind(2, m.direction)
                    .bind(3, m.sender)
                    .bind(4, m.staff_id)
                    .bind(5, m.kind)
                    .bind(6, m.text)
                    .bind(7, m.payload)
                    .bind(8, m.provider_id)
                    .bind(9, m.created_at)
                    .exec())
    return ec;
  return c.last_insert_rowid();
}

result<std::vector<message_row>> list_messages(connection& c, std::int64_t conversation_id, int limit) {
  // The newest `limit` messages, returned oldest first.
  auto q = c.prepare("SELECT * FROM (" + std::string(message_select) +
                     "WHERE m.conversation_id = ? ORDER BY m.id DESC LIMIT ?) ORDER BY 1");
  if (q) q->bind(1, conversation_id).bind(2, limit);
  return many<message_row>(q, read_message);
}

result<message_row> find_message(connection& c, std::int64_t id) {
  auto q = c.prepare(std::string(message_select) + "WHERE m.id = ?");
  if (q) q->bind(1, id);
  return one<message_row>(q, read_message);
}

result<message_row> find_shared_location(connection& c, std::int64_t conversation_id, std::string_view message_ref) {
  // Newest first through messages_by_conversation; the JSON is read only for location rows (and
  // unsupported ones: the record of a share from before an erasure).
  auto q = c.prepare(std::string(message_select) +
                     "WHERE m.id = (SELECT id FROM (SELECT id, kind, payload FROM messages WHERE conversation_id = ?1 "
                     "AND direction = 'in' ORDER BY id DESC LIMIT 1000) WHERE kind IN ('location', 'unsupported') AND "
                     "json_extract(payload, '$.location.message_ref') = ?2 ORDER BY id DESC LIMIT 1)");
  if (q) q->bind(1, conversation_id).bind(2, message_ref);
  return one<message_row>(q, read_message);
}

boost::system::error_code set_message_payload(connection& c, std::int64_t id, std::string_view payload) {
  auto q = c.prepare("UPDATE messages SET payload = ? WHERE id = ?");
  if (!q) return q.error();
  return q->bind(1, payload).bind(2, id).exec();
}

result<std::int64_t> next_counter(connection& c, std::string_view name) {
  auto q = c.prepare(
      "INSERT INTO counters (name, value) VALUES (?1, 1) ON CONFLICT (name) DO UPDATE SET value = value + 1 "
      "RETURNING value");
  if (!q) return q.error();
  q->bind(1, name);
  auto r = q->step();
  if (!r) return r.error();
  if (!*r) return errc::invalid;
  auto v = q->int64(0);
  if (auto ec = q->exec()) return ec;  // finish the statement
  return v;
}

result<std::int64_t> insert_case(connection& c, const case_row& k) {
  auto q = c.prepare(
      "INSERT INTO cases (reference, beneficiary_id, conversation_id, channel, step, full_name, national_id, mobile, "
      "city, service_type, description, created_at, updated_at) VALUES (?, ?, ?, ?, 'submitted', ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  if (auto ec = q->bind(1, k.reference)
                    .bind(2, k.beneficiary_id)
                    .bind(3, k.conversation_id)
                    .bind(4, k.channel)
                    .bind(5, k.full_name)
                    .bind(6, k.national_id)
                    .bind(7, k.mobile)
                    .bind(8, k.city)
                    .bind(9, k.service_type)
                    .bind(10, k.description)
                    .bind(11, k.created_at)
                    .bind(12, k.created_at)
                    .exec())
    return ec;
  return c.last_insert_rowid();
}

result<case_row> find_case_by_reference(connection& c, std::string_view reference) {
  auto q = c.prepare(std::string(case_select) + "WHERE reference = ?");
  if (q) q->bind(1, reference);
  return one<case_row>(q, read_case);
}

result<std::vector<case_row>> cases_of_conversation(connection& c, std::int64_t conversation_id) {
  auto q = c.prepare(std::string(case_select) + "WHERE conversation_id = ? ORDER BY id");
  if (q) q->bind(1, conversation_id);
  return many<case_row>(q, read_case);
}

error_code insert_case_event(connection& c, std::int64_t case_id, std::optional<std::string> from, std::string_view to,
                             std::optional<std::int64_t> staff_id, std::string_view note, std::int64_t at) {
  auto q = c.prepare("INSERT INTO case_events (case_id, from_step, to_step, staff_id, note, at) VALUES (?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  return q->bind(1, case_id).bind(2, from).bind(3, to).bind(4, staff_id).bind(5, note).bind(6, at).exec();
}

error_code insert_case_document(connection& c, const case_document_row& d) {
  auto q = c.prepare(
      "INSERT INTO case_documents (case_id, message_id, media_kind, media_id, mime, filename, at) VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  return q->bind(1, d.case_id).bind(2, d.message_id).bind(3, d.media_kind).bind(4, d.media_id).bind(5, d.mime)
      .bind(6, d.filename).bind(7, d.at).exec();
}

error_code insert_volunteer(connection& c, const volunteer_row& v) {
  auto q = c.prepare(
      "INSERT INTO volunteers (beneficiary_id, name, city, skills, availability, created_at) VALUES (?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  return q->bind(1, v.beneficiary_id).bind(2, v.name).bind(3, v.city).bind(4, v.skills).bind(5, v.availability)
      .bind(6, v.created_at).exec();
}

result<std::int64_t> open_survey(connection& c, std::int64_t conversation_id, std::optional<std::int64_t> case_id,
                                 std::optional<std::int64_t> staff_id, std::string_view channel,
                                 std::optional<std::string> service_type, std::string_view trigger, std::int64_t now) {
  auto q = c.prepare(
      "INSERT INTO surveys (conversation_id, case_id, staff_id, channel, service_type, trigger, started_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  if (auto ec = q->bind(1, conversation_id).bind(2, case_id).bind(3, staff_id).bind(4, channel).bind(5, service_type)
                    .bind(6, trigger).bind(7, now).exec())
    return ec;
  return c.last_insert_rowid();
}

error_code survey_answer(connection& c, std::int64_t conversation_id, std::string_view question, int score) {
  // The column name comes from a fixed list, never from input.
  const char* sql = question == "overall" ? "UPDATE surveys SET overall = ?1 WHERE id = (SELECT max(id) FROM surveys WHERE conversation_id = ?2 AND completed_at IS NULL)"
                    : question == "speed" ? "UPDATE surveys SET speed = ?1 WHERE id = (SELECT max(id) FROM surveys WHERE conversation_id = ?2 AND completed_at IS NULL)"
                    : question == "courtesy" ? "UPDATE surveys SET courtesy = ?1 WHERE id = (SELECT max(id) FROM surveys WHERE conversation_id = ?2 AND completed_at IS NULL)"
                                             : nullptr;
  if (sql == nullptr || score < 1 || score > 5) return errc::invalid;
  auto q = c.prepare(sql);
  if (!q) return q.error();
  return q->bind(1, score).bind(2, conversation_id).exec();
}

error_code survey_complete(connection& c, std::int64_t conversation_id, std::string_view comment, std::int64_t now) {
  auto q = c.prepare(
      "UPDATE surveys SET completed_at = ?1, comment = NULLIF(?2, '') WHERE id = (SELECT max(id) FROM surveys "
      "WHERE conversation_id = ?3 AND completed_at IS NULL)");
  if (!q) return q.error();
  return q->bind(1, now).bind(2, comment).bind(3, conversation_id).exec();
}

error_code erase_beneficiary(connection& c, std::int64_t beneficiary_id, std::int64_t now) {
  const char* steps[] = {
      "UPDATE messages SET text = '', payload = '{}' WHERE conversation_id IN (SELECT id FROM conversations WHERE beneficiary_id = ?1)",
      // The outbox keeps its own copy of every reply (the intake summary repeats the name and
      // the name), which staff can list. Rows not yet sent (a provider slow or refusing us)
      // keep theirs so they can go, and forget it once sent or given up on.
      "UPDATE outbox SET payload = '{}' WHERE message_id IN (SELECT m.id FROM conversations c JOIN messages m "
      "ON m.conversation_id = c.id WHERE c.beneficiary_id = ?1) AND state <> 'pending' AND state <> 'sending'",
      "UPDATE outbox SET erase_when_done = 1 WHERE message_id IN (SELECT m.id FROM conversations c JOIN messages m "
      "ON m.conversation_id = c.id WHERE c.beneficiary_id = ?1) AND (state = 'pending' OR state = 'sending')",
      "UPDATE cases SET full_name = '[erased]', national_id = '', mobile = '', city = '', description = '' WHERE beneficiary_id = ?1",
      "DELETE FROM case_documents WHERE case_id IN (SELECT id FROM cases WHERE beneficiary_id = ?1)",
      // Files a web-chat visitor sent, and the copies kept of what they sent on other channels
      // (the originals stay at the provider, under its own rules).
      "DELETE FROM uploads WHERE address = (SELECT address FROM beneficiaries WHERE id = ?1 AND channel = 'webchat')",
      "DELETE FROM media_copies WHERE beneficiary_id = ?1",
      // Staff notes on each step are free text about the person ("called her brother on ...").
      "UPDATE case_events SET note = '' WHERE case_id IN (SELECT id FROM cases WHERE beneficiary_id = ?1)",
      "DELETE FROM volunteers WHERE beneficiary_id = ?1",
      "UPDATE surveys SET comment = NULL WHERE conversation_id IN (SELECT id FROM conversations WHERE beneficiary_id = ?1)",
      "UPDATE conversations SET dialog_state = '{}' WHERE beneficiary_id = ?1",
  };
  for (const char* sql : steps) {
    auto q = c.prepare(sql);
    if (!q) return q.error();
    if (auto ec = q->bind(1, beneficiary_id).exec()) return ec;
  }
  auto q = c.prepare("UPDATE beneficiaries SET display_name = '', consented_at = NULL, erased_at = ?2 WHERE id = ?1");
  if (!q) return q.error();
  return q->bind(1, beneficiary_id).bind(2, now).exec();
}

std::string TEST_retention_scan_sql() { return retention_scan_sql(); }

result<retention_scan> scan_retention(connection& c, std::int64_t after_id, std::int64_t before, int limit) {
  auto q = c.prepare(retention_scan_sql());
  if (!q) return q.error();
  q->bind(1, after_id).bind(2, limit);
  retention_scan out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) break;
    ++out.seen;
    out.last_id = q->int64(0);
    if (retention_due_row(*q, before)) out.due.push_back(out.last_id);
  }
  return out;
}

// result<bool> needs in_place_error: an error_code would otherwise be taken for the bool.
result<bool> retention_due(connection& c, std::int64_t beneficiary_id, std::int64_t before) {
  auto q = c.prepare(std::string(retention_select) + "WHERE b.id = ?1");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  q->bind(1, beneficiary_id);
  auto r = q->step();
  if (!r) return result<bool>(boost::system::in_place_error, r.error());
  if (!*r) return result<bool>(boost::system::in_place_error, errc::not_found);
  return retention_due_row(*q, before);
}

result<bool> erase_if_retention_due(connection& c, std::int64_t beneficiary_id, std::int64_t before,
                                    std::int64_t now) {
  auto due = retention_due(c, beneficiary_id, before);
  if (!due || !*due) return due;
  if (auto ec = erase_beneficiary(c, beneficiary_id, now)) return result<bool>(boost::system::in_place_error, ec);
  return true;
}

}  // namespace aoun::storage
