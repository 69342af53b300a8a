#pragma once
// Internals shared by the staff API's source files (staff_api.cpp, stream.cpp). The public
// entry point is add_staff_routes() in services.hpp.

#include "bot/router.hpp"
#include "bot/services.hpp"

namespace aoun::bot {

/// GET /api/v1/stream: the console's WebSocket of "staff" events (token checked before the
/// upgrade; closed when the token expires, the session ends or the server stops).
void add_stream_route(router& r, const services& s);

}  // namespace aoun::bot
