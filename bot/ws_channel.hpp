#pragma once
// A server-side WebSocket with a thread-safe send(): messages are queued on the socket's
// executor and written one at a time (Beast chat-multi: at most one write in flight). The
// owner's coroutine does the reads. Shared ownership keeps the stream alive while a write
// is in flight after the reader has finished.

#include <deque>
#include <memory>
#include <string>

#include "bot/net.hpp"

namespace aoun::bot {

class ws_channel : public std::enable_shared_from_this<ws_channel> {
 public:
  using stream_type = websocket::stream<beast::tcp_stream>;
  explicit ws_channel(beast::tcp_stream&& s) : ws_(std::move(s)) {}
  stream_type& ws() { return ws_; }
  /// Thread-safe; drops the message once the socket is closed, or when the queue is full
  /// (a client that stopped reading must not make the server hold unbounded memory).
  void send(std::string payload);
  void close();

  static constexpr std::size_t queue_limit = 512;

 private:
  net::awaitable<void> drain();
  stream_type ws_;
  std::deque<std::string> queue_;  // touched only on the stream's executor
  bool writing_ = false;           // touched only on the stream's executor
  bool closed_ = false;            // touched only on the stream's executor
};

}  // namespace aoun::bot
