#include "storage/uploads.hpp"

namespace aoun::storage {

result<std::int64_t> insert_upload(connection& c, const upload_row& row) {
  auto q = c.prepare(
      "INSERT INTO uploads (address, kind, mime, filename, size, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!q) return q.error();
  q->bind(1, row.address)
      .bind(2, row.kind)
      .bind(3, row.mime)
      .bind(4, row.filename)
      .bind(5, static_cast<std::int64_t>(row.bytes.size()))
      .bind_blob(6, row.bytes)
      .bind(7, row.created_at);
  if (auto ec = q->exec()) return ec;
  return c.last_insert_rowid();
}

boost::system::error_code delete_upload(connection& c, std::int64_t id) {
  auto q = c.prepare("DELETE FROM uploads WHERE id = ?");
  if (!q) return q.error();
  return q->bind(1, id).exec();
}

result<upload_row> find_upload(connection& c, std::int64_t id) {
  auto q = c.prepare("SELECT address, kind, mime, filename, bytes, created_at FROM uploads WHERE id = ?");
  if (!q) return q.error();
  q->bind(1, id);
  auto r = q->step();
  if (!r) return r.error();
  if (!*r) return errc::not_found;
  upload_row u;
  u.id = id;
  u.address = q->text(0);
  u.kind = q->text(1);
  u.mime = q->text(2);
  u.filename = q->text(3);
  u.bytes = q->blob(4);
  u.created_at = q->int64(5);
  return u;
}

}  // namespace aoun::storage
