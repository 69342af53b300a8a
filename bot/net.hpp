#pragma once
// The one set of Asio/Beast aliases for bot/ (STYLE: never `using namespace`).

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace aoun::bot {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;

/// Completion token for routine failures: errors come back as values, not exceptions.
inline constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

using request = http::request<http::string_body>;
using response = http::response<http::string_body>;
}  // namespace aoun::bot
