#pragma once
// Copies of the files beneficiaries send on WhatsApp, Telegram and SMS (docs/staff.md, "Kept
// copies"). A provider keeps a file for its own time (WhatsApp: 30 days), while a case may
// wait longer for its documents to be read: so each file is fetched once, soon after it
// arrives, and kept here until the person's data is erased. A row is `wanted` (to fetch),
// `kept` (the bytes are here) or `failed` (given up: staff still try the provider).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/connection.hpp"

namespace aoun::storage {

/// Asks for a copy of `media_id` (a no-op if one is already asked for). REQUIRES: write job.
boost::system::error_code want_media_copy(connection& c, std::string_view channel, std::string_view media_id,
                                          std::int64_t beneficiary_id, std::int64_t now);

struct sent_file {
  std::string media_id;
  std::int64_t size = 0;  ///< as the webhook declared it, 0 when it did not
};
/// The files `beneficiary_id` has sent (inbound media messages with a media id, in every
/// conversation of theirs) that no copy is asked for yet, oldest first, at most `limit`.
result<std::vector<sent_file>> files_sent_by(connection& c, std::int64_t beneficiary_id, int limit);

struct media_copy_due {
  std::int64_t id = 0;
  std::string channel, media_id;
  int attempts = 0;
};
/// Up to `limit` wanted copies whose next attempt is due at `now`, oldest first.
result<std::vector<media_copy_due>> due_media_copies(connection& c, std::int64_t now, int limit);
/// The earliest next attempt of a wanted copy, if any.
result<std::optional<std::int64_t>> next_media_copy_at(connection& c);

/// Stores the fetched bytes (bound without a copy) of `d`; nothing if its row is gone (erased)
/// or no longer wanted. The row is named by its id *and* its media id: an erased row's id may
/// be given to the next one asked for. REQUIRES: write job.
boost::system::error_code keep_media_copy(connection& c, const media_copy_due& d, std::string_view mime,
                                          std::string_view file_path, std::string_view bytes);
/// Stores the bytes staff downloaded live of a copy still wanted or given up (`failed`); the
/// worker's own fetch, had it been under way, then finds nothing left to keep. Nothing if there
/// is no such row (no consent, erased, already kept). REQUIRES: write job.
boost::system::error_code keep_live_copy(connection& c, std::string_view channel, std::string_view media_id,
                                         std::string_view mime, std::string_view file_path, std::string_view bytes);
/// A failed attempt: tried again at `retry_at`, or given up (`failed`) when it is nullopt.
boost::system::error_code media_copy_attempt_failed(connection& c, const media_copy_due& d, std::string_view error,
                                                    std::optional<std::int64_t> retry_at);

struct media_copy {
  std::string mime;
  std::string file_path;  ///< Telegram's file_path, whose last segment names a file sent without a name
  std::string bytes;
};
/// The kept copy of `media_id`, if there is one.
result<std::optional<media_copy>> find_media_copy(connection& c, std::string_view channel, std::string_view media_id);

}  // namespace aoun::storage
