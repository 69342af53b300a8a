#pragma once
// Raw rows for the staff reports. Aggregation (averages, distributions, the per-staff minimum)
// is pure logic in bot/ (staff_logic), so that it is unit-tested without a database. Nothing
// here returns a beneficiary's identity: survey rows carry only channel, service type, the
// staff member's name and the scores.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "storage/connection.hpp"

namespace aoun::storage {

struct survey_sample {
  std::string channel;
  std::optional<std::string> service_type;
  std::optional<std::int64_t> staff_id;
  std::string staff_name;  ///< "" without a staff member
  std::int64_t started_at = 0;
  std::optional<int> overall, speed, courtesy;
};

/// Surveys opened (invitations) with started_at in [from, to).
result<std::vector<survey_sample>> survey_samples(connection& c, std::int64_t from, std::int64_t to);
/// Number of cases at each step (steps without cases are absent).
result<std::map<std::string, std::int64_t>> case_counts_by_step(connection& c);
/// For each conversation whose latest queue episode got a staff reply: seconds from queued_at
/// to first_staff_reply_at.
result<std::vector<std::int64_t>> first_response_seconds(connection& c);

}  // namespace aoun::storage
