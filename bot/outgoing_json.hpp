#pragma once
// channels::outgoing <-> the JSON kept in the outbox row, and dialogs::reply -> outgoing.

#include <string>

#include <nlohmann/json.hpp>

#include "channels/message.hpp"
#include "dialogs/engine.hpp"

namespace aoun::bot {

nlohmann::json to_json(const channels::outgoing& o);
/// The same document as `to_json(o).dump()`, byte for byte (keys in nlohmann's sorted order),
/// written without building a DOM: it is stored with every outbound message.
std::string to_json_text(const channels::outgoing& o);
/// The transcript's payload of an outbound message (choices offered, contact request, template),
/// as `dump()` of {"choices": [{"id","title"}...], "request_contact": true, "template": name}
/// with the empty parts left out: "{}" for plain text.
std::string outbound_payload_text(const channels::outgoing& o);
/// True when every text field of `o` is valid UTF-8 (RFC 3629: no overlong forms, surrogates or
/// code points past U+10FFFF), so that outgoing_from_json(to_json_text(o)) gives `o` back; the
/// JSON text replaces invalid bytes with U+FFFD.
bool survives_json(const channels::outgoing& o);
/// Tolerant: missing fields keep their defaults.
channels::outgoing outgoing_from_json(const nlohmann::json& j, channels::kind channel, std::string to);
channels::outgoing to_outgoing(const dialogs::reply& r, channels::kind channel, const std::string& to,
                               std::string_view lang);

}  // namespace aoun::bot
