#include "storage/error.hpp"

#include <sqlite3.h>

#include <string>

namespace aoun::storage {
namespace {

class category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "aoun.storage"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_found: return "not found";
      case errc::constraint: return "constraint violated";
      case errc::busy: return "database is busy";
      case errc::io: return "database I/O error";
      case errc::corrupt: return "database file is corrupt";
      case errc::invalid: return "invalid request";
      case errc::shutting_down: return "database is shutting down";
    }
    return "unknown storage error";
  }
};

}  // namespace

const boost::system::error_category& category() noexcept {
  static const category_impl instance;
  return instance;
}

boost::system::error_code from_sqlite(int rc) noexcept {
  switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE: return {};
    case SQLITE_CONSTRAINT: return errc::constraint;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return errc::busy;
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL: return errc::io;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return errc::corrupt;
    case SQLITE_NOTFOUND: return errc::not_found;
    default: return errc::invalid;
  }
}

}  // namespace aoun::storage
