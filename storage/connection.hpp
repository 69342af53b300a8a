#pragma once
// A SQLite connection with a cache of prepared statements. Every query in Aoun is a prepared
// statement with bound parameters; no SQL text is ever built from input.
//
// Thread-compatible: one connection is used by one thread at a time (the writer thread, or one
// reader thread). Not copyable.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace aoun::storage {

class connection;

/// A prepared statement borrowed from a connection's cache. Reset and cleared on destruction,
/// so the next user of the same SQL text finds it fresh.
class statement {
 public:
  statement(statement&& o) noexcept : stmt_(o.stmt_), conn_(o.conn_), slot_(o.slot_) { o.stmt_ = nullptr; }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  ~statement();

  // Binders use 1-based indexes, as SQLite does. Return *this to chain.
  statement& bind(int i, std::int64_t v);
  statement& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  statement& bind(int i, double v);
  statement& bind(int i, std::string_view v);
  statement& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  statement& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  statement& bind_null(int i);
  /// Binds bytes as a BLOB without copying them: `v` must outlive the statement's run.
  statement& bind_blob(int i, std::string_view v);
  template <class T>
  statement& bind(int i, const std::optional<T>& v) { return v ? bind(i, *v) : bind_null(i); }

  /// Advances: true with a row available, false when done; an error for anything else. When
  /// done (or failed) the statement is reset, so it can be bound again and re-run in a loop.
  result<bool> step();
  /// Runs a statement that returns no rows.
  boost::system::error_code exec();

  std::int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  std::string blob(int col) const;
  bool is_null(int col) const;

 private:
  friend class connection;
  statement(sqlite3_stmt* s, connection* c, std::vector<sqlite3_stmt*>* slot) : stmt_(s), conn_(c), slot_(slot) {}
  sqlite3_stmt* stmt_;
  connection* conn_;
  std::vector<sqlite3_stmt*>* slot_;  // the cache entry this statement returns to
};

class connection {
 public:
  enum class mode { read_write, read_only };

  /// Opens (creating if needed in read_write mode) the database at `path`.
  static result<std::unique_ptr<connection>> open(const std::string& path, mode m);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Runs SQL text with no parameters (pragmas, DDL, BEGIN/COMMIT). Several statements allowed.
  boost::system::error_code exec_script(const char* sql);
  /// Prepares (or takes from the cache) one statement. REQUIRES: `sql` is a single statement.
  result<statement> prepare(std::string_view sql);

  std::int64_t last_insert_rowid() const;
  int changes() const;
  /// The last error message SQLite gave on this connection (for logs; never contains bound values).
  std::string last_error() const;
  sqlite3* handle() const { return db_; }

 private:
  friend class statement;
  explicit connection(sqlite3* db) : db_(db) {}
  void give_back(sqlite3_stmt* s, std::vector<sqlite3_stmt*>* slot);

  sqlite3* db_;
  // Cached statements by SQL text: each entry holds the idle ones (a statement in use is out
  // of its vector). Map nodes are stable, so a borrowed statement keeps a pointer to its slot
  // and neither prepare() nor give_back() allocates once warm.
  std::map<std::string, std::vector<sqlite3_stmt*>, std::less<>> cache_;
  std::vector<sqlite3_stmt*> all_;  // every statement ever prepared, finalized at close
};

}  // namespace aoun::storage
