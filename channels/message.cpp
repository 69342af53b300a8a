#include "channels/message.hpp"

namespace aoun::channels {

std::string_view to_string(kind k) {
  switch (k) {
    case kind::whatsapp: return "whatsapp";
    case kind::telegram: return "telegram";
    case kind::sms: return "sms";
    case kind::webchat: return "webchat";
  }
  return "unknown";
}

std::optional<kind> kind_from_string(std::string_view s) {
  for (kind k : {kind::whatsapp, kind::telegram, kind::sms, kind::webchat})
    if (to_string(k) == s) return k;
  return std::nullopt;
}

std::string_view to_string(inbound_type t) {
  switch (t) {
    case inbound_type::text: return "text";
    case inbound_type::choice: return "choice";
    case inbound_type::contact: return "contact";
    case inbound_type::location: return "location";
    case inbound_type::media: return "media";
    case inbound_type::status: return "status";
    case inbound_type::unsupported: return "unsupported";
  }
  return "unsupported";
}

}  // namespace aoun::channels
