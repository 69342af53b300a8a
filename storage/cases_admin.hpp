#pragma once
// Cases as staff see them: lists, history, documents and step changes. The workflow rules
// (which step may follow which) live in bot/ (staff_logic); this file only reads and writes
// rows. REQUIRES for writes: called inside a database write job. Rows carry personal data:
// never log their fields.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/connection.hpp"
#include "storage/conversations.hpp"

namespace aoun::storage {

struct case_event_view {
  std::optional<std::string> from;
  std::string to;
  std::optional<std::int64_t> staff_id;
  std::string staff_name;  ///< "" when the bot recorded it (submission)
  std::string note;
  std::int64_t at = 0;
};

struct case_document_view {
  std::int64_t id = 0;
  std::optional<std::int64_t> message_id;
  std::string media_kind, media_id, mime, filename;
  std::int64_t at = 0;
};

/// Newest first; `step` empty = every step.
result<std::vector<case_row>> list_cases(connection& c, std::string_view step, int limit);
/// Oldest first.
result<std::vector<case_event_view>> list_case_events(connection& c, std::int64_t case_id);
result<std::vector<case_document_view>> list_case_documents(connection& c, std::int64_t case_id);
/// Moves the case to `step`; sets verification method and appointment when given (others keep
/// their value). errc::not_found if the case does not exist or is no longer at `from`
/// (a concurrent transition), so two staff cannot both move it.
boost::system::error_code set_case_step(connection& c, std::int64_t case_id, std::string_view from,
                                        std::string_view step, const std::optional<std::string>& method,
                                        const std::optional<std::string>& appointment, std::int64_t now);

}  // namespace aoun::storage
