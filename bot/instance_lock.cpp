#include "bot/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bot/config.hpp"

namespace aoun::bot {

instance_lock::instance_lock(const std::string& db_path) {
  if (db_path == ":memory:") return;
  const std::string path = db_path + ".lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw config_error("AOUN_DB: cannot open the lock file '" + path + "': " + std::strerror(errno));
  int rc;
  do rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    ::close(fd_);
    fd_ = -1;
    if (err == EWOULDBLOCK)
      throw config_error("AOUN_DB: '" + db_path + "' is in use by another aoun serve (it holds '" + path +
                         "'); one server per database");
    throw config_error("AOUN_DB: cannot lock '" + path + "': " + std::strerror(err));
  }
}

instance_lock::~instance_lock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor drops the lock
}

}  // namespace aoun::bot
