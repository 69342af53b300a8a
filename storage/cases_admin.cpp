#include "storage/cases_admin.hpp"

namespace aoun::storage {
namespace {

using boost::system::error_code;

std::optional<std::string> opt_text(const statement& s, int col) {
  if (s.is_null(col)) return std::nullopt;
  return s.text(col);
}
std::optional<std::int64_t> opt_int(const statement& s, int col) {
  if (s.is_null(col)) return std::nullopt;
  return s.int64(col);
}

}  // namespace

result<std::vector<case_row>> list_cases(connection& c, std::string_view step, int limit) {
  auto q = c.prepare(
      "SELECT id, reference, beneficiary_id, conversation_id, channel, step, verification_method, appointment, "
      "full_name, national_id, mobile, city, service_type, description, created_at, updated_at FROM cases "
      "WHERE (?1 = '' OR step = ?1) ORDER BY id DESC LIMIT ?2");
  if (!q) return q.error();
  q->bind(1, step).bind(2, limit);
  std::vector<case_row> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    case_row k;
    k.id = q->int64(0);
    k.reference = q->text(1);
    k.beneficiary_id = q->int64(2);
    k.conversation_id = opt_int(*q, 3);
    k.channel = q->text(4);
    k.step = q->text(5);
    k.verification_method = opt_text(*q, 6);
    k.appointment = opt_text(*q, 7);
    k.full_name = q->text(8);
    k.national_id = q->text(9);
    k.mobile = q->text(10);
    k.city = q->text(11);
    k.service_type = q->text(12);
    k.description = q->text(13);
    k.created_at = q->int64(14);
    k.updated_at = q->int64(15);
    out.push_back(std::move(k));
  }
}

result<std::vector<case_event_view>> list_case_events(connection& c, std::int64_t case_id) {
  auto q = c.prepare(
      "SELECT e.from_step, e.to_step, e.staff_id, COALESCE(s.display_name, ''), e.note, e.at FROM case_events e "
      "LEFT JOIN staff s ON s.id = e.staff_id WHERE e.case_id = ? ORDER BY e.id");
  if (!q) return q.error();
  q->bind(1, case_id);
  std::vector<case_event_view> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    out.push_back({opt_text(*q, 0), q->text(1), opt_int(*q, 2), q->text(3), q->text(4), q->int64(5)});
  }
}

result<std::vector<case_document_view>> list_case_documents(connection& c, std::int64_t case_id) {
  auto q = c.prepare(
      "SELECT id, message_id, media_kind, media_id, mime, filename, at FROM case_documents WHERE case_id = ? "
      "ORDER BY id");
  if (!q) return q.error();
  q->bind(1, case_id);
  std::vector<case_document_view> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    out.push_back({q->int64(0), opt_int(*q, 1), q->text(2), q->text(3), q->text(4), q->text(5), q->int64(6)});
  }
}

error_code set_case_step(connection& c, std::int64_t case_id, std::string_view from, std::string_view step,
                         const std::optional<std::string>& method, const std::optional<std::string>& appointment,
                         std::int64_t now) {
  auto q = c.prepare(
      "UPDATE cases SET step = ?1, verification_method = COALESCE(?2, verification_method), "
      "appointment = COALESCE(?3, appointment), updated_at = ?4 WHERE id = ?5 AND step = ?6");
  if (!q) return q.error();
  if (auto ec = q->bind(1, step).bind(2, method).bind(3, appointment).bind(4, now).bind(5, case_id).bind(6, from).exec())
    return ec;
  return c.changes() == 1 ? error_code{} : error_code(errc::not_found);
}

}  // namespace aoun::storage
