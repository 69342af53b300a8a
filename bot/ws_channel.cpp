#include "bot/ws_channel.hpp"

namespace aoun::bot {

void ws_channel::send(std::string payload) {
  net::post(ws_.get_executor(), [self = shared_from_this(), p = std::move(payload)]() mutable {
    if (self->closed_ || self->queue_.size() >= queue_limit) return;
    self->queue_.push_back(std::move(p));
    if (self->writing_) return;
    self->writing_ = true;
    net::co_spawn(self->ws_.get_executor(), self->drain(), [self](std::exception_ptr) { self->writing_ = false; });
  });
}

net::awaitable<void> ws_channel::drain() {
  auto self = shared_from_this();
  while (!queue_.empty() && !closed_) {
    // The message being written belongs to this frame, not to the queue: close() may empty
    // the queue while the write is in flight (the reader saw the client leave), and the
    // write's buffer must outlive that.
    std::string message = std::move(queue_.front());
    queue_.pop_front();
    ws_.text(true);
    auto [ec, n] = co_await ws_.async_write(net::buffer(message), use_tuple);
    if (ec) {
      closed_ = true;
      queue_.clear();
    }
  }
  writing_ = false;
}

void ws_channel::close() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    self->closed_ = true;
    self->queue_.clear();
    // Cancels the owner's pending read (and a write in flight); the owner's coroutine then ends.
    beast::get_lowest_layer(self->ws_).cancel();
  });
}

}  // namespace aoun::bot
