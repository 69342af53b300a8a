#include "storage/connection.hpp"

#include <sqlite3.h>

namespace aoun::storage {

statement::~statement() {
  if (stmt_ != nullptr) conn_->give_back(stmt_, slot_);
}

statement& statement::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
statement& statement::bind(int i, double v) {
  sqlite3_bind_double(stmt_, i, v);
  return *this;
}
statement& statement::bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
statement& statement::bind_blob(int i, std::string_view v) {
  // SQLITE_STATIC: a file of several MiB is not copied; the caller keeps it alive (header).
  sqlite3_bind_blob64(stmt_, i, v.data(), static_cast<sqlite3_uint64>(v.size()), SQLITE_STATIC);
  return *this;
}
statement& statement::bind_null(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

result<bool> statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  // Reset when done so the statement can be re-bound and run again: binding a statement that
  // is not reset fails (SQLITE_MISUSE) and the next step would silently reuse the old values.
  sqlite3_reset(stmt_);
  if (rc == SQLITE_DONE) return false;
  return result<bool>(boost::system::in_place_error, from_sqlite(rc));
}

boost::system::error_code statement::exec() {
  for (;;) {
    auto r = step();
    if (!r) return r.error();
    if (!*r) return {};
  }
}

std::int64_t statement::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double statement::real(int col) const { return sqlite3_column_double(stmt_, col); }
std::string statement::text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}
std::string statement::blob(int col) const {
  auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)));
}
bool statement::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

result<std::unique_ptr<connection>> connection::open(const std::string& path, mode m) {
  // Before SQLite's first use: no global allocation statistics. With them on, every
  // sqlite3_malloc/free takes a process-wide mutex to keep counters nobody here reads.
  static const int memstatus_off = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  (void)memstatus_off;
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  flags |= m == mode::read_write ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) : SQLITE_OPEN_READONLY;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    auto ec = from_sqlite(rc);
    sqlite3_close_v2(db);
    return ec;
  }
  sqlite3_extended_result_codes(db, 1);
  // Readers may meet a checkpoint in progress; a short wait beats a spurious error.
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<connection>(new connection(db));
}

connection::~connection() {
  for (auto* s : all_) sqlite3_finalize(s);
  sqlite3_close_v2(db_);
}

boost::system::error_code connection::exec_script(const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return from_sqlite(rc);
}

result<statement> connection::prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) it = cache_.emplace(std::string(sql), std::vector<sqlite3_stmt*>{}).first;
  auto& slot = it->second;
  if (!slot.empty()) {
    sqlite3_stmt* s = slot.back();
    slot.pop_back();
    return statement(s, this, &slot);
  }
  sqlite3_stmt* s = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &s, &tail);
  if (rc != SQLITE_OK) return from_sqlite(rc);
  if (s == nullptr) return errc::invalid;  // empty SQL
  all_.push_back(s);
  return statement(s, this, &slot);
}

void connection::give_back(sqlite3_stmt* s, std::vector<sqlite3_stmt*>* slot) {
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  slot->push_back(s);
}

std::int64_t connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int connection::changes() const { return sqlite3_changes(db_); }
std::string connection::last_error() const { return sqlite3_errmsg(db_); }

}  // namespace aoun::storage
