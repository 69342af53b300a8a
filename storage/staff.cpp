#include "storage/staff.hpp"

namespace aoun::storage {
namespace {

constexpr const char* staff_columns =
    "SELECT id, username, display_name, role, password_hash, failed_logins, locked_until, disabled, created_at "
    "FROM staff ";

staff_row read_staff(const statement& s) {
  staff_row r;
  r.id = s.int64(0);
  r.username = s.text(1);
  r.display_name = s.text(2);
  r.role = s.text(3);
  r.password_hash = s.text(4);
  r.failed_logins = static_cast<int>(s.int64(5));
  r.locked_until = s.int64(6);
  r.disabled = s.int64(7) != 0;
  r.created_at = s.int64(8);
  return r;
}

result<staff_row> one_staff(result<statement> q) {
  if (!q) return q.error();
  auto row = q->step();
  if (!row) return row.error();
  if (!*row) return errc::not_found;
  return read_staff(*q);
}

}  // namespace

result<std::int64_t> count_staff(connection& c) {
  auto q = c.prepare("SELECT count(*) FROM staff");
  if (!q) return q.error();
  auto row = q->step();
  if (!row) return row.error();
  return q->int64(0);
}

result<std::int64_t> insert_staff(connection& c, const staff_row& s) {
  auto q = c.prepare(
      "INSERT INTO staff (username, display_name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?)");
  if (!q) return q.error();
  q->bind(1, s.username).bind(2, s.display_name).bind(3, s.role).bind(4, s.password_hash).bind(5, s.created_at);
  if (auto ec = q->exec()) return ec;
  return c.last_insert_rowid();
}

result<staff_row> find_staff_by_username(connection& c, std::string_view username) {
  auto q = c.prepare(std::string(staff_columns) + "WHERE username = ?");
  if (q) q->bind(1, username);
  return one_staff(std::move(q));
}

result<staff_row> find_staff(connection& c, std::int64_t id) {
  auto q = c.prepare(std::string(staff_columns) + "WHERE id = ?");
  if (q) q->bind(1, id);
  return one_staff(std::move(q));
}

result<std::vector<staff_row>> list_staff(connection& c) {
  auto q = c.prepare(std::string(staff_columns) + "ORDER BY id");
  if (!q) return q.error();
  std::vector<staff_row> out;
  for (;;) {
    auto row = q->step();
    if (!row) return row.error();
    if (!*row) break;
    out.push_back(read_staff(*q));
  }
  return out;
}

boost::system::error_code record_login_failure(connection& c, std::int64_t id, int max_failures,
                                               std::int64_t lock_until) {
  // The counter restarts once a lock is imposed, so the next window gets max_failures tries again.
  auto q = c.prepare(
      "UPDATE staff SET failed_logins = CASE WHEN failed_logins + 1 >= ?2 THEN 0 ELSE failed_logins + 1 END, "
      "locked_until = CASE WHEN failed_logins + 1 >= ?2 THEN ?3 ELSE locked_until END WHERE id = ?1");
  if (!q) return q.error();
  return q->bind(1, id).bind(2, max_failures).bind(3, lock_until).exec();
}

boost::system::error_code record_login_success(connection& c, std::int64_t id) {
  auto q = c.prepare("UPDATE staff SET failed_logins = 0 WHERE id = ?");
  if (!q) return q.error();
  return q->bind(1, id).exec();
}

boost::system::error_code insert_session(connection& c, std::string_view token_hash, std::int64_t staff_id,
                                         std::int64_t now, std::int64_t expires_at) {
  auto q = c.prepare("INSERT INTO sessions (token_hash, staff_id, created_at, expires_at) VALUES (?, ?, ?, ?)");
  if (!q) return q.error();
  return q->bind(1, token_hash).bind(2, staff_id).bind(3, now).bind(4, expires_at).exec();
}

result<staff_row> find_session_staff(connection& c, std::string_view token_hash, std::int64_t now) {
  auto q = c.prepare(
      "SELECT s.id, s.username, s.display_name, s.role, s.password_hash, s.failed_logins, s.locked_until, "
      "s.disabled, s.created_at FROM sessions x JOIN staff s ON s.id = x.staff_id "
      "WHERE x.token_hash = ? AND x.expires_at > ? AND s.disabled = 0");
  if (q) q->bind(1, token_hash).bind(2, now);
  return one_staff(std::move(q));
}

result<std::int64_t> session_expiry(connection& c, std::string_view token_hash, std::int64_t now) {
  auto q = c.prepare(
      "SELECT x.expires_at FROM sessions x JOIN staff s ON s.id = x.staff_id WHERE x.token_hash = ? AND "
      "x.expires_at > ? AND s.disabled = 0");
  if (!q) return q.error();
  q->bind(1, token_hash).bind(2, now);
  auto row = q->step();
  if (!row) return row.error();
  if (!*row) return errc::not_found;
  return q->int64(0);
}

boost::system::error_code delete_session(connection& c, std::string_view token_hash) {
  auto q = c.prepare("DELETE FROM sessions WHERE token_hash = ?");
  if (!q) return q.error();
  return q->bind(1, token_hash).exec();
}

boost::system::error_code update_staff(connection& c, std::int64_t id, const std::optional<std::string>& role,
                                       const std::optional<std::string>& display_name, std::optional<bool> disabled,
                                       const std::optional<std::string>& password_hash) {
  auto q = c.prepare(
      "UPDATE staff SET role = COALESCE(?2, role), display_name = COALESCE(?3, display_name), "
      "disabled = COALESCE(?4, disabled), password_hash = COALESCE(?5, password_hash), "
      "failed_logins = CASE WHEN ?5 IS NULL THEN failed_logins ELSE 0 END, "
      "locked_until = CASE WHEN ?5 IS NULL THEN locked_until ELSE 0 END WHERE id = ?1");
  if (!q) return q.error();
  std::optional<std::int64_t> dis;
  if (disabled) dis = *disabled ? 1 : 0;
  if (auto ec = q->bind(1, id).bind(2, role).bind(3, display_name).bind(4, dis).bind(5, password_hash).exec()) return ec;
  return c.changes() == 1 ? boost::system::error_code{} : boost::system::error_code(errc::not_found);
}

boost::system::error_code delete_sessions_of(connection& c, std::int64_t staff_id) {
  auto q = c.prepare("DELETE FROM sessions WHERE staff_id = ?");
  if (!q) return q.error();
  return q->bind(1, staff_id).exec();
}

boost::system::error_code delete_other_sessions(connection& c, std::int64_t staff_id, std::string_view keep_token_hash) {
  auto q = c.prepare("DELETE FROM sessions WHERE staff_id = ?1 AND token_hash <> ?2");
  if (!q) return q.error();
  return q->bind(1, staff_id).bind(2, keep_token_hash).exec();
}

boost::system::error_code delete_expired_sessions(connection& c, std::int64_t now) {
  auto q = c.prepare("DELETE FROM sessions WHERE expires_at <= ?");
  if (!q) return q.error();
  return q->bind(1, now).exec();
}

result<std::string> server_key(connection& c, std::string_view name, std::string_view fresh, std::int64_t now) {
  auto ins = c.prepare("INSERT INTO server_keys (name, secret, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING");
  if (!ins) return ins.error();
  if (auto ec = ins->bind(1, name).bind(2, fresh).bind(3, now).exec()) return ec;
  auto q = c.prepare("SELECT secret FROM server_keys WHERE name = ?");
  if (!q) return q.error();
  q->bind(1, name);
  auto row = q->step();
  if (!row) return row.error();
  if (!*row) return errc::not_found;
  return q->text(0);
}

boost::system::error_code audit(connection& c, std::optional<std::int64_t> staff_id, std::string_view action,
                                std::string_view target, std::string_view detail_json, std::int64_t now) {
  auto q = c.prepare("INSERT INTO audit_log (staff_id, action, target, detail, at) VALUES (?, ?, ?, ?, ?)");
  if (!q) return q.error();
  return q->bind(1, staff_id).bind(2, action).bind(3, target).bind(4, detail_json).bind(5, now).exec();
}

}  // namespace aoun::storage
