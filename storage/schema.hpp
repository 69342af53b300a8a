#pragma once
// Versioned schema. Each migration is applied once, in order, in its own transaction, and
// PRAGMA user_version records how far the file has come. Never edit a released migration:
// append a new one.

#include "storage/connection.hpp"
#include "storage/error.hpp"

namespace aoun::storage {

/// The version a fully migrated database has.
int latest_schema_version();

/// Applies every migration newer than the file's user_version. Returns the resulting version.
/// A file newer than this program (user_version > latest) is refused with errc::invalid.
result<int> migrate(connection& conn);
/// Migrates only up to `target` (≤ latest): tests build files of an older version with it.
result<int> migrate(connection& conn, int target);

}  // namespace aoun::storage
