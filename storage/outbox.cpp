#include "storage/outbox.hpp"

namespace aoun::storage {
namespace {

using boost::system::error_code;

constexpr const char* outbox_select =
    "SELECT id, message_id, conversation_id, channel, recipient, payload, state, attempts, next_attempt_at_ms, "
    "COALESCE(last_error, ''), provider_message_id, delivery_status, created_at FROM outbox ";

// For a pending head row of the outbox (as `outbox`): its recipient has nothing `sending`.
// Through the partial index of unsent rows, so it reads that recipient's few unsent rows only.
constexpr const char* no_send_in_flight =
    "NOT EXISTS (SELECT 1 FROM outbox AS f WHERE f.channel = outbox.channel AND f.recipient = outbox.recipient "
    "AND f.state IN ('pending', 'sending') AND f.state = 'sending')";

outbox_row read_row(const statement& s) {
  outbox_row r;
  r.id = s.int64(0);
  if (!s.is_null(1)) r.message_id = s.int64(1);
  if (!s.is_null(2)) r.conversation_id = s.int64(2);
  r.channel = s.text(3);
  r.recipient = s.text(4);
  r.payload = s.text(5);
  r.state = s.text(6);
  r.attempts = static_cast<int>(s.int64(7));
  r.next_attempt_at_ms = s.int64(8);
  r.last_error = s.text(9);
  if (!s.is_null(10)) r.provider_message_id = s.text(10);
  if (!s.is_null(11)) r.delivery_status = s.text(11);
  r.created_at = s.int64(12);
  r.uncertain = r.last_error.rfind("uncertain", 0) == 0;
  return r;
}

/// Whether a bound "SELECT 1 ... LIMIT 1" finds a row; the statement is finished (reset) either way.
result<bool> has_row(statement& q) {
  auto r = q.step();
  if (!r) return r;
  bool found = *r;
  if (found) q.exec();  // finish (and reset) the statement
  return found;
}

/// SQL for a row's new last_error, `param` being the new error: an uncertain row (it may have gone
/// out twice) keeps its flag in front of whatever happens to it next, so staff can still see it;
/// an error that is itself uncertain (no answer after the request left) sets the flag.
std::string keep_uncertain(std::string_view param) {
  const std::string p(param);
  return "CASE WHEN " + p + " LIKE 'uncertain%' THEN " + p + " WHEN last_error LIKE 'uncertain%' THEN 'uncertain; ' || " +
         p + " ELSE " + p + " END";
}

}  // namespace

int delivery_status_rank(std::string_view status) {
  if (status == "sent") return 1;
  if (status == "delivered") return 2;
  if (status == "read") return 3;
  if (status == "failed") return 4;
  return 0;
}

result<bool> outbox_has_provider_id(connection& c, std::string_view channel, std::string_view provider_message_id) {
  auto q = c.prepare("SELECT 1 FROM outbox WHERE provider_message_id = ? AND channel = ? LIMIT 1");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  q->bind(1, provider_message_id).bind(2, channel);
  return has_row(*q);
}

result<std::int64_t> outbox_enqueue(connection& c, const outbox_row& r) {
  // Written once in its first state: a row claimed by its own job is inserted as `sending`
  // rather than inserted and then updated (each UPDATE of `state` rewrites index entries).
  // A row refused before any attempt (its recipient opted out) is written `dead` with the reason.
  auto q = c.prepare(
      "INSERT INTO outbox (message_id, conversation_id, channel, recipient, payload, created_at, state, attempts, "
      "last_error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''))");
  if (!q) return q.error();
  const bool sending = r.state == "sending";
  const char* state = sending ? "sending" : r.state == "dead" ? "dead" : "pending";
  if (auto ec = q->bind(1, r.message_id).bind(2, r.conversation_id).bind(3, r.channel).bind(4, r.recipient)
                    .bind(5, r.payload).bind(6, r.created_at).bind(7, state)
                    .bind(8, sending ? std::int64_t{1} : std::int64_t{0})
                    .bind(9, r.state == "dead" ? std::string_view(r.last_error) : std::string_view()).exec())
    return ec;
  return c.last_insert_rowid();
}

result<std::vector<outbox_row>> outbox_claim(connection& c, std::int64_t now_ms, int limit, std::string_view skip) {
  std::vector<outbox_row> rows;
  {
    // Head of line per recipient: the oldest unsent row of each recipient, if it is pending and
    // due. Both halves use partial indexes over unsent rows only, so the cost follows the
    // backlog of unsent rows, never the history.
    // A pending head whose recipient has a row `sending` further back (a dead letter revived
    // by staff while newer messages are in flight) waits for it: one send at a time per person.
    auto q = c.prepare(std::string(outbox_select) +
                       "WHERE id IN (SELECT min(id) FROM outbox WHERE state IN ('pending', 'sending') "
                       "GROUP BY channel, recipient) AND state = 'pending' AND next_attempt_at_ms <= ?1 AND " +
                       no_send_in_flight + " AND instr(?3, ',' || channel || ',') = 0 ORDER BY id LIMIT ?2");
    if (!q) return q.error();
    q->bind(1, now_ms).bind(2, limit).bind(3, skip);
    for (;;) {
      auto r = q->step();
      if (!r) return r.error();
      if (!*r) break;
      rows.push_back(read_row(*q));
    }
  }
  auto upd = c.prepare("UPDATE outbox SET state = 'sending', attempts = attempts + 1 WHERE id = ?");
  if (!upd) return upd.error();
  for (auto& r : rows) {
    if (auto ec = upd->bind(1, r.id).exec()) return ec;
    r.state = "sending";
    r.attempts += 1;
  }
  return rows;
}

result<bool> outbox_has_unsent(connection& c, std::string_view channel, std::string_view recipient) {
  auto q = c.prepare(
      "SELECT 1 FROM outbox WHERE channel = ? AND recipient = ? AND state IN ('pending', 'sending') LIMIT 1");
  if (!q) return result<bool>(boost::system::in_place_error, q.error());
  q->bind(1, channel).bind(2, recipient);
  return has_row(*q);
}

result<std::optional<std::string>> outbox_recipient(connection& c, std::int64_t id) {
  auto q = c.prepare("SELECT recipient FROM outbox WHERE id = ?");
  if (!q) return q.error();
  q->bind(1, id);
  auto r = q->step();
  if (!r) return r.error();
  if (!*r) return std::optional<std::string>();
  return std::optional<std::string>(q->text(0));
}

error_code outbox_release(connection& c, std::int64_t id) {
  auto q = c.prepare(
      "UPDATE outbox SET state = 'pending', attempts = max(attempts - 1, 0) WHERE id = ? AND state = 'sending'");
  if (!q) return q.error();
  return q->bind(1, id).exec();
}

result<outbox_backlog> outbox_backlog_of(connection& c, std::string_view skip) {
  outbox_backlog b;
  {
    auto q = c.prepare("SELECT 1 FROM outbox WHERE state = 'pending' LIMIT 1");  // partial index
    if (!q) return q.error();
    auto r = has_row(*q);
    if (!r) return r.error();
    b.any_pending = *r;
  }
  if (!b.any_pending) return b;
  // The same heads as outbox_claim's: one blocked by a send in flight is not due (the worker
  // looks again when that send finishes), or the loop would wake at once, again and again.
  auto q = c.prepare(
      std::string("SELECT min(next_attempt_at_ms) FROM outbox WHERE id IN (SELECT min(id) FROM outbox "
                  "WHERE state IN ('pending', 'sending') GROUP BY channel, recipient) AND state = 'pending' AND ") +
      no_send_in_flight + " AND instr(?1, ',' || channel || ',') = 0");
  if (!q) return q.error();
  q->bind(1, skip);
  auto r = q->step();
  if (!r) return r.error();
  if (*r && !q->is_null(0)) b.next_due_ms = q->int64(0);
  if (*r) q->exec();
  return b;
}

// A row whose beneficiary's data was erased while it waited (erase_beneficiary) went out with
// its text, then forgets it as it leaves: sent or given up on, it is the same as the rows
// erased outright. Read from the row being written, so it costs the hot path nothing.
#define ERASED_WHEN_DONE "payload = CASE WHEN erase_when_done THEN '{}' ELSE payload END, "

error_code outbox_mark_sent(connection& c, std::int64_t id, std::string_view provider_message_id, std::int64_t now) {
  auto q = c.prepare(
      "UPDATE outbox SET state = 'sent', provider_message_id = NULLIF(?, ''), sent_at = ?, " ERASED_WHEN_DONE
      "delivery_status = COALESCE(delivery_status, 'sent') WHERE id = ? AND state = 'sending'");
  if (!q) return q.error();
  return q->bind(1, provider_message_id).bind(2, now).bind(3, id).exec();
}

error_code outbox_retry(connection& c, std::int64_t id, std::int64_t next_ms, std::string_view error) {
  static const std::string sql =
      "UPDATE outbox SET state = 'pending', next_attempt_at_ms = ?2, last_error = " + keep_uncertain("?3") + " WHERE id = ?1 AND state = 'sending'";
  auto q = c.prepare(sql);
  if (!q) return q.error();
  return q->bind(1, id).bind(2, next_ms).bind(3, error).exec();
}

error_code outbox_hold(connection& c, std::int64_t id, std::int64_t next_ms, std::string_view error) {
  static const std::string sql = "UPDATE outbox SET state = 'pending', next_attempt_at_ms = ?2, attempts = max(attempts - 1, 0), "
                                 "last_error = " + keep_uncertain("?3") + " WHERE id = ?1 AND state = 'sending'";
  auto q = c.prepare(sql);
  if (!q) return q.error();
  return q->bind(1, id).bind(2, next_ms).bind(3, error).exec();
}

error_code outbox_dead(connection& c, std::int64_t id, std::string_view error) {
  static const std::string sql = "UPDATE outbox SET state = 'dead', " ERASED_WHEN_DONE "last_error = " + keep_uncertain("?2") +
                                 " WHERE id = ?1 AND state = 'sending'";
  auto q = c.prepare(sql);
  if (!q) return q.error();
  return q->bind(1, id).bind(2, error).exec();
}

error_code outbox_refuse_unsent(connection& c, std::string_view channel, std::string_view recipient,
                                std::string_view error) {
  // The partial index's own condition, so that only this recipient's unsent rows are read.
  static const std::string sql = "UPDATE outbox SET state = 'dead', " ERASED_WHEN_DONE "last_error = " + keep_uncertain("?3") +
                                 " WHERE channel = ?1 AND recipient = ?2 AND state IN ('pending', 'sending') "
                                 "AND state = 'pending'";
  auto q = c.prepare(sql);
  if (!q) return q.error();
  return q->bind(1, channel).bind(2, recipient).bind(3, error).exec();
}

error_code outbox_revive(connection& c, std::int64_t id, std::int64_t now_ms) {
  // A row whose payload was wiped with its beneficiary's data would go out empty; an SMS to
  // someone who texted STOP, a Telegram message to someone who blocked the bot, anything to
  // a Telegram group, or to a number that passed to someone else (move_address), must not go at
  // all: none is revived.
  auto q = c.prepare(
      "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at_ms = ? WHERE id = ? AND state = 'dead' "
      "AND payload <> '{}' AND NOT (channel = 'telegram' AND recipient LIKE '-%') AND recipient NOT LIKE 'retired:%' "
      "AND NOT EXISTS (SELECT 1 FROM beneficiaries b WHERE b.channel = outbox.channel "
      "AND b.address = outbox.recipient AND b.opted_out_at IS NOT NULL)");
  if (!q) return q.error();
  if (auto ec = q->bind(1, now_ms).bind(2, id).exec()) return ec;
  if (c.changes() == 1) return {};
  auto erased = c.prepare("SELECT 1 FROM outbox WHERE id = ? AND state = 'dead'");
  if (!erased) return erased.error();
  auto row = erased->bind(1, id).step();
  if (!row) return row.error();
  return *row ? error_code(errc::invalid) : error_code(errc::not_found);
}

result<int> outbox_recover(connection& c) {
  // The inner query names the partial index's own condition so that it is used (no scan of the
  // whole history at start-up).
  auto q = c.prepare(
      "UPDATE outbox SET state = 'pending', last_error = 'uncertain: in flight when the server stopped' "
      "WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'sending') AND state = 'sending')");
  if (!q) return q.error();
  if (auto ec = q->exec()) return ec;
  const int recovered = c.changes();
  if (auto held = outbox_release_held(c, ""); !held) return held.error();
  return recovered;
}

result<int> outbox_release_held(connection& c, std::string_view channel) {
  auto q = c.prepare(
      "UPDATE outbox SET next_attempt_at_ms = 0 WHERE id IN (SELECT id FROM outbox WHERE state IN ('pending', 'sending') "
      "AND state = 'pending' AND (?1 = '' OR channel = ?1)) "
      "AND (last_error LIKE 'credentials_refused: %' OR last_error LIKE 'uncertain; credentials_refused: %')");
  if (!q) return q.error();
  if (auto ec = q->bind(1, channel).exec()) return ec;
  return c.changes();
}

result<std::vector<delivery_change>> outbox_delivery_status(connection& c, std::string_view channel,
                                                            std::string_view provider_message_id,
                                                            std::string_view status, std::string_view error) {
  std::vector<delivery_change> out;
  int r = delivery_status_rank(status);
  if (r == 0) return out;
  auto q = c.prepare(
      "UPDATE outbox SET delivery_status = ?1, "
      "last_error = CASE WHEN ?1 <> 'failed' THEN last_error "
      "WHEN last_error LIKE 'uncertain%' THEN 'uncertain; ' || COALESCE(NULLIF(?5, ''), 'delivery failed') "
      "ELSE NULLIF(?5, '') END "
      "WHERE provider_message_id = ?2 AND channel = ?4 AND "
      "(delivery_status IS NULL OR (delivery_status <> 'failed' AND CASE delivery_status WHEN 'sent' THEN 1 "
      "WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 ELSE 0 END < ?3)) "
      "RETURNING id, message_id, conversation_id");
  if (!q) return q.error();
  q->bind(1, status).bind(2, provider_message_id).bind(3, r).bind(4, channel).bind(5, error);
  for (;;) {
    auto row = q->step();
    if (!row) return row.error();
    if (!*row) return out;
    delivery_change d;
    d.outbox_id = q->int64(0);
    if (!q->is_null(1)) d.message_id = q->int64(1);
    if (!q->is_null(2)) d.conversation_id = q->int64(2);
    out.push_back(d);
  }
}

result<std::vector<outbox_row>> outbox_list(connection& c, std::string_view state, int limit) {
  // Dead rows (what staff look at) through their partial index, which needs the literal.
  // Uncertain rows (any state) are the ones whose last_error carries the flag, through their
  // own partial index (schema v6).
  auto q = state == "dead"        ? c.prepare(std::string(outbox_select) + "WHERE state = 'dead' ORDER BY id DESC LIMIT ?2")
           : state == "uncertain" ? c.prepare(std::string(outbox_select) +
                                              "WHERE last_error LIKE 'uncertain%' ORDER BY id DESC LIMIT ?2")
                                  : c.prepare(std::string(outbox_select) +
                                              "WHERE (?1 = 'all' OR state = ?1) ORDER BY id DESC LIMIT ?2");
  if (!q) return q.error();
  if (state != "dead" && state != "uncertain") q->bind(1, state);
  q->bind(2, limit);
  std::vector<outbox_row> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    out.push_back(read_row(*q));
  }
}

}  // namespace aoun::storage
