#include "storage/reports.hpp"

namespace aoun::storage {

result<std::vector<survey_sample>> survey_samples(connection& c, std::int64_t from, std::int64_t to) {
  auto q = c.prepare(
      "SELECT v.channel, v.service_type, v.staff_id, COALESCE(s.display_name, ''), v.started_at, v.overall, v.speed, "
      "v.courtesy FROM surveys v LEFT JOIN staff s ON s.id = v.staff_id WHERE v.started_at >= ? AND v.started_at < ? "
      "ORDER BY v.id");
  if (!q) return q.error();
  q->bind(1, from).bind(2, to);
  std::vector<survey_sample> out;
  auto opt = [&](int col) -> std::optional<int> {
    if (q->is_null(col)) return std::nullopt;
    return static_cast<int>(q->int64(col));
  };
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    survey_sample x;
    x.channel = q->text(0);
    if (!q->is_null(1)) x.service_type = q->text(1);
    if (!q->is_null(2)) x.staff_id = q->int64(2);
    x.staff_name = q->text(3);
    x.started_at = q->int64(4);
    x.overall = opt(5);
    x.speed = opt(6);
    x.courtesy = opt(7);
    out.push_back(std::move(x));
  }
}

result<std::map<std::string, std::int64_t>> case_counts_by_step(connection& c) {
  auto q = c.prepare("SELECT step, count(*) FROM cases GROUP BY step");
  if (!q) return q.error();
  std::map<std::string, std::int64_t> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    out[q->text(0)] = q->int64(1);
  }
}

result<std::vector<std::int64_t>> first_response_seconds(connection& c) {
  auto q = c.prepare(
      "SELECT first_staff_reply_at - queued_at FROM conversations WHERE queued_at IS NOT NULL AND "
      "first_staff_reply_at IS NOT NULL AND first_staff_reply_at >= queued_at");
  if (!q) return q.error();
  std::vector<std::int64_t> out;
  for (;;) {
    auto r = q->step();
    if (!r) return r.error();
    if (!*r) return out;
    out.push_back(q->int64(0));
  }
}

}  // namespace aoun::storage
