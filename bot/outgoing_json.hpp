#pragma once
// channels::outgoing <-> the JSON kept in the outbox row, and dialogs::reply -> outgoing.

#include <string>

#include <nlohmann/json.hpp>

#include "channels/message.hpp"
#include "dialogs/engine.hpp"

namespace aoun::bot {

nlohmann::json to_json(const channels::outgoing& o);
/// Tolerant: missing fields keep their defaults.
channels::outgoing outgoing_from_json(const nlohmann::json& j, channels::kind channel, std::string to);
channels::outgoing to_outgoing(const dialogs::reply& r, channels::kind channel, const std::string& to,
                               std::string_view lang);

}  // namespace aoun::bot
