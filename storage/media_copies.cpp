#include "storage/media_copies.hpp"

namespace aoun::storage {

boost::system::error_code want_media_copy(connection& c, std::string_view channel, std::string_view media_id,
                                          std::int64_t beneficiary_id, std::int64_t now) {
  auto q = c.prepare(
      "INSERT OR IGNORE INTO media_copies (channel, media_id, beneficiary_id, next_attempt_at, created_at) "
      "VALUES (?, ?, ?, ?, ?)");
  if (!q) return q.error();
  return q->bind(1, channel).bind(2, media_id).bind(3, beneficiary_id).bind(4, now).bind(5, now).exec();
}

result<std::vector<sent_file>> files_sent_by(connection& c, std::int64_t beneficiary_id, int limit) {
  // Not those already asked for: the limit is spent on files that still need a copy.
  auto q = c.prepare(
      "SELECT json_extract(m.payload, '$.media.id') AS mid, coalesce(json_extract(m.payload, '$.media.size'), 0) "
      "FROM beneficiaries b JOIN conversations cv ON cv.beneficiary_id = b.id JOIN messages m ON m.conversation_id = cv.id "
      "WHERE b.id = ?1 AND m.direction = 'in' AND m.kind = 'media' AND coalesce(mid, '') <> '' "
      "AND NOT EXISTS (SELECT 1 FROM media_copies mc WHERE mc.channel = b.channel AND mc.media_id = mid) "
      "ORDER BY m.id LIMIT ?2");
  if (!q) return q.error();
  q->bind(1, beneficiary_id).bind(2, limit);
  std::vector<sent_file> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) break;
    out.push_back({q->text(0), q->int64(1)});
  }
  return out;
}

result<std::vector<media_copy_due>> due_media_copies(connection& c, std::int64_t now, int limit) {
  auto q = c.prepare(
      "SELECT id, channel, media_id, attempts FROM media_copies WHERE state = 'wanted' AND next_attempt_at <= ? "
      "ORDER BY next_attempt_at, id LIMIT ?");
  if (!q) return q.error();
  q->bind(1, now).bind(2, limit);
  std::vector<media_copy_due> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) break;
    out.push_back({q->int64(0), q->text(1), q->text(2), static_cast<int>(q->int64(3))});
  }
  return out;
}

result<std::optional<std::int64_t>> next_media_copy_at(connection& c) {
  auto q = c.prepare("SELECT min(next_attempt_at) FROM media_copies WHERE state = 'wanted'");
  if (!q) return q.error();
  auto r = q->step();
  if (!r) return r.error();
  std::optional<std::int64_t> at;
  if (*r && !q->is_null(0)) at = q->int64(0);
  return at;
}

boost::system::error_code keep_media_copy(connection& c, const media_copy_due& d, std::string_view mime,
                                          std::string_view file_path, std::string_view bytes) {
  auto q = c.prepare(
      "UPDATE media_copies SET state = 'kept', mime = ?4, file_path = ?5, bytes = ?6, attempts = attempts + 1, "
      "last_error = NULL WHERE id = ?1 AND channel = ?2 AND media_id = ?3 AND state = 'wanted'");
  if (!q) return q.error();
  return q->bind(1, d.id).bind(2, d.channel).bind(3, d.media_id).bind(4, mime).bind(5, file_path).bind_blob(6, bytes).exec();
}

boost::system::error_code keep_live_copy(connection& c, std::string_view channel, std::string_view media_id,
                                         std::string_view mime, std::string_view file_path, std::string_view bytes) {
  auto q = c.prepare(
      "UPDATE media_copies SET state = 'kept', mime = ?3, file_path = ?4, bytes = ?5, last_error = NULL "
      "WHERE channel = ?1 AND media_id = ?2 AND state IN ('wanted', 'failed')");
  if (!q) return q.error();
  return q->bind(1, channel).bind(2, media_id).bind(3, mime).bind(4, file_path).bind_blob(5, bytes).exec();
}

boost::system::error_code media_copy_attempt_failed(connection& c, const media_copy_due& d, std::string_view error,
                                                    std::optional<std::int64_t> retry_at) {
  auto q = c.prepare(
      "UPDATE media_copies SET attempts = attempts + 1, last_error = ?4, "
      "state = CASE WHEN ?5 IS NULL THEN 'failed' ELSE state END, next_attempt_at = coalesce(?5, next_attempt_at) "
      "WHERE id = ?1 AND channel = ?2 AND media_id = ?3 AND state = 'wanted'");
  if (!q) return q.error();
  return q->bind(1, d.id).bind(2, d.channel).bind(3, d.media_id).bind(4, error).bind(5, retry_at).exec();
}

result<std::optional<media_copy>> find_media_copy(connection& c, std::string_view channel, std::string_view media_id) {
  auto q = c.prepare("SELECT mime, file_path, bytes FROM media_copies WHERE channel = ? AND media_id = ? AND state = 'kept'");
  if (!q) return q.error();
  q->bind(1, channel).bind(2, media_id);
  auto r = q->step();
  if (!r) return r.error();
  std::optional<media_copy> out;
  if (*r) out = media_copy{q->text(0), q->text(1), q->blob(2)};
  return out;
}

}  // namespace aoun::storage
