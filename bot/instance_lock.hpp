#pragma once
// One server per database.
//
// Two `aoun serve` processes on one database file would each believe the outbox is theirs: the
// second one's start-up recovery turns the first one's sends in flight back into pending rows,
// which the first then sends again, and both send the rows that wait behind them. So `serve`
// holds an exclusive lock on `<database>.lock` (flock(2), dropped by the kernel when the process
// ends, however it ends) for as long as it runs, and refuses to start when another holds it.
// Other commands (`migrate`, `staff add`, ...) do not take it: they only write what SQLite's
// own locking keeps consistent.

#include <string>

namespace aoun::bot {

class instance_lock {
 public:
  /// Takes the lock for `db_path` (nothing for ":memory:"). Throws config_error naming the lock
  /// file when another process holds it, or when it cannot be opened.
  explicit instance_lock(const std::string& db_path);
  ~instance_lock();
  instance_lock(const instance_lock&) = delete;
  instance_lock& operator=(const instance_lock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace aoun::bot
