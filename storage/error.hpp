#pragma once
// Storage errors as values. SQLite result codes are mapped here, inside storage/, so that callers
// reason about "not found" or "constraint" and never about SQLITE_* numbers.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

namespace aoun::storage {

enum class errc {
  not_found = 1,   ///< the row asked for does not exist (distinct from any failure)
  constraint,      ///< a UNIQUE / CHECK / FOREIGN KEY constraint refused the write
  busy,            ///< the database is locked by another process
  io,              ///< disk or file error; the write did not happen
  corrupt,         ///< the file is not a usable database
  invalid,         ///< caller error: bad SQL, bad argument, wrong state transition
  shutting_down,   ///< the database is closing; the job was not run
};

const boost::system::error_category& category() noexcept;
inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), category()};
}
/// Maps a SQLite primary or extended result code to one of `errc`.
boost::system::error_code from_sqlite(int rc) noexcept;

template <class T>
using result = boost::system::result<T>;

}  // namespace aoun::storage

namespace boost::system {
template <>
struct is_error_code_enum<aoun::storage::errc> : std::true_type {};
}  // namespace boost::system
