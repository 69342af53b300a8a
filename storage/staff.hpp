#pragma once
// Staff accounts and their sessions. REQUIRES for writes: called inside a database write job.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/connection.hpp"

namespace aoun::storage {

struct staff_row {
  std::int64_t id = 0;
  std::string username, display_name, role, password_hash;
  int failed_logins = 0;
  std::int64_t locked_until = 0;
  bool disabled = false;
  std::int64_t created_at = 0;
};

result<std::int64_t> count_staff(connection& c);
/// errc::constraint when the username is taken.
result<std::int64_t> insert_staff(connection& c, const staff_row& s);
/// errc::not_found when there is no such user.
result<staff_row> find_staff_by_username(connection& c, std::string_view username);
result<staff_row> find_staff(connection& c, std::int64_t id);
result<std::vector<staff_row>> list_staff(connection& c);
boost::system::error_code record_login_failure(connection& c, std::int64_t id, int max_failures,
                                               std::int64_t lock_until);
boost::system::error_code record_login_success(connection& c, std::int64_t id);

boost::system::error_code insert_session(connection& c, std::string_view token_hash, std::int64_t staff_id,
                                         std::int64_t now, std::int64_t expires_at);
/// The staff member a live (unexpired) session belongs to; errc::not_found otherwise.
result<staff_row> find_session_staff(connection& c, std::string_view token_hash, std::int64_t now);
/// When a live session ends (unix s); errc::not_found if it is unknown or expired.
result<std::int64_t> session_expiry(connection& c, std::string_view token_hash, std::int64_t now);
boost::system::error_code delete_session(connection& c, std::string_view token_hash);

/// Changes the fields that are set. errc::not_found if there is no such staff member.
boost::system::error_code update_staff(connection& c, std::int64_t id, const std::optional<std::string>& role,
                                       const std::optional<std::string>& display_name, std::optional<bool> disabled,
                                       const std::optional<std::string>& password_hash);
/// Ends every session of a staff member (disabled account, changed password).
boost::system::error_code delete_sessions_of(connection& c, std::int64_t staff_id);
/// Ends every session of a staff member but `keep_token_hash` (their own password change).
boost::system::error_code delete_other_sessions(connection& c, std::int64_t staff_id, std::string_view keep_token_hash);
/// The server's own key called `name`: stored as `fresh` (random bytes the caller made) the
/// first time it is asked for, the stored one ever after.
result<std::string> server_key(connection& c, std::string_view name, std::string_view fresh, std::int64_t now);
/// Removes expired sessions (housekeeping on login).
boost::system::error_code delete_expired_sessions(connection& c, std::int64_t now);

boost::system::error_code audit(connection& c, std::optional<std::int64_t> staff_id, std::string_view action,
                                std::string_view target, std::string_view detail_json, std::int64_t now);

}  // namespace aoun::storage
