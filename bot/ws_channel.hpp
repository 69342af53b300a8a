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
  /// Thread-safe; drops the message once the socket is closed. A client that stopped reading
  /// must not make the server hold unbounded memory, nor lose a frame without knowing: when the
  /// queue is full (queue_limit frames, or queue_bytes_limit bytes; one frame always fits an
  /// empty queue) the socket is closed, and the
  /// page's reconnect brings the history back.
  void send(std::string payload);
  /// Thread-safe: sends `payload` after what is queued, then closes; later sends are dropped.
  void send_and_close(std::string payload);
  void close();

  static constexpr std::size_t queue_limit = 512;
  static constexpr std::size_t queue_bytes_limit = 1024 * 1024;

 private:
  net::awaitable<void> drain();
  void shut();                        // close(), on the stream's executor
  void enqueue(std::string payload);  // on the stream's executor: queue, and start the drain
  stream_type ws_;
  std::deque<std::string> queue_;  // touched only on the stream's executor
  std::size_t queued_bytes_ = 0;   // touched only on the stream's executor
  bool writing_ = false;           // touched only on the stream's executor
  bool closed_ = false;            // touched only on the stream's executor
  bool closing_ = false;           // touched only on the stream's executor: close once drained
};

}  // namespace aoun::bot
