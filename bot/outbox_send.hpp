#pragma once
// What the outbox worker sends: a row, and the message it carries when that is still in memory.

#include <optional>

#include "channels/message.hpp"
#include "storage/outbox.hpp"

namespace aoun::bot {

/// One outbox row on its way to the provider. `out` is the message itself when the job that
/// wrote the row still had it in memory (a reply claimed at commit time): the row's JSON payload
/// is then not parsed back on the send path. Rows read from the table have no `out`.
struct outbox_send {
  storage::outbox_row row;
  std::optional<channels::outgoing> out;
};

}  // namespace aoun::bot
