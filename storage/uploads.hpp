#pragma once
// Files web-chat visitors send (POST /chat/upload). The website chat has no provider that keeps
// them, so their bytes are kept in the database, under the session (address) that sent them.
// A message's media id ("media": {"id"}) is the row's id. Erased with the person
// (erase_beneficiary).

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/connection.hpp"

namespace aoun::storage {

struct upload_row {
  std::int64_t id = 0;
  std::string address;   ///< the web-chat session that sent it
  std::string kind;      ///< "image" or "document"
  std::string mime;      ///< from the bytes (docs/console.md), never the client's word
  std::string filename;  ///< as the visitor's browser named it (may be empty)
  std::string bytes;
  std::int64_t created_at = 0;
};

/// Stores a file. `row.bytes` is bound without a copy. REQUIRES: inside a write job.
result<std::int64_t> insert_upload(connection& c, const upload_row& row);
/// Removes a file stored by this job whose message turned out to be a duplicate.
boost::system::error_code delete_upload(connection& c, std::int64_t id);
/// The file `id`; errc::not_found if there is none (never stored, or erased).
result<upload_row> find_upload(connection& c, std::int64_t id);

}  // namespace aoun::storage
